//! The discrete DDPM chain (seeds 003/004) against exact truth: its forward marginals, its
//! continuum limit (the VP SDE), and ancestral sampling with the exact Gaussian score.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use smoluchowski_metrics::{ks_one_sample, KsResult};
use smoluchowski_samplers::{
    sample, sample_ddpm, sample_ddpm_from, DdpmSchedule, DdpmVariance, Method, RecordSpec,
    SamplerConfig,
};
use smoluchowski_sde::{normal_cdf, DdpmKernel, ForwardSde, GaussianOracle, VpSde};

const ALPHA: f64 = 1e-3;
const MU: [f64; 2] = [1.0, -0.5];
const S: [f64; 2] = [0.5, 0.8];
const N: usize = 20_000;

/// Forward-simulates `x_i = √(1 − β_i) x_{i−1} + √β_i z` from the point `x0` for `n` chains
/// (f64) and returns KS at each `check` level against `N(√ᾱ_i x0, 1 − ᾱ_i)`, and against the
/// wrong law of level `i + shift` (which must be rejected).
fn forward_ks(
    schedule: &DdpmSchedule,
    x0: f64,
    checks: &[usize],
    shift: usize,
) -> Vec<(KsResult, KsResult)> {
    let (betas, ab) = (schedule.betas(), schedule.alphas_bar());
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut x = vec![x0; N];
    let ab = &ab;
    let law = |i: usize| move |v: f64| normal_cdf((v - ab[i].sqrt() * x0) / (1.0 - ab[i]).sqrt());
    let mut out = Vec::new();
    for (i, &beta) in betas.iter().enumerate().skip(1) {
        let (a, c) = ((1.0 - beta).sqrt(), beta.sqrt());
        for xi in x.iter_mut() {
            let z: f64 = StandardNormal.sample(&mut rng);
            *xi = a * *xi + c * z;
        }
        if checks.contains(&i) {
            out.push((ks_one_sample(&x, law(i)), ks_one_sample(&x, law(i + shift))));
        }
    }
    out
}

#[test]
fn forward_chain_has_the_exact_discrete_marginals() {
    let cases = [
        (
            DdpmSchedule::linear(1e-4, 0.02, 200).unwrap(),
            [20, 100, 200],
            10,
        ),
        (DdpmSchedule::cosine(0.008, 100).unwrap(), [5, 50, 100], 5),
    ];
    for (schedule, checks, shift) in cases {
        let checks_ok: Vec<usize> = checks
            .iter()
            .map(|&i| i.min(schedule.steps() - shift))
            .collect();
        for ((ok, wrong), i) in forward_ks(&schedule, 1.5, &checks_ok, shift)
            .into_iter()
            .zip(&checks_ok)
        {
            eprintln!(
                "{:?} i = {i}: D = {:.4} p = {:.3}; vs level i+{shift}: D = {:.4} p = {:.1e}",
                schedule.kind(),
                ok.statistic,
                ok.pvalue,
                wrong.statistic,
                wrong.pvalue
            );
            assert!(ok.pvalue > ALPHA, "{:?} level {i}: {ok:?}", schedule.kind());
            assert!(
                wrong.pvalue < ALPHA,
                "{:?} level {i}+{shift}: {wrong:?}",
                schedule.kind()
            );
        }
    }
}

/// `max_i |ᾱ_i − m(t_i)²|` for the chain matching `sde` with `n` levels.
fn max_alpha_bar_error(sde: &VpSde, n: usize) -> f64 {
    let ab = DdpmSchedule::matching_vp_sde(sde, n).unwrap().alphas_bar();
    (0..=n)
        .map(|i| (ab[i] - sde.mean_coef(i as f64 / n as f64).powi(2)).abs())
        .fold(0.0, f64::max)
}

#[test]
fn discrete_alphas_bar_converge_to_the_vp_kernel_at_rate_one_over_n() {
    let sde = VpSde::song_default();
    let ns = [50usize, 200, 1000, 4000];
    let errs: Vec<f64> = ns.iter().map(|&n| max_alpha_bar_error(&sde, n)).collect();
    // Leading term (module docs of `ddpm`): ᾱ_i − m² ≈ m(t)² C(t)/N with
    // C(t) = (β_max − β_min) t(1 − t)/2 − ½ ∫₀ᵗ β², ∫₀ᵗ β² = a²t + a b t² + b² t³/3.
    let (a, b) = (sde.beta_min(), sde.beta_max() - sde.beta_min());
    let lead = (0..=100_000)
        .map(|k| {
            let t = k as f64 / 100_000.0;
            let int_b2 = a * a * t + a * b * t * t + b * b * t.powi(3) / 3.0;
            (sde.mean_coef(t).powi(2) * (b * t * (1.0 - t) / 2.0 - 0.5 * int_b2)).abs()
        })
        .fold(0.0, f64::max);
    for (&n, &e) in ns.iter().zip(&errs) {
        eprintln!(
            "N = {n}: max |ᾱ_i − m(t_i)²| = {e:.3e}, N·err = {:.4}",
            n as f64 * e
        );
    }
    eprintln!("predicted limit of N·err: {lead:.4}");
    for k in 1..ns.len() {
        let (ratio, want) = (errs[k - 1] / errs[k], ns[k] as f64 / ns[k - 1] as f64);
        assert!(
            (ratio / want - 1.0).abs() < 0.1,
            "N {} → {}: error ratio {ratio:.3}, want ≈ {want} (rate 1/N)",
            ns[k - 1],
            ns[k]
        );
    }
    let last = ns[3] as f64 * errs[3];
    assert!(
        (last / lead - 1.0).abs() < 0.02,
        "N·err = {last}, predicted {lead}"
    );
}

