//! Determinism, recording, progress, configuration and error handling of `sample`.

use smoluchowski_samplers::{
    sample, sample_with_progress, GridSpacing, Method, RecordSpec, SampleOutput, SamplerConfig,
};
use smoluchowski_sde::{GaussianOracle, VpSde};

const PC: Method = Method::PredictorCorrector {
    corrector_steps: 2,
    snr: 0.16,
};

fn oracle() -> GaussianOracle<VpSde> {
    GaussianOracle::new(VpSde::song_default(), vec![1.0, -0.5], vec![0.5, 0.8]).unwrap()
}

fn run(method: Method, n: usize, seed: u64, steps: usize) -> SampleOutput {
    let sde = VpSde::song_default();
    let config = SamplerConfig::new(method, steps, 1e-3).with_final_denoise(true);
    sample(&sde, &mut oracle(), &config, n, seed, None).unwrap()
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(f)
}

#[test]
fn same_seed_gives_bit_identical_samples_and_other_seeds_differ() {
    for method in [Method::EulerMaruyama, Method::ProbabilityFlowHeun, PC] {
        let a = run(method, 5000, 42, 30);
        let b = run(method, 5000, 42, 30);
        assert_eq!(a, b, "{method:?}");
        let c = run(method, 5000, 43, 30);
        assert_ne!(a.samples, c.samples, "{method:?}");
    }
}

#[test]
fn samples_do_not_depend_on_the_thread_count() {
    // n = 10 001 spans three 4096-row noise chunks (the last one partial).
    for method in [Method::EulerMaruyama, PC, Method::Ddim { eta: 0.7 }] {
        let one = in_pool(1, || run(method, 10_001, 9, 20));
        let two = in_pool(2, || run(method, 10_001, 9, 20));
        let three = in_pool(3, || run(method, 10_001, 9, 20));
        assert_eq!(one.samples, two.samples, "{method:?}");
        assert_eq!(one.samples, three.samples, "{method:?}");
    }
}

#[test]
fn row_noise_does_not_depend_on_the_batch_size() {
    // Noise is keyed by (seed, step, row chunk), and the oracle acts row by row, so the first
    // rows of a small batch equal those of a large one (Euler–Maruyama; the PC corrector's step
    // size uses batch-averaged norms and is excluded).
    let small = run(Method::EulerMaruyama, 100, 5, 25);
    let large = run(Method::EulerMaruyama, 9000, 5, 25);
    assert_eq!(small.samples[..], large.samples[..200]);
}

#[test]
fn nfe_counts_score_evaluations() {
    let sde = VpSde::song_default();
    for (method, per_run) in [
        (Method::EulerMaruyama, 7),
        (Method::ProbabilityFlowEuler, 7),
        (Method::ProbabilityFlowHeun, 14),
        (PC, 21),
        (Method::Ddim { eta: 1.0 }, 7),
        (Method::DpmSolverPp2M, 7),
        (Method::EdmHeun, 13),
    ] {
        for denoise in [false, true] {
            let config = SamplerConfig::new(method, 7, 1e-3).with_final_denoise(denoise);
            let mut counter = Counting(oracle(), 0);
            let out = sample(&sde, &mut counter, &config, 10, 0, None).unwrap();
            let want = per_run + usize::from(denoise);
            assert_eq!(
                (out.nfe, counter.1, config.nfe().unwrap()),
                (want, want, want),
                "{method:?}"
            );
        }
    }
}

/// Counts calls to the wrapped score.
struct Counting(GaussianOracle<VpSde>, usize);

impl smoluchowski_sde::Score for Counting {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        self.1 += 1;
        self.0.score(x, t, out)
    }
}

#[test]
fn recording_every_step_keeps_the_first_particles() {
    let sde = VpSde::song_default();
    let config = SamplerConfig::new(Method::EulerMaruyama, 10, 1e-3);
    let record = RecordSpec {
        particles: 3,
        times: None,
    };
    let out = sample(&sde, &mut oracle(), &config, 50, 1, Some(record)).unwrap();
    let tr = out.trajectories.unwrap();
    assert_eq!((tr.frames(), tr.particles, tr.dim), (11, 3, 2));
    assert_eq!(tr.positions.len(), 11 * 3 * 2);
    assert_eq!(tr.times[0], 1.0);
    assert_eq!(tr.times[10], 1e-3);
    assert!(tr.times.windows(2).all(|w| w[1] < w[0]));
    // Without final denoising the last frame is the output.
    assert_eq!(tr.frame(10), &out.samples[..6]);
    // Recording does not change the result.
    let plain = sample(&sde, &mut oracle(), &config, 50, 1, None).unwrap();
    assert_eq!(plain.samples, out.samples);
}

