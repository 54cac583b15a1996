//! [`LearnedEstimator`]: the planner's [`CardinalityEstimator`] backed by one small network
//! per analyzed table.
//!
//! - `ANALYZE t` hands it `t`'s rows (or a uniform sample of `limits.analyze_sample_rows`
//!   of a larger table) once it committed: in a background thread it keeps a smaller
//!   sample (the model's sample features), draws training queries from the rows, labels
//!   them on the data, trains a network within `training_budget` and checks it against the
//!   statistics baseline and the network in use on held-out queries. `ANALYZE` itself
//!   returns once the statistics are written; until the new network is ready the planner
//!   uses the one it had (or the statistics).
//! - Every executed scan's (filter, actual rows) comes back through
//!   [`CardinalityEstimator::observe`] into a bounded replay buffer; every
//!   `training_interval` records on a table, the network is fine-tuned on the training
//!   queries plus the buffer in a background thread and swapped in atomically (queries
//!   never wait for training). When 90% of the interval's estimates were already within
//!   a q-error of 1.5 the retraining is skipped (nothing to learn; saves the CPU).
//! - A network is used only while it beats the statistics baseline on held-out queries
//!   (one in five of the generated ones and of the feedback): until then, and for tables
//!   never analyzed, estimates are the baseline's, so turning the learned estimator on is
//!   never worse than leaving it off.
//! - Models, samples, statistics and buffers are kept in the store's metadata (one
//!   [`chrono_storage::record`] per table, keyed by the table's id) and loaded on open; a
//!   model of another format or another table definition is discarded, and a committed
//!   `DROP TABLE` takes its table's model with it (a table created again under the name
//!   starts without one).
//!
//! Scans `AS OF` a time before the table's current statistics are estimated by the
//! statistics of that time (`StatsRegistry::for_scan`), never by the network, and
//! their feedback is not learned from (their row counts are those of another time).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use chrono_sql::catalog::{ColumnDef, TableDef};
use chrono_sql::cost::{CardinalityEstimator, Estimate, Feedback, StatisticsEstimator, TableStats};
use chrono_sql::expr::Expr;
use chrono_sql::types::DataType;
use chrono_storage::{ColumnFamily, Engine, Keyspace, Value, WriteBatch, encoding, record};
use parking_lot::{Condvar, Mutex, RwLock};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index::sample as sample_indices;

use crate::atoms::{Atom, Op, conjunction, contradictory, decompose};
use crate::columnar::Columnar;
use crate::features::{Features, TableContext};
use crate::metrics::{QErrorSummary, q_error};
use crate::model::{Labelled, Network, TrainConfig, train};
use crate::workload;

/// Settings of the learned estimator.
#[derive(Debug, Clone)]
pub struct MlConfig {
    /// Feedback records on a table between two retrainings (the documented
    /// `training_interval`).
    pub training_interval: u64,
    /// Training queries generated on `ANALYZE`.
    pub bootstrap_queries: usize,
    /// Rows kept as the table's sample.
    pub sample_rows: usize,
    /// At most this many rows label the generated queries (more are sampled down).
    pub label_rows: usize,
    /// Feedback records kept per table.
    pub replay_capacity: usize,
    /// Epochs of the first training.
    pub epochs: usize,
    /// Epochs of a retraining (it starts from the current network).
    pub retrain_epochs: usize,
    /// A retraining is skipped when 90% of the interval's estimates were within this
    /// q-error (nothing to learn); 0 retrains at every interval.
    pub skip_retrain_q_error: f64,
    /// Seed of sampling, query generation and training.
    pub seed: u64,
    /// Retrain in a background thread (`false`: on the thread that crossed the interval;
    /// for tests and evaluations that want determinism).
    pub background: bool,
    /// Threads libtorch may use for one operation (process-wide: set when an estimator is
    /// made). The networks are small, so more threads do not train them faster; they spin
    /// waiting for each other (OpenMP) on the cores that serve queries.
    pub threads: usize,
    /// Longest a training may run (epochs stop once it is spent; at least one runs), so
    /// `ANALYZE` of a large table returns in bounded time; `None`: every epoch.
    pub training_budget: Option<std::time::Duration>,
}

