//! Classifier-free guidance (a score wrapper) and inpainting (in the driver), for every sampler.

use smoluchowski_datasets::GaussianMixture;
use smoluchowski_metrics::ks_one_sample;
use smoluchowski_samplers::{
    sample, sample_inpainted, Guidance, Guided, InpaintMethod, Inpainting, Method, SamplerConfig,
};
use smoluchowski_sde::{
    ConditionalScore, ForwardSde, GaussianOracle, LabelledMixtureOracle, Score, VpSde,
};
use statrs::distribution::{ContinuousCDF, Normal};

fn two_classes() -> GaussianMixture {
    GaussianMixture::new(
        vec![vec![1.5, 0.0], vec![-1.0, 0.5]],
        vec![vec![0.3, 0.5], vec![0.6, 0.2]],
        vec![0.3, 0.7],
    )
    .unwrap()
}

/// The guided score against the closed form written out independently:
/// `(1 + w)(−(x − m μ_c)/v_c) − w Σ_k r_k (−(x − m μ_k)/v_k)`, `v = m² s² + σ²`.
#[test]
fn guided_exact_score_is_the_closed_form() {
    let sde = VpSde::song_default();
    let mix = two_classes();
    let (t, w, c) = (0.3, 2.5, 0usize);
    let (m, sig) = (sde.mean_coef(t), sde.marginal_std(t));
    let x = [0.7f32, -0.2, -1.1, 0.9];
    let mut guided = Guided::new(
        LabelledMixtureOracle::new(sde, mix.clone()),
        c,
        Guidance::new(w),
    )
    .unwrap();
    let mut out = [0.0f32; 4];
    guided.score(&x, t, &mut out);
    for r in 0..2 {
        let p = [f64::from(x[2 * r]), f64::from(x[2 * r + 1])];
        let comp = |k: usize| {
            let mut logn = mix.weights()[k].ln();
            let mut s = [0.0; 2];
            for j in 0..2 {
                let v = m * m * mix.std(k)[j].powi(2) + sig * sig;
                let z = p[j] - m * mix.mean(k)[j];
                logn += -0.5 * z * z / v - 0.5 * (std::f64::consts::TAU * v).ln();
                s[j] = -z / v;
            }
            (logn, s)
        };
        let (l0, s0) = comp(0);
        let (l1, s1) = comp(1);
        let r0 = 1.0 / (1.0 + (l1 - l0).exp());
        let sc = if c == 0 { s0 } else { s1 };
        for j in 0..2 {
            let uncond = r0 * s0[j] + (1.0 - r0) * s1[j];
            let want = (1.0 + w) * sc[j] - w * uncond;
            let got = f64::from(out[2 * r + j]);
            assert!(
                (got - want).abs() < 1e-5 * (1.0 + want.abs()),
                "{got} vs {want}"
            );
        }
    }
    assert_eq!(guided.network_evaluations(t), 2);
}

/// A guided call counts 2 network evaluations inside the guidance interval, 1 outside; `w = 0`
/// is the conditional score (1 evaluation).
#[test]
fn guided_nfe_counts_both_evaluations_inside_the_interval() {
    let sde = VpSde::song_default();
    let config = SamplerConfig::new(Method::EulerMaruyama, 10, 1e-3);
    let oracle = LabelledMixtureOracle::new(sde, two_classes());
    let mut all = Guided::new(oracle.clone(), 1, Guidance::new(1.0)).unwrap();
    assert_eq!(
        sample(&sde, &mut all, &config, 10, 1, None).unwrap().nfe,
        20
    );
    // Uniform grid t_i = 1 − 0.0999 i: t_0 … t_5 = 1, …, 0.5005 are ≥ 0.5 (6 of 10 step starts).
    let half = Guidance {
        weight: 1.0,
        interval: Some([0.5, 1.0]),
    };
    let mut part = Guided::new(oracle.clone(), 1, half).unwrap();
    assert_eq!(
        sample(&sde, &mut part, &config, 10, 1, None).unwrap().nfe,
        16
    );
    let mut unguided = Guided::new(oracle.clone(), 1, Guidance::new(0.0)).unwrap();
    let a = sample(&sde, &mut unguided, &config, 10, 1, None).unwrap();
    assert_eq!(a.nfe, 10);
    let mut class = oracle.clone();
    let b = sample(&sde, &mut ClassScore(&mut class, 1), &config, 10, 1, None).unwrap();
    assert_eq!(a.samples, b.samples);
    for (bad, path) in [
        (Guidance::new(-1.0), "guidance.weight"),
        (
            Guidance {
                weight: 1.0,
                interval: Some([0.6, 0.5]),
            },
            "guidance.interval",
        ),
    ] {
        let e = Guided::new(oracle.clone(), 0, bad).err().unwrap();
        assert_eq!(e.path(), path);
    }
    assert_eq!(
        Guided::new(oracle, 2, Guidance::new(1.0))
            .err()
            .unwrap()
            .path(),
        "label"
    );
}