#[test]
fn recording_at_chosen_times_snaps_to_the_grid() {
    let sde = VpSde::song_default();
    // Uniform grid 1, 0.9001, …, 0.001 (step 0.0999).
    let config = SamplerConfig::new(Method::ProbabilityFlowEuler, 10, 1e-3);
    let record = RecordSpec {
        particles: 2,
        times: Some(vec![0.5, 1.0, 0.52]),
    };
    let out = sample(&sde, &mut oracle(), &config, 4, 1, Some(record)).unwrap();
    let tr = out.trajectories.unwrap();
    // 0.5 and 0.52 both snap to 0.5005 (grid index 5): two frames, in grid order.
    assert_eq!(tr.frames(), 2);
    assert_eq!(tr.times[0], 1.0);
    assert!((tr.times[1] - 0.5005).abs() < 1e-12, "{:?}", tr.times);
}

#[test]
fn progress_is_reported_after_every_step() {
    let sde = VpSde::song_default();
    let config = SamplerConfig::new(PC, 6, 1e-3);
    let mut calls = Vec::new();
    sample_with_progress(&sde, &mut oracle(), &config, 8, 0, None, |i, n| {
        calls.push((i, n))
    })
    .unwrap();
    assert_eq!(calls, (1..=6).map(|i| (i, 6)).collect::<Vec<_>>());
}

