//! Files, figures and report of `mnist-ddpm`.

use std::fmt::Write as _;

use anyhow::{anyhow, Result};
use rand_distr::{Distribution, StandardNormal};
use serde_json::json;
use smoluchowski::figures::{self as figs, draw_row, image_grid, GridLabels};
use smoluchowski::losses::curve_csv;
use smoluchowski::nets::ScoreNetwork;
use smoluchowski::samplers::serde_name;

use super::{ImageQuality, MnistDdpmManifest, MnistRun, MnistStats, PATHS, PIXELS, SIDE};
use crate::harness::{Figure, RunContext};
use crate::output::{write_npy, write_text, OutputDir};
use crate::report;
use crate::seeding::derived_seed;
use crate::stats::Rendered;

const HOW_TO_READ: &str = include_str!("how_to_read.md");

pub(super) fn render(
    m: &MnistDdpmManifest,
    stats: &MnistStats,
    run: &MnistRun,
    ctx: &mut RunContext<'_>,
) -> Result<Rendered> {
    let out = ctx.out;
    let n = run.headline.unit.len() / PIXELS;
    ctx.time("save_model", || {
        run.trained
            .net
            .save_safetensors(&out.file("model.safetensors"))
            .map_err(|e| anyhow!("cannot save the model: {e}"))
    })?;
    ctx.time("write", || -> Result<()> {
        copy_dir(&run.tb_dir, &out.file("tensorboard"))?;
        write_npy(
            &out.file("samples.npy"),
            &[n, SIDE, SIDE],
            &run.headline.unit,
        )?;
        write_text(&out.file("loss_curve.csv"), &curve_csv(&run.trained.curve))?;
        write_text(&out.file("nfe_table.csv"), &nfe_csv(stats))
    })?;
    let figures = ctx.time("figures", || -> Result<Vec<Figure>> {
        let mut v = vec![
            forward_noising(m, run, out, ctx_seed(m))?,
            sample_grid(m, run, out)?,
            reverse_process(m, run, out)?,
            loss_figure(run, out)?,
            nfe_figure(stats, out)?,
            class_figure(run, out)?,
        ];
        v.extend(prior_figure(run, out)?);
        Ok(v)
    })?;
    Ok(Rendered {
        parameters: parameters(m, run),
        figures,
        files: vec![
            (
                "samples.npy".into(),
                format!(
                    "the headline sampler's images, float32 ({n}, 28, 28), pixel scale [0, 1] (clamped)"
                ),
            ),
            (
                "model.safetensors".into(),
                "the trained UNet (EMA weights when the recipe keeps an EMA), with the parameter names and layouts of PyTorch's state_dict of benches/peer/unet_peer.py (config in the metadata)".into(),
            ),
            (
                "loss_curve.csv".into(),
                "step, batch ε-loss, lr, grad norm, time-bucket losses".into(),
            ),
            (
                "nfe_table.csv".into(),
                "sampler, budget, NFE and every image statistic with its floor".into(),
            ),
            (
                "tensorboard/".into(),
                "TensorBoard event files of the training run (`tensorboard --logdir tensorboard`)"
                    .into(),
            ),
        ],
        sections: vec![
            ("Image quality against noise floors".into(), quality_table(m, stats, run)),
            ("The prior: where sampling starts".into(), prior_section(m, stats, run)),
            ("How to read this report".into(), report::fill(HOW_TO_READ, &[])),
        ],
    })
}

fn ctx_seed(m: &MnistDdpmManifest) -> u64 {
    m.experiment.seed
}

fn parameters(m: &MnistDdpmManifest, run: &MnistRun) -> serde_json::Value {
    let sched = &m.ddpm.schedule;
    let sets: Vec<_> = std::iter::once(&run.headline)
        .chain(&run.table)
        .chain(&run.exact_prior)
        .map(|s| json!({"label": s.label, "images": s.unit.len() / PIXELS, "nfe": s.nfe, "wall_time_s": s.wall_s}))
        .collect();
    json!({
        "levels": sched.steps(),
        "alpha_bar_n": sched.alphas_bar()[sched.steps()],
        "network_parameters": run.trained.net.num_params(),
        "network_forward_flops_per_image": run.trained.net.forward_flops_per_image(),
        "resumed_from_step": run.trained.resumed_from,
        "training_seed": m.training.0.seed,
        "sample_sets": sets,
        "training_label_frequencies": run.labels_hist,
    })
}

