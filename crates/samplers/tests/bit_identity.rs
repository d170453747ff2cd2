//! Pins the exact output bits of every sampler, so that refactors of the solvers are checked to
//! change no arithmetic.
//!
//! Each case runs `sample` on a fixed problem (the exact score of a 2-D, 3-component Gaussian
//! mixture under Song's VP SDE, n = 1000 rows, seed 2024, 12 steps down to t_eps = 10⁻³,
//! recording the first 3 rows at every grid time) with final denoising off and on, and hashes
//! (FNV-1a, 64 bit) the little-endian bytes of the samples, the NFE, and the recorded times and
//! positions.
//!
//! How the constants were recorded: at commit d697c9d (before the solvers/ redesign, when the
//! samplers lived in methods.rs as `Stepper` step methods) with
//! `PIN_PRINT=1 cargo test -p smoluchowski-samplers --test bit_identity -- --nocapture`,
//! which prints the table below instead of asserting. The same hashes were then reproduced after
//! the redesign. They are platform-sensitive only through libm's `exp`/`ln`/`sqrt` (`sqrt` is
//! exact; x86-64 Linux glibc here); a mismatch on another platform alone is not a regression,
//! a mismatch after a code change on the same platform is.

use smoluchowski_datasets::GaussianMixture;
use smoluchowski_samplers::{
    sample, DdpmVariance, GridSpacing, Method, RecordSpec, SampleOutput, SamplerConfig,
};
use smoluchowski_sde::{MixtureOracle, VpSde};

const N: usize = 1000;
const SEED: u64 = 2024;
const STEPS: usize = 12;
const T_EPS: f64 = 1e-3;

fn mixture() -> GaussianMixture {
    GaussianMixture::new(
        vec![vec![1.0, -0.5], vec![-1.5, 0.5], vec![0.0, 2.0]],
        vec![vec![0.5, 0.8], vec![0.3, 0.3], vec![0.7, 0.2]],
        vec![0.5, 0.3, 0.2],
    )
    .unwrap()
}

/// FNV-1a, 64 bit.
struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

fn hash(out: &SampleOutput) -> u64 {
    let mut h = Fnv::new();
    for v in &out.samples {
        h.bytes(&v.to_le_bytes());
    }
    h.bytes(&(out.nfe as u64).to_le_bytes());
    let tr = out.trajectories.as_ref().expect("recorded");
    for t in &tr.times {
        h.bytes(&t.to_le_bytes());
    }
    for v in &tr.positions {
        h.bytes(&v.to_le_bytes());
    }
    h.0
}

/// `(name, method, grid)` of every case.
fn cases() -> Vec<(&'static str, Method, GridSpacing)> {
    let (u, lsnr) = (GridSpacing::Uniform, GridSpacing::LogSnr);
    vec![
        ("euler_maruyama", Method::EulerMaruyama, u),
        ("pf_euler", Method::ProbabilityFlowEuler, u),
        ("pf_heun", Method::ProbabilityFlowHeun, u),
        (
            "pc_1",
            Method::PredictorCorrector {
                corrector_steps: 1,
                snr: 0.16,
            },
            u,
        ),
        (
            "pc_2",
            Method::PredictorCorrector {
                corrector_steps: 2,
                snr: 0.1,
            },
            u,
        ),
        ("ddim_0", Method::Ddim { eta: 0.0 }, u),
        ("ddim_0.5", Method::Ddim { eta: 0.5 }, u),
        ("ddim_1", Method::Ddim { eta: 1.0 }, lsnr),
        (
            "ddpm_beta",
            Method::DdpmAncestral {
                variance: DdpmVariance::Beta,
            },
            u,
        ),
        (
            "ddpm_posterior",
            Method::DdpmAncestral {
                variance: DdpmVariance::Posterior,
            },
            u,
        ),
        (
            "edm_heun",
            Method::EdmHeun,
            GridSpacing::Karras { rho: 7.0 },
        ),
        ("dpm_2m", Method::DpmSolverPp2M, lsnr),
        ("dpm_3m", Method::DpmSolverPp3M, lsnr),
        ("dpm_2m_sde_1", Method::DpmSolverPp2MSde { eta: 1.0 }, lsnr),
        ("dpm_2m_sde_0.5", Method::DpmSolverPp2MSde { eta: 0.5 }, u),
        (
            "dpm_3m_sde_1_k0.5",
            Method::DpmSolverPp3MSde {
                eta: 1.0,
                curvature: 0.5,
            },
            lsnr,
        ),
        (
            "dpm_3m_sde_0.3_k1",
            Method::DpmSolverPp3MSde {
                eta: 0.3,
                curvature: 1.0,
            },
            u,
        ),
        (
            "dormand_prince",
            Method::DormandPrince {
                rtol: 1e-4,
                atol: 1e-4,
            },
            u,
        ),
    ]
}