impl Default for MlConfig {
    fn default() -> Self {
        Self {
            training_interval: 1000,
            bootstrap_queries: 4000,
            sample_rows: 8192,
            label_rows: 200_000,
            replay_capacity: 5000,
            epochs: 80,
            retrain_epochs: 30,
            skip_retrain_q_error: 1.5,
            seed: 42,
            background: true,
            threads: 1,
            training_budget: None,
        }
    }
}

/// Q-errors of the network and of the baseline on the same held-out queries.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Evaluation {
    /// The network.
    pub learned: QErrorSummary,
    /// The statistics baseline.
    pub baseline: QErrorSummary,
}

/// One training of one table's network.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainingRun {
    /// The table.
    pub table: String,
    /// The model version it produced.
    pub version: u64,
    /// `analyze` or `feedback`.
    pub trigger: &'static str,
    /// Training examples.
    pub examples: usize,
    /// Held-out examples.
    pub held_out: usize,
    /// Epochs.
    pub epochs: usize,
    /// Mean |ln q-error| on the training examples per epoch.
    pub loss_per_epoch: Vec<f32>,
    /// Wall time of the training (featurization and evaluation included).
    pub seconds: f64,
    /// The previous network on the same held-out queries (none for a first training).
    pub before: Option<QErrorSummary>,
    /// The new network and the baseline on the held-out queries.
    pub after: Evaluation,
    /// Whether the planner uses the new network.
    pub in_use: bool,
    /// Held-out q-errors of the new network, for the report's distribution plot.
    #[serde(skip)]
    pub learned_errors: Vec<f64>,
    /// Held-out q-errors of the baseline.
    #[serde(skip)]
    pub baseline_errors: Vec<f64>,
}

/// A query with its true cardinality.
#[derive(Debug, Clone)]
struct Example {
    atoms: Vec<Atom>,
    actual: f64,
    held_out: bool,
}

/// What estimation reads: swapped whole when a training finishes.
struct TableModel {
    /// The table's name as declared (for reports; models are keyed by the table's id).
    table: String,
    columns: Vec<(String, DataType)>,
    ctx: Arc<TableContext>,
    network: Network,
    in_use: bool,
    version: u64,
    evaluation: Evaluation,
}

/// What training reads and feedback appends to.
#[derive(Default)]
struct Memory {
    generated: Vec<Example>,
    replay: VecDeque<Example>,
    /// Q-errors of the estimates the feedback since the last training reports (its length
    /// counts the records toward `training_interval`).
    recent: Vec<f64>,
    seen: u64,
    training: bool,
}

struct Inner {
    config: MlConfig,
    engine: Option<Arc<dyn Engine>>,
    /// By table id (its key space): a table dropped and created again under its name
    /// starts without the old table's model.
    models: RwLock<HashMap<Keyspace, Arc<TableModel>>>,
    memory: Mutex<HashMap<Keyspace, Memory>>,
    runs: Mutex<Vec<TrainingRun>>,
    idle: Condvar,
    busy: Mutex<usize>,
    /// Background trainings' threads, joined by [`LearnedEstimator::wait_idle`]: a thread
    /// may hold the last reference to the engine, which must not close while the process
    /// exits.
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    served: AtomicU64,
    served_learned: AtomicU64,
    inference_nanos: AtomicU64,
}

/// The learned cardinality estimator (cheap to clone; clones share the models).
#[derive(Clone)]
pub struct LearnedEstimator {
    inner: Arc<Inner>,
}

/// What [`LearnedEstimator::metrics`] reports per table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableMetrics {
    /// The table.
    pub table: String,
    /// Model version (1 after the first training).
    pub model_version: u64,
    /// Whether the planner uses the network (it beats the baseline on held-out queries).
    pub in_use: bool,
    /// Held-out q-errors, network and baseline.
    pub held_out: Evaluation,
    /// Feedback records in the replay buffer.
    pub replay_buffer: usize,
    /// Feedback records received since the table was analyzed.
    pub feedback_seen: u64,
}

/// The documented `get_performance_metrics()`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PerformanceMetrics {
    /// Per analyzed table.
    pub tables: Vec<TableMetrics>,
    /// Estimates asked of the estimator.
    pub estimates_served: u64,
    /// Of those, made by a network (the rest by the baseline).
    pub learned_estimates: u64,
    /// Mean time of a network estimate, in microseconds.
    pub mean_inference_micros: f64,
    /// Trainings so far (since open).
    pub trainings: usize,
}

