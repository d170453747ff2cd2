//! Opt-in wall-clock breakdown of the image networks' operations, for finding where a UNet
//! training step spends its time (`SMOLUCHOWSKI_PROFILE=1 cargo xtask bench` prints the table
//! of the timed UNet steps). Off unless [`PROFILE_ENV`] is set to a non-empty value other than
//! `0`; when off, each instrumented operation costs one relaxed atomic load. Timing never
//! changes what is computed.
//!
//! Each record is one operation kind on one shape (e.g. `conv3x3 s1 28x28 32->32 wgrad`) called
//! from the thread that drives the network (the operations run their own parallel loops
//! inside): total seconds, calls, and the multiply–add flops (2 per multiply–add) when the
//! operation is a matrix product, so `flops / seconds` is its achieved rate.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The environment variable that turns the breakdown on.
pub const PROFILE_ENV: &str = "SMOLUCHOWSKI_PROFILE";

/// One operation kind on one shape: its accumulated time.
#[derive(Debug, Clone, PartialEq)]
pub struct OpTime {
    /// What ran (operation, shape, pass).
    pub label: String,
    /// Total wall-clock seconds.
    pub seconds: f64,
    /// Number of calls.
    pub calls: u64,
    /// Total flops of the calls (0 for operations that are not products).
    pub flops: f64,
}

/// 0: not read yet, 1: off, 2: on.
static STATE: AtomicU8 = AtomicU8::new(0);
static TABLE: Mutex<Vec<OpTime>> = Mutex::new(Vec::new());

/// Whether the breakdown is on ([`PROFILE_ENV`], read once).
pub fn profiling_enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let on = std::env::var(PROFILE_ENV).is_ok_and(|v| !v.trim().is_empty() && v != "0");
            STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
    }
}

/// Runs `f`; when profiling, adds its wall-clock time (and `flops`) to the record `label()`.
#[inline]
pub(crate) fn timed<T>(label: impl FnOnce() -> String, flops: f64, f: impl FnOnce() -> T) -> T {
    if !profiling_enabled() {
        return f();
    }
    let start = Instant::now();
    let out = f();
    let seconds = start.elapsed().as_secs_f64();
    let label = label();
    let mut table = TABLE.lock().unwrap_or_else(|e| e.into_inner());
    match table.iter_mut().find(|r| r.label == label) {
        Some(r) => {
            r.seconds += seconds;
            r.calls += 1;
            r.flops += flops;
        }
        None => table.push(OpTime {
            label,
            seconds,
            calls: 1,
            flops,
        }),
    }
    out
}

/// The records so far (first-call order), clearing them.
pub fn take_profile() -> Vec<OpTime> {
    std::mem::take(&mut *TABLE.lock().unwrap_or_else(|e| e.into_inner()))
}