/// One CSV row per image set.
fn nfe_csv(stats: &MnistStats) -> String {
    let mut s = String::from(
        "sampler,budget,nfe,confidence,confidence_floor,confident_share,class_chi2,class_chi2_pvalue,frechet,frechet_floor,kid,kid_floor,precision,precision_floor,recall,recall_floor\n",
    );
    for (family, rows) in &stats.table {
        for (label, r) in rows {
            let q = &r.quality;
            let _ = writeln!(
                s,
                "{family},{label},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                r.nfe.value,
                q.confidence.value,
                q.confidence_floor.value,
                q.confident_share.value,
                q.class_chi2.value,
                q.class_chi2_pvalue.value,
                q.frechet.value,
                q.frechet_floor.value,
                q.kid.value,
                q.kid_floor.value,
                q.precision.value,
                q.precision_floor.value,
                q.recall.value,
                q.recall_floor.value
            );
        }
    }
    s
}

fn quality_row(label: &str, nfe: usize, n: usize, q: &ImageQuality) -> String {
    format!(
        "| {label} | {nfe} | {n} | {:.4} ({:.4}) | {:.3} | {:.1} (p = {:.2e}) | {:.3} ({:.3}) | {:.5} ({:.5}) | {:.3} ({:.3}) | {:.3} ({:.3}) |\n",
        q.confidence.value,
        q.confidence_floor.value,
        q.confident_share.value,
        q.class_chi2.value,
        q.class_chi2_pvalue.value,
        q.frechet.value,
        q.frechet_floor.value,
        q.kid.value,
        q.kid_floor.value,
        q.precision.value,
        q.precision_floor.value,
        q.recall.value,
        q.recall_floor.value,
    )
}

fn quality_table(m: &MnistDdpmManifest, stats: &MnistStats, run: &MnistRun) -> String {
    let mut s = format!(
        "Classifier: test accuracy {:.4} (the project's own, cached by its recipe). Floors (in parentheses) are the same statistic for as many \
         held-out real test digits.\n\n\
         | images | NFE | n | confidence (floor) | share ≥ 0.9 | class χ² | Fréchet (floor) | KID (floor) | precision (floor) | recall (floor) |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        stats.classifier_accuracy.value
    );
    let n_of = |v: &[f32]| v.len() / PIXELS;
    s.push_str(&quality_row(
        &format!("headline: {}", headline_name(m)),
        run.headline.nfe,
        n_of(&run.headline.unit),
        &stats.headline,
    ));
    for set in &run.table {
        let (family, label) = set.label.split_once('.').unwrap_or((&set.label, ""));
        if let Some(r) = stats.table.get(family).and_then(|f| f.get(label)) {
            s.push_str(&quality_row(
                &set.label,
                set.nfe,
                n_of(&set.unit),
                &r.quality,
            ));
        }
    }
    if let (Some(set), Some(q)) = (&run.exact_prior, &stats.exact_prior) {
        s.push_str(&quality_row(
            "chain from the exact p_N",
            set.nfe,
            n_of(&set.unit),
            q,
        ));
    }
    let mem = &stats.memorisation;
    let _ = write!(
        s,
        "\nMemorisation: the first {} headline images and as many held-out test digits, each with its nearest \
         of the 60 000 training digits (Euclidean, pixels on [0, 1]): median distance {:.3} (held-out digits: {:.3}); \
         {:.1} % of the headline images are nearer than the held-out distances' 1 % quantile (near copies; ≈ 1 % \
         without copying); one-sided Mann–Whitney p = {:.3e} for \"generated images are nearer to the training set\" \
         (small = memorisation).\n",
        mem.images.value,
        mem.median_distance.value,
        mem.median_distance_floor.value,
        100.0 * mem.near_copy_share.value,
        mem.pvalue.value,
    );
    s
}

