//! The `ScoreNetwork` seam on the MLP: every trait method agrees with the direct `ScoreNet`
//! path it wraps (dfdx stays the reference).

use rand::Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use smoluchowski_nets::{
    mlp_loss_and_grad, Activation, MlpWorkspace, NetOutput, NetScore, NetworkScore, ScoreNet,
    ScoreNetConfig, ScoreNetwork, TimeEmbedding,
};
use smoluchowski_sde::{Score, ScoreDivergence, VpSde};

fn cfg() -> ScoreNetConfig {
    ScoreNetConfig {
        dim: 3,
        width: 24,
        depth: 3,
        activation: Activation::Silu,
        residual: true,
        time_embedding: TimeEmbedding::Fourier {
            frequencies: 3,
            max_frequency: 6.0,
        },
        output: NetOutput::Noise,
    }
}

fn points(n: usize, seed: u64) -> Vec<f32> {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    (0..n).map(|_| r.gen_range(-1.5f32..1.5)).collect()
}

#[test]
fn metadata_init_and_config_round_trip() {
    let net = ScoreNet::new(cfg(), 4).unwrap();
    assert_eq!(ScoreNetwork::dim(&net), 3);
    assert_eq!(ScoreNetwork::num_params(&net), cfg().num_params());
    assert_eq!(net.output(), NetOutput::Noise);
    assert_eq!(net.init_params(4), net.to_flat());
    assert_ne!(net.init_params(5), net.to_flat());
    let p = net.init_params(9);
    let back = ScoreNet::from_config_json(&net.config_json(), &p).unwrap();
    assert_eq!(back.config(), net.config());
    assert_eq!(back.params(), p);
    assert_eq!(net.with_params(&p).to_flat(), p);
    assert!(ScoreNet::from_config_json("{}", &p).is_err());
    assert!(ScoreNet::from_config_json(&net.config_json(), &p[1..]).is_err());
}

/// `forward` at explicit parameters equals the dfdx `predict` of a network holding them (to
/// f32 rounding: the fused and dfdx products sum in different orders), and the generic
/// `NetworkScore` equals `NetScore` bit for bit, score and divergence (both run the fused
/// passes).
#[test]
fn forward_and_generic_score_match_the_mlp_paths() {
    let net = ScoreNet::new(cfg(), 1).unwrap();
    let params = net.init_params(2);
    let other = ScoreNet::from_flat(cfg(), &params).unwrap();
    let x = points(3 * 700, 3);
    let mut out = vec![0.0f32; x.len()];
    ScoreNetwork::forward(&net, &params, &x, 0.37, &mut out);
    let want = other.predict(&x, 0.37);
    for (a, b) in out.iter().zip(&want) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
    let sde = VpSde::song_default();
    let (mut s1, mut s2) = (vec![0.0f32; x.len()], vec![0.0f32; x.len()]);
    NetScore::new(&other, &sde).score(&x, 0.37, &mut s1);
    NetworkScore::new(net.clone(), params.clone(), &sde).score(&x, 0.37, &mut s2);
    assert_eq!(s1, s2);
    // The divergence too, bit for bit.
    let n = x.len() / 3;
    let (mut d1, mut d2) = (vec![0.0f64; n], vec![0.0f64; n]);
    NetScore::new(&other, &sde).score_and_divergence(&x, 0.37, &mut s1, &mut d1);
    NetworkScore::new(net.clone(), params, &sde).score_and_divergence(&x, 0.37, &mut s2, &mut d2);
    assert_eq!(s1, s2);
    assert_eq!(d1, d2);
}