fn oracle() -> GaussianOracle<VpSde> {
    GaussianOracle::new(VpSde::song_default(), MU.to_vec(), S.to_vec()).unwrap()
}

/// KS of each coordinate of `samples` against `N(m μ_j, m² s_j² + σ²)`.
fn ks_vs(samples: &[f32], m: f64, sig: f64) -> [KsResult; 2] {
    [0, 1].map(|j| {
        let col: Vec<f64> = samples.chunks_exact(2).map(|r| f64::from(r[j])).collect();
        let sd = (m * m * S[j] * S[j] + sig * sig).sqrt();
        ks_one_sample(&col, |x| normal_cdf((x - m * MU[j]) / sd))
    })
}

fn min_p(ks: &[KsResult; 2]) -> f64 {
    ks[0].pvalue.min(ks[1].pvalue)
}

#[test]
fn ancestral_sampling_of_the_matching_chain_reproduces_gaussian_data() {
    // N = 1000 levels 1e-4 → 0.02 is the chain of Song's VP SDE (β ∈ [0.1, 20]); the score is
    // the exact continuous one, which for the discrete chain is off by O(1/N) (ᾱ_i ≠ m(t_i)²).
    let schedule = DdpmSchedule::linear(1e-4, 0.02, 1000).unwrap();
    assert_eq!(schedule.to_vp_sde().unwrap(), VpSde::song_default());
    for variance in [DdpmVariance::Posterior, DdpmVariance::Beta] {
        let out = sample_ddpm(&schedule, variance, &mut oracle(), N, 5, None).unwrap();
        assert_eq!(out.nfe, 1000);
        let ks = ks_vs(&out.samples, 1.0, 0.0);
        eprintln!("N = 1000 {variance:?}: {ks:?}");
        assert!(min_p(&ks) > ALPHA, "{variance:?}: {ks:?}");
    }
    // The coarsest matching chain (β_max/N < 1 needs N > 20): N = 25 is measurably wrong.
    let coarse = DdpmSchedule::matching_vp_sde(&VpSde::song_default(), 25).unwrap();
    for variance in [DdpmVariance::Posterior, DdpmVariance::Beta] {
        let out = sample_ddpm(&coarse, variance, &mut oracle(), N, 5, None).unwrap();
        let ks = ks_vs(&out.samples, 1.0, 0.0);
        eprintln!("N = 25 {variance:?}: {ks:?}");
        assert!(min_p(&ks) < ALPHA, "{variance:?}: {ks:?}");
    }
}

#[test]
fn ddpm_method_on_a_grid_converges_and_its_posterior_form_is_ddim_eta_one() {
    let sde = VpSde::song_default();
    let t_eps = 1e-3;
    let (m, sig) = (sde.mean_coef(t_eps), sde.marginal_std(t_eps));
    for variance in [DdpmVariance::Posterior, DdpmVariance::Beta] {
        let method = Method::DdpmAncestral { variance };
        let fine = SamplerConfig::new(method, 1000, t_eps);
        let out = sample(&sde, &mut oracle(), &fine, N, 9, None).unwrap();
        assert_eq!(Some(out.nfe), fine.nfe());
        let ks = ks_vs(&out.samples, m, sig);
        eprintln!("grid 1000 {variance:?}: {ks:?}");
        assert!(min_p(&ks) > ALPHA, "{variance:?}: {ks:?}");
        let coarse = SamplerConfig::new(method, 10, t_eps);
        let out = sample(&sde, &mut oracle(), &coarse, N, 9, None).unwrap();
        let ks = ks_vs(&out.samples, m, sig);
        eprintln!("grid 10 {variance:?}: {ks:?}");
        assert!(min_p(&ks) < ALPHA, "{variance:?}: {ks:?}");
    }
    let run = |method| {
        let config = SamplerConfig::new(method, 50, t_eps);
        sample(&sde, &mut oracle(), &config, 2000, 4, None)
            .unwrap()
            .samples
    };
    let ddpm = run(Method::DdpmAncestral {
        variance: DdpmVariance::Posterior,
    });
    let ddim = run(Method::Ddim { eta: 1.0 });
    let diff = ddpm
        .iter()
        .zip(&ddim)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff < 1e-4, "max |DDPM(posterior) − DDIM(η=1)| = {diff}");
}

