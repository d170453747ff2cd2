//! The one loop over the grid, for every solver: steps, the per-step callback (recording and
//! progress), NFE counting (in [`StepContext`]) and the final denoising.

use crate::error::SamplerError;
use crate::grid::TimeGrid;
use crate::solvers::{GridStep, Solver, StepContext};

/// Called after every step with the 1-based index of the grid time just reached and the state.
pub(crate) type OnStep<'c> = dyn FnMut(usize, &[f32]) + 'c;

/// Runs `solver` over `grid`, moving `x` from `t_0 = T` to `t_n = t_eps`, then applies
/// Tweedie's denoiser at `t_eps` if `final_denoise`. Evaluations are counted in `ctx`.
pub(crate) fn run(
    ctx: &mut StepContext<'_>,
    solver: &mut dyn Solver,
    x: &mut [f32],
    grid: &TimeGrid,
    final_denoise: bool,
    on_step: &mut OnStep<'_>,
) -> Result<(), SamplerError> {
    solver.start(x, ctx.dim());
    let steps = grid.steps();
    for (index, w) in grid.times().windows(2).enumerate() {
        let step = GridStep {
            index,
            steps,
            t: w[0],
            t_next: w[1],
        };
        solver.step(ctx, x, step)?;
        on_step(index + 1, x);
    }
    if final_denoise {
        let mut buf = vec![0.0f32; x.len()];
        ctx.tweedie_denoise(x, grid.t_final(), &mut buf);
    }
    Ok(())
}