/// `prepare_input` builds the MLP feature rows; the fused weighted squared loss equals
/// `mlp_loss_and_grad` bit for bit, and the trait's default implementation (through the general
/// dfdx `loss_and_grad` with `∂L/∂f = (2/n) a ⊙ (a ⊙ f − b)`) agrees to f32 rounding.
#[test]
fn weighted_squared_loss_paths_agree() {
    #[derive(Clone)]
    struct ViaCallback(ScoreNet);
    impl ScoreNetwork for ViaCallback {
        type Input = Vec<f32>;
        type Workspace = MlpWorkspace;
        fn dim(&self) -> usize {
            self.0.dim()
        }
        fn num_params(&self) -> usize {
            ScoreNetwork::num_params(&self.0)
        }
        fn output(&self) -> NetOutput {
            self.0.output()
        }
        fn config_json(&self) -> String {
            self.0.config_json()
        }
        fn from_config_json(json: &str, params: &[f32]) -> Result<Self, String> {
            ScoreNet::from_config_json(json, params).map(ViaCallback)
        }
        fn init_params(&self, seed: u64) -> Vec<f32> {
            self.0.init_params(seed)
        }
        fn params(&self) -> Vec<f32> {
            self.0.params()
        }
        fn set_params(&mut self, params: &[f32]) {
            self.0.set_params(params)
        }
        fn forward(&self, params: &[f32], x: &[f32], t: f64, out: &mut [f32]) {
            ScoreNetwork::forward(&self.0, params, x, t, out)
        }
        fn prepare_input(&self, x: &[f32], t: &[f64], input: &mut Vec<f32>) {
            self.0.prepare_input(x, t, input)
        }
        fn loss_and_grad(
            &self,
            params: &[f32],
            input: &Vec<f32>,
            objective: &mut dyn FnMut(&[f32], &mut [f32]) -> f64,
            grad: &mut [f32],
            ws: &mut MlpWorkspace,
        ) -> f64 {
            self.0.loss_and_grad(params, input, objective, grad, ws)
        }
    }

    let net = ScoreNet::new(cfg(), 7).unwrap();
    let c = cfg();
    let n = 600;
    let x = points(n * 3, 8);
    let t: Vec<f64> = (0..n).map(|i| 0.01 + 0.98 * i as f64 / n as f64).collect();
    let mut input = Vec::new();
    net.prepare_input(&x, &t, &mut input);
    let mut want_input = vec![0.0f32; n * c.input_dim()];
    c.fill_input_rows(&x, |i| t[i], &mut want_input);
    assert_eq!(input, want_input);

    let a = points(n * 3, 9);
    let b = points(n * 3, 10);
    let params = net.to_flat();
    let p = params.len();
    let mut ws = MlpWorkspace::default();
    let (mut g_direct, mut g_trait, mut g_default) = (vec![0.0; p], vec![0.0; p], vec![0.0; p]);
    let l_direct = mlp_loss_and_grad(&c, &params, &input, &a, &b, &mut g_direct, &mut ws);
    let pred = ws.prediction().to_vec();
    let mut out = vec![0.0f32; n * 3];
    let l_trait =
        net.weighted_sq_loss_and_grad(&params, &input, &a, &b, &mut out, &mut g_trait, &mut ws);
    assert_eq!(l_direct.to_bits(), l_trait.to_bits());
    assert_eq!(g_direct, g_trait);
    assert_eq!(out, pred);

    let via = ViaCallback(net.clone());
    let mut out2 = vec![0.0f32; n * 3];
    let l_default =
        via.weighted_sq_loss_and_grad(&params, &input, &a, &b, &mut out2, &mut g_default, &mut ws);
    assert!(
        (l_default - l_direct).abs() <= 1e-5 * l_direct.abs(),
        "{l_default} vs {l_direct}"
    );
    let gmax = g_direct.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (u, v)) in g_default.iter().zip(&g_direct).enumerate() {
        assert!(
            (u - v).abs() <= 1e-4 * (1.0 + gmax),
            "param {i}: {u} vs {v}"
        );
    }
    for (u, v) in out2.iter().zip(&out) {
        assert!((u - v).abs() <= 1e-5 * (1.0 + v.abs()), "{u} vs {v}");
    }
}