struct ClassScore<'a, M: ConditionalScore>(&'a mut M, usize);
impl<M: ConditionalScore> Score for ClassScore<'_, M> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        self.0.conditional_score(x, t, Some(self.1), out)
    }
}

fn inpainting(n: usize, method: InpaintMethod) -> Inpainting {
    Inpainting {
        known: vec![true, false],
        values: (0..n)
            .flat_map(|i| [0.25 + 0.001 * i as f32, 0.0])
            .collect(),
        method,
    }
}

/// With independent coordinates the exact joint score moves the unknown coordinate by its own
/// marginal law, whatever the known one does: completions of y are N(μ_y, s_y²) (KS not
/// rejected at α = 1e-3, n = 4000), and the known x is returned exactly — for a stochastic and
/// a deterministic sampler, with replacement and with RePaint. RePaint with one pass is
/// replacement, bit for bit.
#[test]
fn inpainting_completes_independent_coordinates_by_their_marginal() {
    let sde = VpSde::song_default();
    let (mu, s) = (vec![1.0, -0.5], vec![0.5, 0.8]);
    let n = 4000;
    let repaint = InpaintMethod::Repaint {
        resample_count: 3,
        jump_length: 4,
    };
    for method in [
        Method::EulerMaruyama,
        Method::Ddim { eta: 0.0 },
        Method::DormandPrince {
            rtol: 1e-4,
            atol: 1e-4,
        },
    ] {
        for how in [InpaintMethod::Replacement, repaint] {
            let config = SamplerConfig::new(method, 40, 1e-3);
            let mut oracle = GaussianOracle::new(sde, mu.clone(), s.clone()).unwrap();
            let spec = inpainting(n, how);
            let out = sample_inpainted(&sde, &mut oracle, &config, &spec, 9).unwrap();
            for i in 0..n {
                assert_eq!(out.samples[2 * i], spec.values[2 * i]);
            }
            let y: Vec<f64> = out
                .samples
                .iter()
                .skip(1)
                .step_by(2)
                .map(|&v| f64::from(v))
                .collect();
            let law = Normal::new(mu[1], s[1]).unwrap();
            let ks = ks_one_sample(&y, |v| law.cdf(v));
            assert!(ks.pvalue > 1e-3, "{method:?} {how:?}: {ks:?}");
        }
    }
    let config = SamplerConfig::new(Method::EulerMaruyama, 12, 1e-3);
    let run = |how| {
        let mut oracle = GaussianOracle::new(sde, mu.clone(), s.clone()).unwrap();
        sample_inpainted(&sde, &mut oracle, &config, &inpainting(50, how), 4).unwrap()
    };
    let one_pass = InpaintMethod::Repaint {
        resample_count: 1,
        jump_length: 5,
    };
    assert_eq!(run(InpaintMethod::Replacement), run(one_pass));
    let r = run(repaint);
    assert_eq!(r.nfe, 3 * 12);
    assert_ne!(run(InpaintMethod::Replacement).samples, r.samples);
}

#[test]
fn inpainting_names_bad_input() {
    let sde = VpSde::song_default();
    let config = SamplerConfig::new(Method::EulerMaruyama, 10, 1e-3);
    let mut oracle = GaussianOracle::new(sde, vec![0.0, 0.0], vec![1.0, 1.0]).unwrap();
    let mut spec = inpainting(5, InpaintMethod::Replacement);
    spec.known = vec![true, true];
    let e = sample_inpainted(&sde, &mut oracle, &config, &spec, 1).unwrap_err();
    assert_eq!(e.path(), "inpainting.known");
    let mut spec = inpainting(5, InpaintMethod::Replacement);
    spec.values.pop();
    let e = sample_inpainted(&sde, &mut oracle, &config, &spec, 1).unwrap_err();
    assert_eq!(e.path(), "inpainting.values.len()");
    let spec = inpainting(
        5,
        InpaintMethod::Repaint {
            resample_count: 0,
            jump_length: 3,
        },
    );
    let e = sample_inpainted(&sde, &mut oracle, &config, &spec, 1).unwrap_err();
    assert_eq!(e.path(), "inpainting.method.resample_count");
    let spec = inpainting(
        5,
        InpaintMethod::Repaint {
            resample_count: 2,
            jump_length: 0,
        },
    );
    let e = sample_inpainted(&sde, &mut oracle, &config, &spec, 1).unwrap_err();
    assert_eq!(e.path(), "inpainting.method.jump_length");
}