#[test]
fn other_grids_are_walked_and_still_sample_the_truth_roughly() {
    // Quadratic and log-SNR grids with 200 Heun steps: mean and sd of coordinate 0
    // (truth N(1, 0.5²) up to t_eps = 10⁻³) within 5 standard errors, n = 10⁴.
    let sde = VpSde::song_default();
    for grid in [GridSpacing::Quadratic, GridSpacing::LogSnr] {
        let config = SamplerConfig::new(Method::ProbabilityFlowHeun, 200, 1e-3).with_grid(grid);
        let out = sample(&sde, &mut oracle(), &config, 10_000, 2, None).unwrap();
        let col: Vec<f64> = out
            .samples
            .chunks_exact(2)
            .map(|r| f64::from(r[0]))
            .collect();
        let n = col.len() as f64;
        let mean = col.iter().sum::<f64>() / n;
        let sd = (col.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        // SE(mean) = 0.5/√n = 0.005; SE(sd) ≈ 0.5/√(2n) ≈ 0.0035.
        assert!((mean - 1.0).abs() < 5.0 * 0.005, "{grid:?}: mean {mean}");
        assert!((sd - 0.5).abs() < 5.0 * 0.0036, "{grid:?}: sd {sd}");
    }
}

#[test]
fn config_round_trips_through_toml_and_rejects_unknown_fields() {
    let text = r#"
        steps = 1000
        t_eps = 1e-3
        final_denoise = true
        grid = "log_snr"
        method = { predictor_corrector = { corrector_steps = 1, snr = 0.16 } }
    "#;
    let config: SamplerConfig = toml::from_str(text).unwrap();
    assert_eq!(
        config,
        SamplerConfig::new(
            Method::PredictorCorrector {
                corrector_steps: 1,
                snr: 0.16
            },
            1000,
            1e-3
        )
        .with_final_denoise(true)
        .with_grid(GridSpacing::LogSnr)
    );
    let back: SamplerConfig = toml::from_str(&toml::to_string(&config).unwrap()).unwrap();
    assert_eq!(back, config);

    let minimal: SamplerConfig =
        toml::from_str("method = \"euler_maruyama\"\nsteps = 10\nt_eps = 0.01").unwrap();
    assert_eq!(minimal, SamplerConfig::new(Method::EulerMaruyama, 10, 0.01));

    let typo = toml::from_str::<SamplerConfig>(
        "method = \"euler_maruyama\"\nsteps = 10\nt_eps = 0.01\nstep = 3",
    );
    let msg = typo.unwrap_err().to_string();
    assert!(msg.contains("unknown field `step`"), "{msg}");
    let inner = toml::from_str::<SamplerConfig>(
        "steps = 10\nt_eps = 0.01\nmethod = { predictor_corrector = { corrector_steps = 1, snr = 0.1, bogus = 2 } }",
    );
    let msg = inner.unwrap_err().to_string();
    assert!(msg.contains("bogus"), "{msg}");
    for (text, method) in [
        ("\"edm_heun\"", Method::EdmHeun),
        ("\"dpm_solver_pp_2m\"", Method::DpmSolverPp2M),
        ("{ ddim = { eta = 0.5 } }", Method::Ddim { eta: 0.5 }),
        (
            "{ dormand_prince = { rtol = 1e-4, atol = 1e-6 } }",
            Method::DormandPrince {
                rtol: 1e-4,
                atol: 1e-6,
            },
        ),
    ] {
        let toml_text = format!(
            "steps = 8\nt_eps = 0.01\ngrid = {{ karras = {{ rho = 7.0 }} }}\nmethod = {text}"
        );
        let config: SamplerConfig = toml::from_str(&toml_text).unwrap();
        let want = SamplerConfig::new(method, 8, 0.01).with_grid(GridSpacing::Karras { rho: 7.0 });
        assert_eq!(config, want);
        let back: SamplerConfig = toml::from_str(&toml::to_string(&config).unwrap()).unwrap();
        assert_eq!(back, config);
    }
    let karras_typo = toml::from_str::<SamplerConfig>(
        "method = \"edm_heun\"\nsteps = 10\nt_eps = 0.01\ngrid = { karras = { r = 7.0 } }",
    );
    assert!(karras_typo.is_err());
    let record: RecordSpec = serde_json::from_str(r#"{"particles": 5}"#).unwrap();
    assert_eq!(record.times, None);
    assert!(serde_json::from_str::<RecordSpec>(r#"{"particles": 5, "time": [1]}"#).is_err());
}

#[test]
fn bad_parameters_are_errors_naming_the_parameter() {
    let sde = VpSde::song_default();
    let err = |config: SamplerConfig, n: usize, record: Option<RecordSpec>| {
        sample(&sde, &mut oracle(), &config, n, 0, record).unwrap_err()
    };
    let em = |steps, t_eps| SamplerConfig::new(Method::EulerMaruyama, steps, t_eps);
    assert_eq!(err(em(10, 1.5), 5, None).path(), "t_eps");
    assert_eq!(err(em(10, 0.0), 5, None).path(), "t_eps");
    assert_eq!(err(em(0, 0.1), 5, None).path(), "steps");
    assert_eq!(err(em(10, 0.1), 0, None).path(), "n");
    let bad_snr = SamplerConfig::new(
        Method::PredictorCorrector {
            corrector_steps: 1,
            snr: -1.0,
        },
        10,
        0.1,
    );
    let e = err(bad_snr, 5, None);
    assert_eq!(e.path(), "method.snr");
    assert!(e.to_string().contains("-1"), "{e}");
    let with = |method| SamplerConfig::new(method, 10, 0.1);
    assert_eq!(
        err(with(Method::Ddim { eta: 1.5 }), 5, None).path(),
        "method.eta"
    );
    assert_eq!(
        err(with(Method::Ddim { eta: f64::NAN }), 5, None).path(),
        "method.eta"
    );
    let dp = |rtol, atol| Method::DormandPrince { rtol, atol };
    assert_eq!(err(with(dp(0.0, 1e-3)), 5, None).path(), "method.rtol");
    assert_eq!(err(with(dp(1e-3, -1.0)), 5, None).path(), "method.atol");
    let karras = em(10, 0.1).with_grid(GridSpacing::Karras { rho: -1.0 });
    assert_eq!(err(karras, 5, None).path(), "grid.karras.rho");
    let rec = |particles, times| Some(RecordSpec { particles, times });
    assert_eq!(err(em(10, 0.1), 5, rec(6, None)).path(), "record.particles");
    assert_eq!(err(em(10, 0.1), 5, rec(0, None)).path(), "record.particles");
    assert_eq!(
        err(em(10, 0.1), 5, rec(2, Some(vec![0.5, 0.01]))).path(),
        "record.times[1]"
    );
}