impl std::fmt::Display for PerformanceMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "estimates served: {} ({} by a network), mean inference {:.1} µs, trainings {}",
            self.estimates_served,
            self.learned_estimates,
            self.mean_inference_micros,
            self.trainings
        )?;
        for t in &self.tables {
            writeln!(
                f,
                "{}: model v{} {} · feedback {} (buffer {})",
                t.table,
                t.model_version,
                if t.in_use {
                    "in use"
                } else {
                    "not in use (baseline is better)"
                },
                t.feedback_seen,
                t.replay_buffer
            )?;
            writeln!(f, "  learned   q-error {}", t.held_out.learned)?;
            writeln!(f, "  baseline  q-error {}", t.held_out.baseline)?;
        }
        Ok(())
    }
}

const NAME: &str = "learned";
/// The model record's format (1 was a key-encoded list of values, keyed by table name; 2
/// kept statistics without complete value lists, sample size, time or fetch cost).
const MODEL_FORMAT: u8 = 3;

fn model_key(table: Keyspace) -> Vec<u8> {
    encoding::meta_key(&format!("ml/{table}"))
}

fn columns_of(table: &TableDef) -> Vec<(String, DataType)> {
    table
        .columns
        .iter()
        .map(|c: &ColumnDef| (c.name.to_ascii_lowercase(), c.data_type))
        .collect()
}

impl LearnedEstimator {
    /// An estimator keeping nothing across restarts.
    pub fn in_memory(config: MlConfig) -> LearnedEstimator {
        Self::build(config, None)
    }

    /// An estimator that keeps its models in `engine`'s metadata, loading those there.
    pub fn open(engine: Arc<dyn Engine>, config: MlConfig) -> LearnedEstimator {
        let est = Self::build(config, Some(engine));
        est.load();
        est
    }

