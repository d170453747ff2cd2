//! The one loop over the grid, for every solver: steps, the per-step callback (recording and
//! progress), NFE counting (in [`StepContext`]) and the final denoising.

use crate::error::SamplerError;
use crate::grid::TimeGrid;
use crate::inpaint::{block_layout, jump_back, pass_seeds, replace_known, set_known, Inpainting};
use crate::noise::NoiseEvent;
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

/// [`run`] with inpainting (module [`crate::inpaint`]): the grid in blocks of `jump_length`
/// steps, each traversed `resample_count` times (once for replacement), the known coordinates
/// replaced by a forward draw after every step, a forward jump back between passes, the known
/// values set exactly at the end. `on_step` is called on a block's last pass only.
pub(crate) fn run_inpainting(
    ctx: &mut StepContext<'_>,
    solver: &mut dyn Solver,
    x: &mut [f32],
    grid: &TimeGrid,
    final_denoise: bool,
    inpainting: &Inpainting,
    on_step: &mut OnStep<'_>,
) -> Result<(), SamplerError> {
    let dim = ctx.dim();
    let seed = ctx.seed();
    let mut noise = vec![0.0f32; x.len()];
    let times = grid.times();
    let steps = grid.steps();
    let (passes, block) = block_layout(inpainting, steps);
    let (_, first_inpaint_seed) = pass_seeds(seed, 0);
    replace_known(
        inpainting,
        x,
        ctx.kernel(times[0]),
        first_inpaint_seed,
        NoiseEvent::Prior,
        &mut noise,
    );
    solver.start(x, dim);
    for start in (0..steps).step_by(block) {
        let end = (start + block).min(steps);
        for pass in 0..passes {
            let (solver_seed, inpaint_seed) = pass_seeds(seed, pass);
            ctx.set_seed(solver_seed);
            if pass > 0 {
                jump_back(
                    x,
                    ctx.kernel(times[start]),
                    ctx.kernel(times[end]),
                    dim,
                    inpaint_seed,
                    NoiseEvent::step(start, 1),
                    &mut noise,
                );
                let event = NoiseEvent::step(start, 2);
                replace_known(
                    inpainting,
                    x,
                    ctx.kernel(times[start]),
                    inpaint_seed,
                    event,
                    &mut noise,
                );
                solver.start(x, dim);
            }
            for index in start..end {
                let step = GridStep {
                    index,
                    steps,
                    t: times[index],
                    t_next: times[index + 1],
                };
                solver.step(ctx, x, step)?;
                let event = NoiseEvent::step(index, 0);
                replace_known(
                    inpainting,
                    x,
                    ctx.kernel(step.t_next),
                    inpaint_seed,
                    event,
                    &mut noise,
                );
                solver.state_overwritten(x);
                if pass + 1 == passes {
                    on_step(index + 1, x);
                }
            }
        }
    }
    ctx.set_seed(seed);
    if final_denoise {
        ctx.tweedie_denoise(x, grid.t_final(), &mut noise);
    }
    set_known(inpainting, x);
    Ok(())
}