/// `(name, hash without final denoising, hash with)`, recorded at d697c9d (see the module doc).
const PINNED: &[(&str, u64, u64)] = &[
    ("euler_maruyama", 0xdb6a4b612705980d, 0x829f9bdf187b9a67),
    ("pf_euler", 0xf8fa301e87070019, 0xd4e059c0d7413845),
    ("pf_heun", 0xe5027e1d73fd7a69, 0x72270ea7491de9a2),
    ("pc_1", 0x44688a65e9feb5f5, 0xb539c783d4a4c432),
    ("pc_2", 0xa082e31d3b6a8c97, 0x77f3dd28a2bd1af0),
    ("ddim_0", 0xaf4a723f3e55486b, 0x84dbe1659e9ba9f1),
    ("ddim_0.5", 0xff3caadc0c3ca797, 0xfaeb39fbb1073ff1),
    ("ddim_1", 0xd2f4377b518873ba, 0xbfda7d7c06b3f6c1),
    ("ddpm_beta", 0xe9b6b72a71ecb609, 0x9332ba7c742a2adb),
    ("ddpm_posterior", 0xf677cff281f3b937, 0x84e6e1a8d17d61e2),
    ("edm_heun", 0x00e9cff95f5f44b4, 0xd7caf43f43f21905),
    ("dpm_2m", 0x6c91d72aff969cf6, 0xca236bffd696364b),
    ("dpm_3m", 0x15563cba375bdb86, 0xd3cfc3be52d7e452),
    ("dpm_2m_sde_1", 0xe4d72b97215383c3, 0x5644b8e54c474ffb),
    ("dpm_2m_sde_0.5", 0x1d03b8c03f7ed66f, 0x24c9306e093db738),
    ("dpm_3m_sde_1_k0.5", 0x61ec4cad714358cf, 0x0d135d2cd48b37f4),
    ("dpm_3m_sde_0.3_k1", 0x1dcff1edf5c524ab, 0x77f157a66147cebd),
    ("dormand_prince", 0x9969caa1b2d651fe, 0x2663e70b3486d13b),
];

fn run(method: Method, grid: GridSpacing, final_denoise: bool) -> SampleOutput {
    let sde = VpSde::song_default();
    let mut oracle = MixtureOracle::new(sde, mixture());
    let config = SamplerConfig::new(method, STEPS, T_EPS)
        .with_grid(grid)
        .with_final_denoise(final_denoise);
    let record = RecordSpec {
        particles: 3,
        times: None,
    };
    let out = sample(&sde, &mut oracle, &config, N, SEED, Some(record)).unwrap();
    assert!(out.samples.iter().all(|v| v.is_finite()), "{method:?}");
    out
}

#[test]
fn every_sampler_reproduces_its_pinned_output_bits() {
    let got: Vec<(&str, u64, u64)> = cases()
        .into_iter()
        .map(|(name, method, grid)| {
            (
                name,
                hash(&run(method, grid, false)),
                hash(&run(method, grid, true)),
            )
        })
        .collect();
    if std::env::var_os("PIN_PRINT").is_some() {
        for (name, a, b) in &got {
            println!("    (\"{name}\", 0x{a:016x}, 0x{b:016x}),");
        }
        return;
    }
    assert_eq!(got.len(), PINNED.len(), "one pinned row per case");
    for (g, p) in got.iter().zip(PINNED) {
        assert_eq!(g, p, "output bits of {} changed", g.0);
    }
}
