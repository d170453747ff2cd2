//! Memory estimates of training runs, so an impossible batch fails before any work (the
//! harness compares them with the machine's memory; see [`smoluchowski_core::memory`]).

use crate::config::{DataMode, TrainConfig};
use crate::ssm::{ScoreObjective, SsmConfig};
use smoluchowski_core::MemoryEstimate;
use smoluchowski_nets::ScoreNetConfig;

/// Bytes of one loss-curve row kept in memory (step, loss, lr, gradient norm, bucket losses).
const CURVE_ROW_BYTES: u128 = 128;

/// Estimates for a denoising-score-matching run of `cfg` on the MLP `net`, one per size-like
/// field (paths relative to the config):
/// - `batch_size`: two batches (the running one and the prefetched next one), each row holding
///   the network input (`input_dim` f32), `a` and `b` (`d` f32 each), `x₀` (`d` f64), `x_t`
///   (`d` f32), `t` (f64) and its bucket, plus the network's output (`d` f32):
///   `2 · (4 · (input_dim + 3d) + 8d + 9) + 4d` bytes per row;
/// - `steps`: the loss curve, [`CURVE_ROW_BYTES`] per step;
/// - `data.size` (fixed data): `8d` bytes per point.
pub fn train_memory_estimates(cfg: &TrainConfig, net: &ScoreNetConfig) -> Vec<MemoryEstimate> {
    let (k, d) = (net.input_dim() as u128, net.dim as u128);
    let per_row = 2 * (4 * (k + 3 * d) + 8 * d + 9) + 4 * d;
    let mut v = vec![
        MemoryEstimate::linear("batch_size", cfg.batch_size, per_row, 0),
        MemoryEstimate::linear("steps", cfg.steps, CURVE_ROW_BYTES, 0),
    ];
    if let DataMode::Fixed { size } = cfg.data {
        v.push(MemoryEstimate::linear("data.size", size, 8 * d, 0));
    }
    v
}

/// Estimates for a score-matching run of `cfg` on `net` (autograd through dfdx keeps every
/// layer's activations on the tape): `batch_size` rows, each evaluated `2 · projections` times
/// (sliced) or once (denoising), each evaluation holding its input and, per layer, the
/// pre-activation, activation and gradient (`3 · width` f32): `4 · (input_dim + 3 · width ·
/// (depth + 1) + 2d)` bytes per evaluation.
pub fn ssm_memory_estimates(cfg: &SsmConfig, net: &ScoreNetConfig) -> Vec<MemoryEstimate> {
    let evals = match cfg.objective {
        ScoreObjective::SlicedFd { projections, .. } => 2 * projections as u128,
        ScoreObjective::Denoising => 1,
    };
    let (k, d, w) = (net.input_dim() as u128, net.dim as u128, net.width as u128);
    let per_eval = 4 * (k + 3 * w * (net.depth as u128 + 1) + 2 * d);
    vec![
        MemoryEstimate::linear(
            "batch_size",
            cfg.batch_size,
            evals.saturating_mul(per_eval),
            0,
        ),
        MemoryEstimate::linear("steps", cfg.steps, CURVE_ROW_BYTES, 0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoluchowski_core::MemoryBudget;

    #[test]
    fn the_part2_recipe_fits_and_a_trillion_rows_do_not() {
        let net = ScoreNetConfig::part2();
        let cfg = TrainConfig::part2();
        let budget = MemoryBudget::new(2 << 30);
        for e in train_memory_estimates(&cfg, &net) {
            budget.check(&e).unwrap();
        }
        let huge = TrainConfig {
            batch_size: 1_000_000_000_000,
            ..cfg
        };
        let e = train_memory_estimates(&huge, &net)[0].clone();
        assert_eq!(e.path, "batch_size");
        // 2·(4·(3 + 6) + 16 + 9) + 8 = 130 bytes per row.
        assert_eq!(e.bytes, 130_000_000_000_000);
        let err = budget.check(&e.under("training")).unwrap_err();
        assert!(
            err.to_string().starts_with("training.batch_size must be"),
            "{err}"
        );
    }
}
