//! The network: a set model in the spirit of MSCN. Each atom's features go through a
//! two-layer MLP, the results are averaged over the atoms, joined with the table-level
//! features and go through a second two-layer MLP to one number, the log-cardinality in
//! the unit of [`crate::features`].
//!
//! Training runs in libtorch through `tch` (Adam, loss = mean |ln q-error|, so the loss is
//! the q-error the estimator is judged by). Inference copies the trained weights into plain
//! `f32` vectors and runs in Rust: a few thousand multiply-adds are cheaper than a
//! libtorch call, and the copy is immutable and `Sync`, so any query thread can use it
//! while a new model is trained.

use tch::nn::{self, Module, OptimizerConfig};
use tch::{Device, Kind, Tensor};

use crate::features::{ATOM_FEATURES, Features, GLOBAL_FEATURES, MAX_ATOMS};

/// Hidden width of the atom network.
const ATOM_HIDDEN: usize = 64;
/// Hidden width of the output network.
const OUT_HIDDEN: usize = 64;

/// One dense layer's weights (`out × in`, row-major) and biases.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    /// Inputs.
    pub inputs: usize,
    /// Outputs.
    pub outputs: usize,
    /// Weights, `outputs` rows of `inputs`.
    pub weights: Vec<f32>,
    /// Biases.
    pub biases: Vec<f32>,
}

impl Layer {
    fn apply(&self, input: &[f32], out: &mut Vec<f32>, relu: bool) {
        out.clear();
        for o in 0..self.outputs {
            let row = &self.weights[o * self.inputs..(o + 1) * self.inputs];
            let mut acc = self.biases[o];
            for (w, x) in row.iter().zip(input) {
                acc += w * x;
            }
            out.push(if relu { acc.max(0.0) } else { acc });
        }
    }
}

/// The trained network (atom layers, output layers).
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// The four layers: atom 1, atom 2, output 1, output 2.
    pub layers: Vec<Layer>,
}

impl Network {
    /// The predicted log-cardinality (model unit) of a featurized filter.
    pub fn predict(&self, f: &Features) -> f32 {
        let [a1, a2, o1, o2] = self.layers.as_slice() else {
            return 1.0;
        };
        let mut pooled = vec![0f32; a2.outputs];
        let (mut h1, mut h2) = (Vec::with_capacity(a1.outputs), Vec::new());
        for atom in &f.atoms {
            a1.apply(atom, &mut h1, true);
            a2.apply(&h1, &mut h2, true);
            for (p, h) in pooled.iter_mut().zip(&h2) {
                *p += h;
            }
        }
        let n = f.atoms.len().max(1) as f32;
        for p in &mut pooled {
            *p /= n;
        }
        pooled.extend_from_slice(&f.globals);
        o1.apply(&pooled, &mut h1, true);
        o2.apply(&h1, &mut h2, false);
        h2[0]
    }

    /// Whether the shapes are the ones this build makes (a model saved by a build with
    /// other features is discarded).
    pub fn fits(&self) -> bool {
        let shapes: Vec<(usize, usize)> =
            self.layers.iter().map(|l| (l.inputs, l.outputs)).collect();
        shapes
            == [
                (ATOM_FEATURES, ATOM_HIDDEN),
                (ATOM_HIDDEN, ATOM_HIDDEN),
                (ATOM_HIDDEN + GLOBAL_FEATURES, OUT_HIDDEN),
                (OUT_HIDDEN, 1),
            ]
            && self
                .layers
                .iter()
                .all(|l| l.weights.len() == l.inputs * l.outputs && l.biases.len() == l.outputs)
    }
}

/// A training example: features and the true log-cardinality (model unit).
#[derive(Debug, Clone)]
pub struct Labelled {
    /// The features.
    pub features: Features,
    /// The true cardinality in the model's unit.
    pub target: f32,
}

/// Training settings.
#[derive(Debug, Clone, Copy)]
pub struct TrainConfig {
    /// Passes over the data.
    pub epochs: usize,
    /// Examples per step.
    pub batch: usize,
    /// Adam's learning rate.
    pub learning_rate: f64,
    /// Seed of the initialisation and shuffling.
    pub seed: i64,
    /// Stop after the epoch that ends past this moment (at least one epoch runs).
    pub deadline: Option<std::time::Instant>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 80,
            batch: 64,
            learning_rate: 2e-3,
            seed: 7,
            deadline: None,
        }
    }
}

