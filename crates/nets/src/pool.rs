//! A per-thread pool of large `f32` buffers for the image networks' activations.
//!
//! A UNet training chunk allocates and frees ~80 MB of activations; handed back to the
//! allocator, that memory is returned to the OS (heap trimming, `munmap`) and faulted in and
//! zeroed by the kernel again on the next chunk — ~40 000 page faults per training step. The
//! tapes give their buffers back here instead ([`recycle`]), and the layers take them
//! ([`overwritten`]) for outputs they write entirely before reading. Pure memory reuse: the old
//! contents are never read, so results do not change.

use std::cell::RefCell;

/// Smallest buffer worth keeping (values; 256 KiB).
const MIN_LEN: usize = 1 << 16;
/// Most values kept per thread (1 GiB).
const MAX_TOTAL: usize = 1 << 28;

thread_local! {
    static POOL: RefCell<Vec<Vec<f32>>> = const { RefCell::new(Vec::new()) };
}

/// A vector of `len` values with unspecified contents (a pooled buffer's old values, or
/// zeros): for outputs the caller overwrites entirely before reading.
pub(crate) fn overwritten(len: usize) -> Vec<f32> {
    if len >= MIN_LEN {
        let found = POOL.with(|p| {
            let mut p = p.borrow_mut();
            let best = p
                .iter()
                .enumerate()
                .filter(|(_, v)| v.capacity() >= len)
                .min_by_key(|(_, v)| v.capacity())
                .map(|(i, _)| i);
            best.map(|i| p.swap_remove(i))
        });
        if let Some(mut v) = found {
            if v.len() >= len {
                v.truncate(len);
            } else {
                v.resize(len, 0.0);
            }
            return v;
        }
    }
    vec![0.0; len]
}

/// Gives `v`'s buffer to this thread's pool (kept if large enough and the pool is not full).
pub(crate) fn recycle(v: Vec<f32>) {
    if v.capacity() < MIN_LEN {
        return;
    }
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let total: usize = p.iter().map(|v| v.capacity()).sum();
        if total + v.capacity() <= MAX_TOTAL {
            p.push(v);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recycled buffer comes back with the requested length, reusing the allocation (its
    /// old values are unspecified: callers overwrite them); small buffers are not pooled.
    #[test]
    fn recycled_buffers_are_reused_at_the_requested_length() {
        let v = vec![3.0f32; MIN_LEN + 5];
        let ptr = v.as_ptr();
        recycle(v);
        let w = overwritten(MIN_LEN);
        assert_eq!(w.len(), MIN_LEN);
        assert_eq!(w.as_ptr(), ptr);
        recycle(w);
        let longer = overwritten(MIN_LEN + 5);
        assert_eq!((longer.len(), longer.as_ptr()), (MIN_LEN + 5, ptr));
        recycle(vec![1.0; 10]);
        assert_eq!(overwritten(10), vec![0.0; 10]);
    }
}