#[test]
fn sample_ddpm_is_deterministic_records_frames_and_rejects_bad_input() {
    let schedule = DdpmSchedule::cosine(0.008, 40).unwrap();
    let rec = RecordSpec {
        particles: 3,
        times: Some(vec![1.0, 0.5, 0.0]),
    };
    let run = |seed| {
        sample_ddpm(
            &schedule,
            DdpmVariance::Beta,
            &mut oracle(),
            500,
            seed,
            Some(rec.clone()),
        )
        .unwrap()
    };
    let (a, b, c) = (run(1), run(1), run(2));
    assert_eq!(a, b);
    assert_ne!(a.samples, c.samples);
    let tr = a.trajectories.as_ref().unwrap();
    assert_eq!(tr.times, vec![1.0, 0.5, 0.0]);
    assert_eq!(tr.frame(2), &a.samples[..6]);
    let e = sample_ddpm(&schedule, DdpmVariance::Beta, &mut oracle(), 0, 1, None).unwrap_err();
    assert_eq!(e.path(), "n");

    // Serde round trip, and validation on deserialisation.
    let text = "kind = { linear = { beta_start = 1e-4, beta_end = 0.02 } }\nsteps = 200\n";
    let s: DdpmSchedule = toml::from_str(text).unwrap();
    assert_eq!(s, DdpmSchedule::linear(1e-4, 0.02, 200).unwrap());
    let back: DdpmSchedule = toml::from_str(&toml::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);
    let bad = "kind = { linear = { beta_start = 1e-4, beta_end = 1.5 } }\nsteps = 200\n";
    let err = toml::from_str::<DdpmSchedule>(bad).unwrap_err().to_string();
    assert!(err.contains("kind.linear.beta_end"), "{err}");
    let m: SamplerConfig = toml::from_str(
        "method = { ddpm_ancestral = { variance = \"posterior\" } }\nsteps = 10\nt_eps = 1e-3\n",
    )
    .unwrap();
    assert_eq!(
        m.method,
        Method::DdpmAncestral {
            variance: DdpmVariance::Posterior
        }
    );
}

#[test]
fn the_notes_schedule_needs_the_exact_prior_the_chain_ends_in() {
    // Notes 004: N = 200, β linear 1e-4 → 0.02, so ᾱ_N = 0.13 and x_N keeps √ᾱ_N = 36 % of
    // the data. With the chain's exact score (the Gaussian oracle on its own kernel), ancestral
    // sampling from N(0, I) misses the data law; from the exact p_N it reproduces it.
    let schedule = DdpmSchedule::linear(1e-4, 0.02, 200).unwrap();
    let ab = schedule.alphas_bar();
    let a_n = ab[200];
    assert!((a_n - 0.1322).abs() < 5e-4, "ᾱ_N = {a_n}");
    let kernel = DdpmKernel::new(&ab).unwrap();
    let mut exact = GaussianOracle::new(kernel, MU.to_vec(), S.to_vec()).unwrap();
    let from_normal = sample_ddpm(&schedule, DdpmVariance::Beta, &mut exact, N, 8, None).unwrap();
    let ks = ks_vs(&from_normal.samples, 1.0, 0.0);
    eprintln!("from N(0, I): {ks:?}");
    assert!(min_p(&ks) < ALPHA, "{ks:?}");

    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let (m, sig) = (a_n.sqrt(), (1.0 - a_n).sqrt());
    let start: Vec<f32> = (0..N * 2)
        .map(|k| {
            let j = k % 2;
            let z: f64 = StandardNormal.sample(&mut rng);
            let x0 = MU[j] + S[j] * z;
            let e: f64 = StandardNormal.sample(&mut rng);
            (m * x0 + sig * e) as f32
        })
        .collect();
    let from_exact =
        sample_ddpm_from(&schedule, DdpmVariance::Beta, &mut exact, start, 8, None).unwrap();
    assert_eq!(from_exact.nfe, 200);
    let ks = ks_vs(&from_exact.samples, 1.0, 0.0);
    eprintln!("from the exact p_N: {ks:?}");
    assert!(min_p(&ks) > ALPHA, "{ks:?}");
    let e = sample_ddpm_from(
        &schedule,
        DdpmVariance::Beta,
        &mut exact,
        vec![0.0; 3],
        8,
        None,
    )
    .unwrap_err();
    assert_eq!(e.path(), "x_N");
}