/// The notes' figure: 6 test digits noised by the forward kernel at `t = 0, 1` and every
/// `N/20` levels (the notes: 0, 1, 10, 20, …, 200), one noise draw per digit.
fn forward_noising(
    m: &MnistDdpmManifest,
    run: &MnistRun,
    out: &OutputDir,
    seed: u64,
) -> Result<Figure> {
    let sched = &m.ddpm.schedule;
    let big_n = sched.steps();
    let ab = sched.alphas_bar();
    let mut levels = vec![0, 1];
    levels.extend((1..=20).map(|k| (k * big_n / 20).max(2)));
    levels.dedup();
    let scale = m.data.pixel_scale;
    let mut rng = smoluchowski::core::streams::seeded(derived_seed(seed, "forward_noising"), 0);
    let mut imgs = Vec::new();
    for d in 0..6 {
        let x0: Vec<f64> = run
            .test
            .image(d)
            .iter()
            .map(|&g| scale.to_value(g))
            .collect();
        let eps: Vec<f64> = (0..PIXELS)
            .map(|_| StandardNormal.sample(&mut rng))
            .collect();
        for &i in &levels {
            let (a, b) = (ab[i].sqrt(), (1.0 - ab[i]).sqrt());
            imgs.extend(
                x0.iter()
                    .zip(&eps)
                    .map(|(&x, &e)| scale.to_unit(a * x + b * e) as f32),
            );
        }
    }
    let file = "forward_noising.png";
    let labels = GridLabels {
        title: format!(
            "forward noising x_t = √ᾱ_t x₀ + √(1 − ᾱ_t) ε (ᾱ_N = {:.3})",
            ab[big_n]
        ),
        rows: Vec::new(),
        cols: levels.iter().map(|i| format!("{i}")).collect(),
    };
    image_grid(&out.file(file), &imgs, SIDE, 6, levels.len(), 2, &labels)?;
    Ok(Figure {
        file: file.into(),
        caption: format!(
            "Six test digits pushed through the forward chain at levels {levels:?} (columns), one ε per \
             digit; displayed on [0, 1] (clamped). The last column is where the reverse process starts \
             (ᾱ_N = {:.2e}: √ᾱ_N = {:.3} of the digit is left, while sampling starts from N(0, I)).",
            ab[big_n],
            ab[big_n].sqrt()
        ),
    })
}

fn sample_grid(m: &MnistDdpmManifest, run: &MnistRun, out: &OutputDir) -> Result<Figure> {
    let file = "samples_grid.png";
    let n = (run.headline.unit.len() / PIXELS).min(100);
    let labels = GridLabels {
        title: format!(
            "{n} samples, {} (NFE {})",
            headline_name(m),
            run.headline.nfe
        ),
        ..Default::default()
    };
    image_grid(
        &out.file(file),
        &run.headline.unit[..n * PIXELS],
        SIDE,
        10,
        10,
        2,
        &labels,
    )?;
    Ok(Figure {
        file: file.into(),
        caption: format!("The first {n} images of samples.npy (headline sampler), uncurated."),
    })
}

fn reverse_process(m: &MnistDdpmManifest, run: &MnistRun, out: &OutputDir) -> Result<Figure> {
    let file = "reverse_process.png";
    let tr = run
        .paths
        .as_ref()
        .ok_or_else(|| anyhow!("the headline sampler recorded no paths"))?;
    let frames = tr.times.len();
    let picks: Vec<usize> = (0..10).map(|k| k * (frames - 1) / 9).collect();
    let mut imgs = Vec::new();
    for p in 0..PATHS {
        for &f in &picks {
            let row = &tr.frame(f)[p * PIXELS..(p + 1) * PIXELS];
            imgs.extend(
                row.iter()
                    .map(|&v| m.data.pixel_scale.to_unit(f64::from(v)) as f32),
            );
        }
    }
    let labels = GridLabels {
        title: "reverse process: 8 samples at 10 grid times".into(),
        rows: Vec::new(),
        cols: picks
            .iter()
            .map(|&f| format!("t={:.2}", tr.times[f]))
            .collect(),
    };
    image_grid(&out.file(file), &imgs, SIDE, PATHS, 10, 2, &labels)?;
    Ok(Figure {
        file: file.into(),
        caption: "Eight of the headline sampler's images (rows) at ten of its grid times (columns, \
                  from t = 1 to its last step, before the final denoising if any), on [0, 1] (clamped)."
            .into(),
    })
}

