//! Memory estimates of a sampling run, so an impossible sample count or grid fails before any
//! work (compare them with the machine's memory, see [`smoluchowski_core::memory`]).

use smoluchowski_core::MemoryEstimate;

/// `f32` copies of the state a sampler holds per sample row at most: the state, the score, the
/// noise, up to four stage / multistep buffers and the returned samples.
pub const STATE_COPIES: u128 = 8;

/// Estimates for drawing `n` samples of dimension `dim` (field `n_path`):
/// `4 · dim · STATE_COPIES` bytes per sample; and, with `steps = Some((path, k))`, the time
/// grid's `k + 1` times and step sizes (`16` bytes per step).
pub fn sampling_memory(
    n_path: &str,
    n: usize,
    dim: usize,
    steps: Option<(&str, usize)>,
) -> Vec<MemoryEstimate> {
    let per_row = 4 * dim as u128 * STATE_COPIES;
    let mut v = vec![MemoryEstimate::linear(n_path, n, per_row, 0)];
    if let Some((path, k)) = steps {
        v.push(MemoryEstimate::linear(path, k, 16, 16));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_memory_names_each_field() {
        let v = sampling_memory("n_samples", 1_000, 2, Some(("steps", 99)));
        assert_eq!((v[0].path.as_str(), v[0].bytes), ("n_samples", 64_000));
        assert_eq!((v[1].path.as_str(), v[1].bytes), ("steps", 1600));
        let huge = sampling_memory("n", usize::MAX, 2, None);
        assert_eq!(huge.len(), 1);
        assert!(huge[0].bytes > 1 << 64);
    }
}
