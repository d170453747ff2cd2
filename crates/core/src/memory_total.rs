//! Estimates of several allocations driven by the same field, added up.

use crate::memory::MemoryEstimate;

/// Adds up the estimates that share a field path (saturating), keeping the first-seen order
/// of the paths: a field that sizes both a sampler's state and an evaluation's buffers must
/// fit with both at once.
pub fn sum_by_path(estimates: impl IntoIterator<Item = MemoryEstimate>) -> Vec<MemoryEstimate> {
    let mut out: Vec<MemoryEstimate> = Vec::new();
    for e in estimates {
        match out.iter_mut().find(|o| o.path == e.path) {
            Some(o) => o.bytes = o.bytes.saturating_add(e.bytes),
            None => out.push(e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_of_one_field_add_up() {
        let v = sum_by_path([
            MemoryEstimate::linear("n", 10, 8, 0),
            MemoryEstimate::linear("m", 3, 1, 0),
            MemoryEstimate::linear("n", 10, 2, 5),
        ]);
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].path.as_str(), v[0].value, v[0].bytes), ("n", 10, 105));
        assert_eq!(v[1].bytes, 3);
    }
}
