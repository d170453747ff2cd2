//! A network trained by the Rust side, loaded once and evaluated without per-call copies.

use std::path::Path;

use smoluchowski::nets::{output_to_score, NetIoError, ScoreNet, ScoreNetwork};
use smoluchowski::sde::{ForwardSde, Score, Sde};

/// `model.safetensors` (config from its `model.json`) with the forward SDE it was trained for,
/// and its flat weights kept beside it: `s_θ(x, t) = f_θ(x, t)` (score output) or
/// `−ε_θ(x, t)/σ(t)` (noise output) — the calls of `nets::NetScore`, without the weight
/// snapshot it takes on construction, so a Python caller can evaluate it per batch at no
/// extra cost.
#[derive(Debug, Clone)]
pub struct TrainedNet {
    net: ScoreNet,
    params: Vec<f32>,
    sde: Sde,
}

impl TrainedNet {
    /// Loads `path` and its sidecar config.
    pub fn load(path: &Path, sde: Sde) -> Result<Self, NetIoError> {
        Ok(Self::new(ScoreNet::load(path)?, sde))
    }

    /// `net` (weights snapshotted once) with `sde`.
    pub fn new(net: ScoreNet, sde: Sde) -> Self {
        let params = net.to_flat();
        Self { net, params, sde }
    }

    /// The network.
    pub fn net(&self) -> &ScoreNet {
        &self.net
    }

    /// `s_θ(x, t)` of the `n × d` rows of `x` into `out` (shared access: many callers at once).
    pub fn score_into(&self, x: &[f32], t: f64, out: &mut [f32]) {
        ScoreNetwork::forward(&self.net, &self.params, x, t, out);
        output_to_score(
            ScoreNetwork::output(&self.net),
            self.sde.marginal_std(t),
            out,
        );
    }
}

impl Score for TrainedNet {
    fn dim(&self) -> usize {
        self.net.config().dim
    }

    fn score(&mut self, x: &[f32], t: f64, out: &mut [f32]) {
        self.score_into(x, t, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoluchowski::nets::{NetScore, ScoreNetConfig};

    /// Bit-identical to the harness's `NetScore` for both output kinds.
    #[test]
    fn equals_net_score_bit_for_bit() {
        let sde = Sde::Vp(smoluchowski::sde::VpSde::song_default());
        for output in ["noise", "score"] {
            let config: ScoreNetConfig = serde_json::from_str(&format!(
                r#"{{"dim": 2, "width": 32, "depth": 3, "activation": "relu", "residual": true,
                    "time_embedding": {{"fourier": {{"frequencies": 4, "max_frequency": 64.0}}}},
                    "output": "{output}"}}"#
            ))
            .unwrap();
            let net = ScoreNet::new(config, 3).unwrap();
            let x: Vec<f32> = (0..200).map(|i| (i as f32 * 0.37).sin()).collect();
            let (mut a, mut b) = (vec![0.0; 200], vec![0.0; 200]);
            NetScore::new(&net, &sde).score(&x, 0.3, &mut a);
            TrainedNet::new(net, sde).score_into(&x, 0.3, &mut b);
            assert_eq!(a, b, "{output}");
        }
    }
}