struct Net {
    a1: nn::Linear,
    a2: nn::Linear,
    o1: nn::Linear,
    o2: nn::Linear,
}

impl Net {
    fn new(p: &nn::Path) -> Net {
        let c = Default::default;
        Net {
            a1: nn::linear(p / "a1", ATOM_FEATURES as i64, ATOM_HIDDEN as i64, c()),
            a2: nn::linear(p / "a2", ATOM_HIDDEN as i64, ATOM_HIDDEN as i64, c()),
            o1: nn::linear(
                p / "o1",
                (ATOM_HIDDEN + GLOBAL_FEATURES) as i64,
                OUT_HIDDEN as i64,
                c(),
            ),
            o2: nn::linear(p / "o2", OUT_HIDDEN as i64, 1, c()),
        }
    }

    fn layers(&self) -> [&nn::Linear; 4] {
        [&self.a1, &self.a2, &self.o1, &self.o2]
    }

    /// atoms [B, P, F], mask [B, P, 1], globals [B, G] → [B]
    fn forward(&self, atoms: &Tensor, mask: &Tensor, globals: &Tensor) -> Tensor {
        let h = self.a2.forward(&self.a1.forward(atoms).relu()).relu() * mask;
        let dims: &[i64] = &[1];
        let pooled = h.sum_dim_intlist(dims, false, Kind::Float)
            / mask
                .sum_dim_intlist(dims, false, Kind::Float)
                .clamp_min(1.0);
        let joined = Tensor::cat(&[pooled, globals.shallow_clone()], 1);
        self.o2
            .forward(&self.o1.forward(&joined).relu())
            .squeeze_dim(1)
    }

    fn load(&mut self, from: &Network) {
        tch::no_grad(|| {
            for (l, w) in self.layers().into_iter().zip(&from.layers) {
                let mut ws = l.ws.shallow_clone();
                ws.copy_(&Tensor::from_slice(&w.weights).view([w.outputs as i64, w.inputs as i64]));
                if let Some(bs) = &l.bs {
                    let mut bs = bs.shallow_clone();
                    bs.copy_(&Tensor::from_slice(&w.biases));
                }
            }
        });
    }

    fn export(&self) -> Network {
        let layers = self
            .layers()
            .into_iter()
            .map(|l| {
                let size = l.ws.size();
                let weights = Vec::<f32>::try_from(&l.ws.flatten(0, -1)).unwrap_or_default();
                let biases =
                    l.bs.as_ref()
                        .and_then(|b| Vec::<f32>::try_from(b).ok())
                        .unwrap_or_else(|| vec![0.0; size[0] as usize]);
                Layer {
                    inputs: size[1] as usize,
                    outputs: size[0] as usize,
                    weights,
                    biases,
                }
            })
            .collect();
        Network { layers }
    }
}

/// Stacks examples into the tensors the network takes.
fn tensors(data: &[Labelled]) -> (Tensor, Tensor, Tensor, Tensor, Tensor) {
    let n = data.len();
    let mut atoms = vec![0f32; n * MAX_ATOMS * ATOM_FEATURES];
    let mut mask = vec![0f32; n * MAX_ATOMS];
    let mut globals = Vec::with_capacity(n * GLOBAL_FEATURES);
    let mut targets = Vec::with_capacity(n);
    let mut scales = Vec::with_capacity(n);
    for (i, ex) in data.iter().enumerate() {
        for (j, a) in ex.features.atoms.iter().take(MAX_ATOMS).enumerate() {
            let at = (i * MAX_ATOMS + j) * ATOM_FEATURES;
            atoms[at..at + ATOM_FEATURES].copy_from_slice(a);
            mask[i * MAX_ATOMS + j] = 1.0;
        }
        globals.extend_from_slice(&ex.features.globals);
        targets.push(ex.target);
        scales.push(ex.features.scale);
    }
    let n = n as i64;
    (
        Tensor::from_slice(&atoms).view([n, MAX_ATOMS as i64, ATOM_FEATURES as i64]),
        Tensor::from_slice(&mask).view([n, MAX_ATOMS as i64, 1]),
        Tensor::from_slice(&globals).view([n, GLOBAL_FEATURES as i64]),
        Tensor::from_slice(&targets),
        Tensor::from_slice(&scales),
    )
}