fn loss_figure(run: &MnistRun, out: &OutputDir) -> Result<Figure> {
    let file = "loss_curve.png";
    let c = &run.trained.curve;
    let steps: Vec<usize> = c.iter().map(|r| r.step).collect();
    let losses: Vec<f64> = c.iter().map(|r| r.loss).collect();
    let (panel, w) = figs::loss_curve(&steps, &losses, "training ε-loss".into(), "log10 loss");
    draw_row(&out.file(file), &[panel], (900, 500))?;
    Ok(Figure {
        file: file.into(),
        caption: format!("Batch ε-loss per step and its trailing {w}-step moving average."),
    })
}

/// Copies the files of `from` (flat) into a new directory `to`.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| anyhow!("cannot create {}: {e}", to.display()))?;
    let entries =
        std::fs::read_dir(from).map_err(|e| anyhow!("cannot read {}: {e}", from.display()))?;
    for entry in entries {
        let p = entry
            .map_err(|e| anyhow!("cannot read {}: {e}", from.display()))?
            .path();
        if p.is_file() {
            let dest = to.join(p.file_name().unwrap_or_default());
            std::fs::copy(&p, &dest).map_err(|e| anyhow!("cannot copy {}: {e}", p.display()))?;
        }
    }
    Ok(())
}

/// Fréchet distance against NFE per sampler family, with the noise floor of the table's size.
fn nfe_figure(stats: &MnistStats, out: &OutputDir) -> Result<Figure> {
    let file = "nfe_frechet.png";
    let mut curves = Vec::new();
    let mut floor = f64::NAN;
    for (family, rows) in &stats.table {
        let pts: Vec<(usize, f64)> = rows
            .values()
            .map(|r| (r.nfe.value as usize, r.quality.frechet.value))
            .collect();
        if let Some(r) = rows.values().next() {
            floor = r.quality.frechet_floor.value;
        }
        curves.push((family.clone(), pts));
    }
    let style = figs::NfeStyle {
        x_pad: 0.1,
        y_pad: (0.3, 0.3),
        radius: 4,
        viridis_max: 0.9,
    };
    let panel = figs::nfe_panel(
        (
            "Fréchet distance of classifier features vs NFE",
            "log10 Fréchet distance",
        ),
        &curves,
        (floor, "noise floor (held-out real digits)".into()),
        &style,
    );
    draw_row(&out.file(file), &[panel], (900, 550))?;
    Ok(Figure {
        file: file.into(),
        caption: "Fréchet distance to test digits of each sampler family's images against its number of \
                  network evaluations; the bar is the same statistic for as many held-out real digits."
            .into(),
    })
}

/// The prior-mismatch section: `ᾱ_N`, the share of signal left in `x_N`, and (when run) the chain
/// from `N(0, I)` beside the chain from the exact `p_N`.
/// The chain from `N(0, I)` and from the exact `p_N` side by side: row pairs of the same 10
/// images (same network, same step noise; they differ only in where they start).
fn prior_figure(run: &MnistRun, out: &OutputDir) -> Result<Option<Figure>> {
    let (Some(exact), Some(normal)) = (
        &run.exact_prior,
        run.table.iter().find(|s| s.label.starts_with("chain.")),
    ) else {
        return Ok(None);
    };
    let n = (exact.unit.len().min(normal.unit.len()) / PIXELS).min(40) / 10 * 10;
    if n == 0 {
        return Ok(None);
    }
    let mut imgs = Vec::with_capacity(2 * n * PIXELS);
    let mut rows = Vec::new();
    for r in 0..n / 10 {
        let span = r * 10 * PIXELS..(r + 1) * 10 * PIXELS;
        imgs.extend_from_slice(&normal.unit[span.clone()]);
        imgs.extend_from_slice(&exact.unit[span]);
        rows.extend(["from N(0, I)".to_string(), "from exact p_N".to_string()]);
    }
    let file = "prior_mismatch.png";
    let labels = GridLabels {
        title: "the chain from N(0, I) (as the notes sample) and from the exact p_N".into(),
        rows,
        cols: Vec::new(),
    };
    image_grid(&out.file(file), &imgs, SIDE, 2 * n / 10, 10, 2, &labels)?;
    Ok(Some(Figure {
        file: file.into(),
        caption: format!(
            "The first {n} images of the chain started from N(0, I) (rows 1, 3, 5, …) and, directly below \
             each such row, the same images started from the exact p_N (test digits through the forward \
             kernel) with the same network and the same step noise: the only difference is the start."
        ),
    }))
}