    fn build(config: MlConfig, engine: Option<Arc<dyn Engine>>) -> LearnedEstimator {
        tch::set_num_threads(i32::try_from(config.threads.max(1)).unwrap_or(i32::MAX));
        LearnedEstimator {
            inner: Arc::new(Inner {
                config,
                engine,
                models: RwLock::new(HashMap::new()),
                memory: Mutex::new(HashMap::new()),
                runs: Mutex::new(Vec::new()),
                idle: Condvar::new(),
                busy: Mutex::new(0),
                threads: Mutex::new(Vec::new()),
                served: AtomicU64::new(0),
                served_learned: AtomicU64::new(0),
                inference_nanos: AtomicU64::new(0),
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &MlConfig {
        &self.inner.config
    }

    /// Whether a training runs.
    pub fn is_training(&self) -> bool {
        *self.inner.busy.lock() > 0
    }

    /// Waits until no training runs (and their threads have ended).
    pub fn wait_idle(&self) {
        let mut busy = self.inner.busy.lock();
        while *busy > 0 {
            self.inner.idle.wait(&mut busy);
        }
        drop(busy);
        let threads = std::mem::take(&mut *self.inner.threads.lock());
        for t in threads {
            let _ = t.join();
        }
    }

    /// Runs `work` on a thread of its own, kept for [`wait_idle`](Self::wait_idle).
    fn spawn(&self, work: impl FnOnce() + Send + 'static) {
        let mut threads = self.inner.threads.lock();
        threads.retain(|t| !t.is_finished());
        threads.push(std::thread::spawn(work));
    }

    /// The documented `get_performance_metrics()`.
    pub fn metrics(&self) -> PerformanceMetrics {
        let models = self.inner.models.read();
        let memory = self.inner.memory.lock();
        let mut tables: Vec<TableMetrics> = models
            .iter()
            .map(|(key, m)| {
                let mem = memory.get(key);
                TableMetrics {
                    table: m.table.clone(),
                    model_version: m.version,
                    in_use: m.in_use,
                    held_out: m.evaluation,
                    replay_buffer: mem.map(|x| x.replay.len()).unwrap_or(0),
                    feedback_seen: mem.map(|x| x.seen).unwrap_or(0),
                }
            })
            .collect();
        tables.sort_by(|a, b| a.table.cmp(&b.table));
        let learned = self.inner.served_learned.load(Ordering::Relaxed);
        PerformanceMetrics {
            tables,
            estimates_served: self.inner.served.load(Ordering::Relaxed),
            learned_estimates: learned,
            mean_inference_micros: if learned == 0 {
                0.0
            } else {
                self.inner.inference_nanos.load(Ordering::Relaxed) as f64 / learned as f64 / 1000.0
            },
            trainings: self.inner.runs.lock().len(),
        }
    }

    /// Every training since open, oldest first.
    pub fn training_runs(&self) -> Vec<TrainingRun> {
        self.inner.runs.lock().clone()
    }

    /// The network's estimate for `filter` on `table`, whether or not it is in use (for
    /// evaluations). `None` when the table has no model.
    pub fn learned_estimate(&self, table: &str, filter: &Expr) -> Option<f64> {
        let key = self.key_of(table)?;
        let model = self.inner.models.read().get(&key).cloned()?;
        Some(Self::predict(&model, &decompose(filter)))
    }

    /// The id of the table named `table` (any case) among those with a model.
    fn key_of(&self, table: &str) -> Option<Keyspace> {
        self.inner
            .models
            .read()
            .iter()
            .find(|(_, m)| m.table.eq_ignore_ascii_case(table))
            .map(|(k, _)| *k)
    }

    fn predict(model: &TableModel, atoms: &[Atom]) -> f64 {
        if atoms.is_empty() {
            return model.ctx.rows;
        }
        let features = (!contradictory(atoms)).then(|| model.ctx.featurize(atoms));
        estimate(&model.ctx, &model.network, features.as_ref())
    }

    /// Retrains a table's network now on the queries and feedback it has (what a full
    /// `training_interval` triggers), on this thread.
    pub fn retrain(&self, table: &str) {
        let Some(key) = self.key_of(table) else {
            return;
        };
        {
            let mut memory = self.inner.memory.lock();
            let Some(m) = memory.get_mut(&key) else {
                return;
            };
            if m.training {
                return;
            }
            m.training = true;
            m.recent.clear();
        }
        *self.inner.busy.lock() += 1;
        self.train_in_place(key);
        self.finish(key);
    }

    /// What `ANALYZE` starts: draws training queries from `rows` (the table's sample),
    /// labels them, trains a network from scratch and swaps it in when it beats the current
    /// one on the held-out queries. Ends the `busy` count the caller began.
    fn bootstrap(&self, table: &TableDef, rows: &[Vec<Value>], stats: &TableStats) {
        let key = table.keyspace;
        let cfg = &self.inner.config;
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let pick = |n: usize, rng: &mut StdRng| -> Vec<Vec<Value>> {
            if rows.len() <= n {
                rows.to_vec()
            } else {
                let mut idx = sample_indices(rng, rows.len(), n).into_vec();
                idx.sort_unstable();
                idx.into_iter().map(|i| rows[i].clone()).collect()
            }
        };
        let width = table.columns.len();
        // The table's size: `rows` may be a sample of it.
        let total = (stats.rows as f64).max(rows.len() as f64);
        let ctx = Arc::new(TableContext {
            rows: total,
            stats: stats.clone(),
            sample: Columnar::new(width, pick(cfg.sample_rows, &mut rng)),
        });
        let labels = Columnar::new(width, pick(cfg.label_rows, &mut rng));
        // Small tables need fewer queries to be learned (and ANALYZE stays quick on them).
        let count = cfg.bootstrap_queries.min(rows.len().max(500));
        let queries = workload::generate(rows, stats, count, &mut rng);
        // Labelling the generated queries takes at most half the training budget (at least
        // 100 queries are labelled); the training itself stops when the budget is spent.
        let began = Instant::now();
        let labelling = cfg.training_budget.map(|b| b / 2);
        let generated: Vec<Example> = queries
            .into_iter()
            .enumerate()
            .take_while(|(i, _)| *i < 100 || labelling.is_none_or(|l| began.elapsed() < l))
            .map(|(i, atoms)| Example {
                actual: workload::label(&labels, &atoms, total),
                atoms,
                held_out: i % 5 == 0,
            })
            .collect();
        let columns = columns_of(table);
        let old = self.inner.models.read().get(&key).cloned();
        let schema_changed = old.as_ref().is_some_and(|m| m.columns != columns);
        {
            let mut memory = self.inner.memory.lock();
            let m = memory.entry(key).or_default();
            m.generated = generated;
            // Feedback on another table definition says nothing about this one.
            if schema_changed {
                m.replay.clear();
            }
            m.recent.clear();
            m.training = true;
        }
        let candidate = Arc::new(TableModel {
            table: table.name.clone(),
            columns,
            ctx,
            network: Network { layers: vec![] },
            in_use: false,
            version: old.as_ref().map(|m| m.version).unwrap_or(0),
            evaluation: Evaluation::default(),
        });
        // The current network still judges by the table it was trained on; on another
        // definition it is of no use.
        let current = old.filter(|_| !schema_changed);
        self.train_table(key, "analyze", candidate, current);
        self.finish(key);
    }

    fn finish(&self, key: Keyspace) {
        if let Some(m) = self.inner.memory.lock().get_mut(&key) {
            m.training = false;
        }
        let mut busy = self.inner.busy.lock();
        *busy -= 1;
        self.inner.idle.notify_all();
    }

    /// Retrains `key`'s network (from where it is) on its queries and feedback.
    fn train_in_place(&self, key: Keyspace) {
        let current = self.inner.models.read().get(&key).cloned();
        if let Some(m) = current {
            self.train_table(key, "feedback", m.clone(), Some(m));
        }
    }

    /// Trains a network for `key` on its generated queries and replay buffer, in `base`'s
    /// context (from `base`'s network for a retraining, from scratch after `ANALYZE`), and
    /// evaluates it on the held-out ones. It replaces `current` (the model in use, judged
    /// on the same queries in its own context) unless `current` is better.
    fn train_table(
        &self,
        key: Keyspace,
        trigger: &'static str,
        base: Arc<TableModel>,
        current: Option<Arc<TableModel>>,
    ) {
        let began = Instant::now();
        let examples: Vec<Example> = {
            let memory = self.inner.memory.lock();
            let Some(m) = memory.get(&key) else { return };
            m.generated.iter().chain(m.replay.iter()).cloned().collect()
        };
        let ctx = base.ctx.clone();
        let label = |e: &Example| Labelled {
            features: ctx.featurize(&e.atoms),
            target: ctx.unit(e.actual),
        };
        let train_set: Vec<Labelled> = examples.iter().filter(|e| !e.held_out).map(label).collect();
        let first = trigger == "analyze";
        let config = TrainConfig {
            // A retraining takes at most ~100k example-passes, however full the buffer.
            epochs: if first {
                self.inner.config.epochs
            } else {
                let cap = 100_000 / train_set.len().max(1);
                self.inner.config.retrain_epochs.min(cap.max(5))
            },
            learning_rate: if first { 2e-3 } else { 1e-3 },
            seed: self.inner.config.seed as i64,
            deadline: self.inner.config.training_budget.map(|b| began + b),
            ..Default::default()
        };
        let start = (!first).then_some(&base.network);
        let (network, loss_per_epoch) = train(&train_set, start, config);
        let held_examples = || examples.iter().filter(|e| e.held_out);
        let held = HeldOut::prepare(&ctx, held_examples());
        let learned_errors = HeldOut::q_errors(&held, &ctx, &network);
        let baseline_errors: Vec<f64> =
            held.iter().map(|h| q_error(h.baseline, h.actual)).collect();
        let eval = Evaluation {
            learned: QErrorSummary::of(&learned_errors),
            baseline: QErrorSummary::of(&baseline_errors),
        };
        let current = current.filter(|m| !m.network.layers.is_empty());
        let before = current.as_ref().map(|m| {
            let held = HeldOut::prepare(&m.ctx, held_examples());
            QErrorSummary::of(&HeldOut::q_errors(&held, &m.ctx, &m.network))
        });
        let in_use = eval.learned.better_than(&eval.baseline);
        let keep_current = match (&current, &before) {
            (Some(m), Some(b)) => m.in_use && b.better_than(&eval.learned),
            _ => false,
        };
        let version = base.version + 1;
        let model = Arc::new(TableModel {
            table: base.table.clone(),
            columns: base.columns.clone(),
            ctx,
            network,
            in_use,
            version,
            evaluation: eval,
        });
        if !keep_current {
            self.inner.models.write().insert(key, model.clone());
        }
        self.inner.runs.lock().push(TrainingRun {
            table: model.table.clone(),
            version,
            trigger,
            examples: train_set.len(),
            held_out: held.len(),
            epochs: config.epochs,
            loss_per_epoch,
            seconds: began.elapsed().as_secs_f64(),
            before,
            after: eval,
            in_use: in_use && !keep_current,
            learned_errors,
            baseline_errors,
        });
        match (keep_current, current) {
            (true, Some(current)) => self.save(key, &current),
            _ => self.save(key, &model),
        }
    }

    fn save(&self, key: Keyspace, model: &TableModel) {
        let Some(engine) = &self.inner.engine else {
            return;
        };
        let memory = self.inner.memory.lock();
        let Some(m) = memory.get(&key) else { return };
        let raw = persist::encode(key, model, m);
        drop(memory);
        let mut batch = WriteBatch::new();
        batch.put(ColumnFamily::Meta, model_key(key), raw);
        if let Err(e) = engine.write(batch) {
            tracing::warn!(table = %model.table, error = %e, "could not keep the learned model");
        }
    }

    fn load(&self) {
        let Some(engine) = &self.inner.engine else {
            return;
        };
        let prefix = encoding::meta_prefix("ml/");
        let Ok(mut cursor) = engine.cursor(ColumnFamily::Meta) else {
            return;
        };
        cursor.seek(&prefix);
        let mut stale = Vec::new();
        while cursor.valid() && cursor.key().starts_with(&prefix) {
            match persist::decode(cursor.value()) {
                Some((key, model, memory)) if cursor.key() == model_key(key) => {
                    self.inner.models.write().insert(key, Arc::new(model));
                    self.inner.memory.lock().insert(key, memory);
                }
                _ => stale.push(cursor.key().to_vec()),
            }
            cursor.next();
        }
        if !stale.is_empty() {
            let mut batch = WriteBatch::new();
            for k in stale {
                batch.delete(ColumnFamily::Meta, k);
            }
            if let Err(e) = engine.write(batch) {
                tracing::warn!(error = %e, "could not drop a learned model");
            }
        }
    }

    fn forget(&self, key: Keyspace) {
        self.inner.models.write().remove(&key);
        self.inner.memory.lock().remove(&key);
        if let Some(engine) = &self.inner.engine {
            let mut batch = WriteBatch::new();
            batch.delete(ColumnFamily::Meta, model_key(key));
            if let Err(e) = engine.write(batch) {
                tracing::warn!(error = %e, "could not drop a learned model");
            }
        }
    }
}

/// A held-out query, featurized once for every network it judges.
struct HeldOut {
    /// `None` for a contradiction (estimated 0 without the network).
    features: Option<Features>,
    actual: f64,
    /// The statistics baseline's estimate.
    baseline: f64,
}

impl HeldOut {
    fn prepare<'e>(
        ctx: &TableContext,
        examples: impl Iterator<Item = &'e Example>,
    ) -> Vec<HeldOut> {
        examples
            .map(|e| HeldOut {
                features: (!contradictory(&e.atoms)).then(|| ctx.featurize(&e.atoms)),
                actual: e.actual,
                baseline: StatisticsEstimator::rows(
                    Some(&ctx.stats),
                    conjunction(&e.atoms).as_ref(),
                ),
            })
            .collect()
    }

    fn q_errors(held: &[HeldOut], ctx: &TableContext, network: &Network) -> Vec<f64> {
        held.iter()
            .map(|h| q_error(estimate(ctx, network, h.features.as_ref()), h.actual))
            .collect()
    }
}

/// A network's rows for featurized atoms (`None`: a contradiction, 0 rows), within what the
/// sample and the exact statistics allow (see [`Features::bounds`]).
fn estimate(ctx: &TableContext, network: &Network, features: Option<&Features>) -> f64 {
    match features {
        None => 0.0,
        Some(Features {
            known: Some(rows), ..
        }) => *rows,
        Some(f) => {
            let (lower, upper) = f.bounds;
            ctx.from_unit(network.predict(f))
                .clamp(lower, upper)
                .clamp(0.0, ctx.rows)
        }
    }
}

impl CardinalityEstimator for LearnedEstimator {
    fn name(&self) -> &'static str {
        NAME
    }

    fn estimate_scan(
        &self,
        table: &TableDef,
        stats: Option<&TableStats>,
        filter: Option<&Expr>,
    ) -> Estimate {
        self.inner.served.fetch_add(1, Ordering::Relaxed);
        let baseline = || StatisticsEstimator.estimate_scan(table, stats, filter);
        let Some(filter) = filter else {
            return baseline();
        };
        let model = self.inner.models.read().get(&table.keyspace).cloned();
        let Some(model) = model.filter(|m| m.in_use) else {
            return baseline();
        };
        if model.columns.len() != table.columns.len()
            || model
                .columns
                .iter()
                .zip(&table.columns)
                .any(|((n, t), c)| *t != c.data_type || !n.eq_ignore_ascii_case(&c.name))
        {
            return baseline();
        }
        let began = Instant::now();
        let atoms = decompose(filter);
        let mut rows = Self::predict(&model, &atoms);
        // The table has grown or shrunk since it was analyzed: scale to its size now.
        if let Some(s) = stats
            && model.ctx.rows > 0.0
        {
            rows = (rows * s.rows as f64 / model.ctx.rows).clamp(0.0, s.rows as f64);
        }
        self.inner
            .inference_nanos
            .fetch_add(began.elapsed().as_nanos() as u64, Ordering::Relaxed);
        self.inner.served_learned.fetch_add(1, Ordering::Relaxed);
        Estimate {
            rows,
            estimator: NAME,
        }
    }

    fn analyzed(&self, table: &TableDef, rows: Vec<Vec<Value>>, stats: &TableStats) {
        let key = table.keyspace;
        if rows.is_empty() {
            self.forget(key);
            return;
        }
        *self.inner.busy.lock() += 1;
        if self.inner.config.background {
            // ANALYZE returns once its statistics are written; the network is trained on
            // the sample here and replaces the current one only if it is better.
            let this = self.clone();
            let (table, stats) = (table.clone(), stats.clone());
            self.spawn(move || this.bootstrap(&table, &rows, &stats));
        } else {
            self.bootstrap(table, &rows, stats);
        }
    }

    fn dropped(&self, table: &TableDef) {
        self.forget(table.keyspace);
    }

    fn observe(&self, fb: &Feedback) {
        if !fb.current {
            return;
        }
        let Some(filter) = &fb.filter else { return };
        let key = fb.keyspace;
        if !self.inner.models.read().contains_key(&key) {
            return;
        }
        let retrain = {
            let mut memory = self.inner.memory.lock();
            let Some(m) = memory.get_mut(&key) else {
                return;
            };
            m.seen += 1;
            if m.replay.len() >= self.inner.config.replay_capacity {
                m.replay.pop_front();
            }
            m.replay.push_back(Example {
                atoms: decompose(filter),
                actual: fb.actual as f64,
                held_out: m.seen % 5 == 0,
            });
            m.recent.push(q_error(fb.estimated, fb.actual as f64));
            let mut due =
                m.recent.len() as u64 >= self.inner.config.training_interval && !m.training;
            if due {
                // Nothing to learn when the estimates of the interval were already good
                // (point lookups, repeated queries): skip the retraining.
                let recent = QErrorSummary::of(&std::mem::take(&mut m.recent));
                due = recent.p90 > self.inner.config.skip_retrain_q_error;
                m.training = due;
            }
            due
        };
        if !retrain {
            return;
        }
        *self.inner.busy.lock() += 1;
        let this = self.clone();
        let run = move || {
            this.train_in_place(key);
            this.finish(key);
        };
        if self.inner.config.background {
            self.spawn(run);
        } else {
            run();
        }
    }
}

/// The stored form of a table's model and memory: one [`record`] (serde, postcard) under
/// `ml/<table id>` in the store's metadata. Everything read back is checked before use:
/// the network's shapes, the statistics' width and every example's atoms.
mod persist {
    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::model::Layer;

    #[derive(Serialize, Deserialize)]
    struct StoredExample {
        actual: f64,
        held_out: bool,
        /// (column, operator index, literals) per atom.
        atoms: Vec<(usize, usize, Vec<Value>)>,
    }

    #[derive(Serialize, Deserialize)]
    struct StoredLayer {
        inputs: usize,
        outputs: usize,
        weights: Vec<f32>,
        biases: Vec<f32>,
    }

    /// `[count, median, p90, p95, p99, max, mean_log]`.
    type StoredSummary = (usize, [f64; 6]);

    #[derive(Serialize, Deserialize)]
    struct Stored {
        keyspace: Keyspace,
        table: String,
        columns: Vec<(String, DataType)>,
        version: u64,
        in_use: bool,
        rows: f64,
        stats: TableStats,
        sample: Vec<Vec<Value>>,
        layers: Vec<StoredLayer>,
        learned: StoredSummary,
        baseline: StoredSummary,
        generated: Vec<StoredExample>,
        replay: Vec<StoredExample>,
        seen: u64,
    }

    fn store_examples<'a>(list: impl Iterator<Item = &'a Example>) -> Vec<StoredExample> {
        // Atoms of no known shape cannot be rebuilt: such examples are not kept.
        list.filter(|e| e.atoms.iter().all(|a| a.op != Op::Other && a.col.is_some()))
            .map(|e| StoredExample {
                actual: e.actual,
                held_out: e.held_out,
                atoms: e
                    .atoms
                    .iter()
                    .map(|a| (a.col.unwrap_or(0), a.op.index(), a.values.clone()))
                    .collect(),
            })
            .collect()
    }

    fn load_examples(list: Vec<StoredExample>, width: usize) -> Option<Vec<Example>> {
        list.into_iter()
            .map(|e| {
                let atoms = e
                    .atoms
                    .into_iter()
                    .map(|(col, op, values)| {
                        (col < width).then_some(())?;
                        Atom::rebuild(col, Op::from_index(op)?, values)
                    })
                    .collect::<Option<Vec<Atom>>>()?;
                Some(Example {
                    atoms,
                    actual: e.actual,
                    held_out: e.held_out,
                })
            })
            .collect()
    }

    fn store_summary(s: &QErrorSummary) -> StoredSummary {
        (s.count, [s.median, s.p90, s.p95, s.p99, s.max, s.mean_log])
    }

    fn load_summary((count, f): StoredSummary) -> QErrorSummary {
        QErrorSummary {
            count,
            median: f[0],
            p90: f[1],
            p95: f[2],
            p99: f[3],
            max: f[4],
            mean_log: f[5],
        }
    }

    pub(super) fn encode(key: Keyspace, model: &TableModel, memory: &Memory) -> Vec<u8> {
        let stored = Stored {
            keyspace: key,
            table: model.table.clone(),
            columns: model.columns.clone(),
            version: model.version,
            in_use: model.in_use,
            rows: model.ctx.rows,
            stats: model.ctx.stats.clone(),
            sample: model.ctx.sample.rows().to_vec(),
            layers: model
                .network
                .layers
                .iter()
                .map(|l| StoredLayer {
                    inputs: l.inputs,
                    outputs: l.outputs,
                    weights: l.weights.clone(),
                    biases: l.biases.clone(),
                })
                .collect(),
            learned: store_summary(&model.evaluation.learned),
            baseline: store_summary(&model.evaluation.baseline),
            generated: store_examples(memory.generated.iter()),
            replay: store_examples(memory.replay.iter()),
            seen: memory.seen,
        };
        record::encode(MODEL_FORMAT, &stored)
    }

    pub(super) fn decode(raw: &[u8]) -> Option<(Keyspace, TableModel, Memory)> {
        let s: Stored = record::decode(MODEL_FORMAT, "learned model", raw).ok()?;
        let width = s.columns.len();
        let network = Network {
            layers: s
                .layers
                .into_iter()
                .map(|l| Layer {
                    inputs: l.inputs,
                    outputs: l.outputs,
                    weights: l.weights,
                    biases: l.biases,
                })
                .collect(),
        };
        if !network.fits()
            || s.stats.columns.len() != width
            || s.sample.iter().any(|r| r.len() != width)
        {
            return None;
        }
        let generated = load_examples(s.generated, width)?;
        let replay: VecDeque<Example> = load_examples(s.replay, width)?.into();
        let model = TableModel {
            table: s.table,
            columns: s.columns,
            ctx: Arc::new(TableContext {
                rows: s.rows,
                stats: s.stats,
                sample: Columnar::new(width, s.sample),
            }),
            network,
            in_use: s.in_use,
            version: s.version,
            evaluation: Evaluation {
                learned: load_summary(s.learned),
                baseline: load_summary(s.baseline),
            },
        };
        let memory = Memory {
            generated,
            replay,
            recent: Vec::new(),
            seen: s.seen,
            training: false,
        };
        Some((s.keyspace, model, memory))
    }
}