/// Trains a network on `data`, starting from `start` when given (fine-tuning), and
/// returns it with the loss curve (mean |ln q-error| on `data` per epoch). Runs on the
/// calling thread.
pub fn train(
    data: &[Labelled],
    start: Option<&Network>,
    config: TrainConfig,
) -> (Network, Vec<f32>) {
    tch::manual_seed(config.seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let mut net = Net::new(&vs.root());
    if let Some(s) = start.filter(|s| s.fits()) {
        net.load(s);
    }
    let mut losses = Vec::with_capacity(config.epochs);
    if data.is_empty() {
        return (net.export(), losses);
    }
    let Ok(mut opt) = nn::Adam::default().build(&vs, config.learning_rate) else {
        return (net.export(), losses);
    };
    let (atoms, mask, globals, targets, scales) = tensors(data);
    let n = data.len() as i64;
    let batch = config.batch.max(1) as i64;
    for epoch in 0..config.epochs {
        // Step the learning rate down for the last third.
        if epoch == config.epochs * 2 / 3 {
            opt.set_lr(config.learning_rate / 4.0);
        }
        let perm = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
        let (mut total, mut seen) = (0f64, 0i64);
        let mut start = 0;
        while start < n {
            let len = batch.min(n - start);
            let idx = perm.narrow(0, start, len);
            let pred = net.forward(
                &atoms.index_select(0, &idx),
                &mask.index_select(0, &idx),
                &globals.index_select(0, &idx),
            );
            let err = (pred - targets.index_select(0, &idx)) * scales.index_select(0, &idx);
            let loss = err.abs().mean(Kind::Float);
            opt.backward_step(&loss);
            total += loss.double_value(&[]) * len as f64;
            seen += len;
            start += len;
        }
        losses.push((total / seen as f64) as f32);
        if config
            .deadline
            .is_some_and(|d| std::time::Instant::now() >= d)
        {
            break;
        }
    }
    (net.export(), losses)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(x: f32) -> Labelled {
        let mut a = [0f32; ATOM_FEATURES];
        a[0] = x;
        let mut g = [0f32; GLOBAL_FEATURES];
        g[0] = 0.5;
        Labelled {
            features: Features {
                atoms: vec![a],
                globals: g,
                scale: 10.0,
                bounds: (0.0, f64::MAX),
                known: None,
            },
            target: 0.2 + 0.6 * x,
        }
    }

    /// Training lowers the loss, and the Rust forward pass is libtorch's.
    #[test]
    fn a_spent_budget_stops_training_after_one_epoch() {
        let data: Vec<Labelled> = (0..200).map(|i| example(i as f32 / 200.0)).collect();
        let config = TrainConfig {
            epochs: 60,
            deadline: Some(std::time::Instant::now()),
            ..Default::default()
        };
        let (net, losses) = train(&data, None, config);
        assert_eq!(losses.len(), 1);
        assert!(net.fits());
    }

    #[test]
    fn learns_a_line_and_infers_like_libtorch() {
        let data: Vec<Labelled> = (0..200).map(|i| example(i as f32 / 200.0)).collect();
        let config = TrainConfig {
            epochs: 60,
            ..Default::default()
        };
        let (net, losses) = train(&data, None, config);
        assert!(net.fits());
        let first = losses[0];
        let last = *losses.last().unwrap();
        assert!(last < first / 3.0, "loss {first} → {last}");
        for ex in data.iter().step_by(37) {
            let p = net.predict(&ex.features);
            assert!((p - ex.target).abs() < 0.05, "{p} vs {}", ex.target);
        }
        // The same weights through libtorch give the same predictions.
        let vs = nn::VarStore::new(Device::Cpu);
        let mut torch_net = Net::new(&vs.root());
        torch_net.load(&net);
        let (atoms, mask, globals, _, _) = tensors(&data[..5]);
        let out = Vec::<f32>::try_from(&torch_net.forward(&atoms, &mask, &globals)).unwrap();
        for (ex, t) in data[..5].iter().zip(out) {
            assert!((net.predict(&ex.features) - t).abs() < 1e-4);
        }
    }
}