fn prior_section(m: &MnistDdpmManifest, stats: &MnistStats, run: &MnistRun) -> String {
    let sched = &m.ddpm.schedule;
    let a = sched.alphas_bar()[sched.steps()];
    let mut s = format!(
        "The chain has N = {} levels with ᾱ_N = {a:.3e}: x_N = √ᾱ_N x₀ + √(1 − ᾱ_N) ε keeps \
         √ᾱ_N = {:.3} of the digit. Sampling starts from N(0, I), which is right only when √ᾱ_N ≈ 0.\n\n",
        sched.steps(),
        a.sqrt()
    );
    let chain = stats
        .table
        .get("chain")
        .and_then(|rows| rows.values().next());
    if let (Some(c), Some(e), Some(set)) = (chain, &stats.exact_prior, &run.exact_prior) {
        let f = |q: &ImageQuality| {
            format!(
                "Fréchet {:.3} ({:.2}× its floor {:.3}), KID {:.5}, confidence {:.4}, share ≥ 0.9 {:.3}, \
                 class χ² {:.1} (p = {:.2e})",
                q.frechet.value,
                q.frechet.value / q.frechet_floor.value,
                q.frechet_floor.value,
                q.kid.value,
                q.confidence.value,
                q.confident_share.value,
                q.class_chi2.value,
                q.class_chi2_pvalue.value
            )
        };
        let _ = write!(
            s,
            "Same network, same step noise, {} images each:\n\n\
             - from N(0, I) (as the notes sample): {}\n\
             - from the exact p_N (test digits pushed through the forward kernel): {}\n\n\
             The difference is the cost of the prior mismatch alone.\n",
            set.unit.len() / PIXELS,
            f(&c.quality),
            f(e)
        );
    }
    s
}

/// The headline images' predicted-class histogram against the training label frequencies.
fn class_figure(run: &MnistRun, out: &OutputDir) -> Result<Figure> {
    let file = "class_histogram.png";
    let c = &run.evaluation.headline.generated.classes;
    let n: u64 = c.counts.iter().sum();
    let share: Vec<f64> = c
        .counts
        .iter()
        .map(|&k| k as f64 / n.max(1) as f64)
        .collect();
    let edges: Vec<f64> = (0..=share.len()).map(|k| k as f64 - 0.5).collect();
    let mut panel = figs::bar_chart(
        (
            format!(
                "predicted classes of {n} samples (χ² = {:.1}, p = {:.2e})",
                c.statistic, c.pvalue
            ),
            "digit",
            "share",
        ),
        edges,
        &share,
    );
    let expected: Vec<(f64, f64)> = run
        .labels_hist
        .iter()
        .enumerate()
        .flat_map(|(k, &p)| [(k as f64 - 0.5, p), (k as f64 + 0.5, p)])
        .collect();
    panel.lines.push(figs::Line::solid(
        expected,
        figs::palette::EXACT,
        2,
        Some("training label frequencies".into()),
    ));
    draw_row(&out.file(file), &[panel], (800, 500))?;
    Ok(Figure {
        file: file.into(),
        caption: format!(
            "Share of the headline images the classifier (test accuracy {:.4}) assigns to each digit, \
             against the training label frequencies (line); χ² test with 9 degrees of freedom.",
            run.evaluation.accuracy
        ),
    })
}

/// `dpm_solver_pp_2m, 20 steps, log_snr grid`.
fn headline_name(m: &MnistDdpmManifest) -> String {
    let h = &m.sampling.headline;
    format!(
        "{}, {} steps, {} grid",
        serde_name(&h.method),
        h.steps,
        serde_name(&h.grid)
    )
}
