//! The evaluation the `ml-eval` binary prints and the tests check: the synthetic table,
//! bootstrap training through `ANALYZE`, random queries of 1–4 atoms, q-errors of the
//! network and of the statistics baseline, inference time, retraining time and the drift
//! check.

use std::sync::Arc;
use std::time::Instant;

use chrono_sql::catalog::TableDef;
use chrono_sql::cost::{CardinalityEstimator, Feedback, StatisticsEstimator};
use chrono_sql::expr::Expr;
use chrono_sql::{Database, Outcome};
use chrono_storage::Value;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::atoms::{Atom, conjunction};
use crate::columnar::Columnar;
use crate::estimator::{LearnedEstimator, MlConfig};
use crate::metrics::{QErrorSummary, q_error};
use crate::synthetic::{self, Drift};
use crate::workload;

/// Sizes of an evaluation.
#[derive(Debug, Clone, Copy)]
pub struct EvalConfig {
    /// Rows of the table.
    pub rows: usize,
    /// Test queries.
    pub queries: usize,
    /// Feedback records for the retraining measurement.
    pub feedback: usize,
}

/// What an evaluation measured.
#[derive(Debug, Clone)]
pub struct EvalResult {
    /// Rows of the table.
    pub rows: usize,
    /// The network on the test queries.
    pub learned: QErrorSummary,
    /// The baseline on the same queries.
    pub baseline: QErrorSummary,
    /// Mean microseconds per estimate through the planner's interface.
    pub inference_micros: f64,
    /// Seconds of one retraining on `feedback` new records plus the replay buffer.
    pub retrain_seconds: f64,
    /// Feedback records that retraining took.
    pub feedback: usize,
    /// Bootstrap training seconds (inside `ANALYZE`).
    pub bootstrap_seconds: f64,
    /// After 20% new rows with another correlation: the network before retraining.
    pub drift_stale: QErrorSummary,
    /// … after one retraining.
    pub drift_retrained: QErrorSummary,
    /// … and the baseline after re-analysis.
    pub drift_baseline: QErrorSummary,
}

fn table(db: &Database) -> TableDef {
    db.tables()
        .ok()
        .and_then(|t| t.into_iter().find(|t| t.name == "facts"))
        .expect("facts exists")
}

fn all_rows(db: &Database) -> Vec<Vec<Value>> {
    match db
        .execute("SELECT * FROM facts")
        .ok()
        .and_then(|mut o| o.pop())
    {
        Some(Outcome::Rows { rows, .. }) => rows,
        _ => Vec::new(),
    }
}

/// Q-errors of the network and the baseline on `queries` with exact answers from `data`.
fn score(
    est: &LearnedEstimator,
    db: &Database,
    data: &Columnar,
    queries: &[Vec<Atom>],
) -> (QErrorSummary, QErrorSummary) {
    let stats = db.stats().table(table(db).keyspace);
    let mut learned = Vec::new();
    let mut baseline = Vec::new();
    for q in queries {
        let actual = data.eval_all(q).count() as f64;
        let f = conjunction(q).expect("queries have atoms");
        let l = est.learned_estimate("facts", &f).unwrap_or(0.0);
        let b = StatisticsEstimator::rows(stats.as_deref(), Some(&f));
        learned.push(q_error(l, actual));
        baseline.push(q_error(b, actual));
    }
    (QErrorSummary::of(&learned), QErrorSummary::of(&baseline))
}

/// Runs the evaluation.
pub fn run(config: EvalConfig) -> EvalResult {
    let db = Database::in_memory();
    let est = LearnedEstimator::in_memory(MlConfig {
        background: false,
        training_interval: u64::MAX,
        ..MlConfig::default()
    });
    db.set_estimator(Arc::new(est.clone()));
    db.execute(synthetic::CREATE).expect("create");
    let columns: Vec<String> = synthetic::COLUMNS.iter().map(|c| c.to_string()).collect();
    let insert = |rows: Vec<Vec<Value>>| {
        for chunk in rows.chunks(5000) {
            db.insert_rows("facts", &columns, chunk.to_vec())
                .expect("insert");
        }
    };
    insert(synthetic::rows(0, config.rows, Drift::Original, 1));
    let began = Instant::now();
    db.execute("ANALYZE facts").expect("analyze");
    let bootstrap_seconds = began.elapsed().as_secs_f64();

    let rows = all_rows(&db);
    let stats = db.stats().table(table(&db).keyspace).expect("analyzed");
    let data = Columnar::new(synthetic::COLUMNS.len(), rows.clone());
    let mut rng = StdRng::seed_from_u64(2024);
    let queries = workload::generate(&rows, &stats, config.queries, &mut rng);
    let (learned, baseline) = score(&est, &db, &data, &queries);

    // Inference through the planner's interface.
    let def = table(&db);
    let filters: Vec<Expr> = queries.iter().filter_map(|q| conjunction(q)).collect();
    let began = Instant::now();
    let mut sink = 0.0;
    for f in &filters {
        sink += est.estimate_scan(&def, Some(&stats), Some(f)).rows;
    }
    let inference_micros = began.elapsed().as_secs_f64() * 1e6 / filters.len().max(1) as f64;
    std::hint::black_box(sink);

    // Retraining on new feedback records (plus the generated queries).
    let fresh = workload::generate(&rows, &stats, config.feedback, &mut rng);
    for q in &fresh {
        est.observe(&Feedback {
            table: "facts".into(),
            keyspace: def.keyspace,
            predicate: String::new(),
            filter: conjunction(q),
            estimated: 0.0,
            actual: data.eval_all(q).count(),
            estimator: "learned",
            current: true,
            rows_read: data.len() as u64,
            full_scan: true,
        });
    }
    let began = Instant::now();
    est.retrain("facts");
    let retrain_seconds = began.elapsed().as_secs_f64();

    // Drift: 20% new rows with another correlation; the stale model, then one retraining
    // (the re-analysis the changed fraction triggers).
    insert(synthetic::rows(
        config.rows as i64,
        config.rows / 5,
        Drift::Shifted,
        3,
    ));
    let rows = all_rows(&db);
    let data = Columnar::new(synthetic::COLUMNS.len(), rows.clone());
    let drift_queries = workload::generate(&rows, &stats, config.queries, &mut rng);
    let (drift_stale, _) = score(&est, &db, &data, &drift_queries);
    db.execute("ANALYZE facts").expect("analyze");
    let (drift_retrained, drift_baseline) = score(&est, &db, &data, &drift_queries);

    EvalResult {
        rows: config.rows,
        learned,
        baseline,
        inference_micros,
        retrain_seconds,
        feedback: config.feedback,
        bootstrap_seconds,
        drift_stale,
        drift_retrained,
        drift_baseline,
    }
}

impl std::fmt::Display for EvalResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let row = |f: &mut std::fmt::Formatter<'_>, name: &str, s: &QErrorSummary| {
            writeln!(
                f,
                "| {name:<28} | {:>7.2} | {:>7.2} | {:>7.2} | {:>8.2} | {:>9.1} |",
                s.median, s.p90, s.p95, s.p99, s.max
            )
        };
        writeln!(
            f,
            "synthetic table: {} rows, {} test queries of 1–4 atoms",
            self.rows, self.learned.count
        )?;
        writeln!(
            f,
            "| estimator                    |  median |     p90 |     p95 |      p99 |       max |"
        )?;
        writeln!(
            f,
            "|------------------------------|---------|---------|---------|----------|-----------|"
        )?;
        row(f, "learned (MLP)", &self.learned)?;
        row(f, "statistics baseline", &self.baseline)?;
        row(f, "drift: learned, stale", &self.drift_stale)?;
        row(f, "drift: learned, retrained", &self.drift_retrained)?;
        row(f, "drift: baseline, re-analyzed", &self.drift_baseline)?;
        writeln!(f)?;
        writeln!(
            f,
            "p99 learned / baseline: {:.1}× better",
            self.baseline.p99 / self.learned.p99.max(1.0)
        )?;
        writeln!(f, "inference: {:.1} µs per estimate", self.inference_micros)?;
        writeln!(
            f,
            "bootstrap (ANALYZE incl. training): {:.2} s",
            self.bootstrap_seconds
        )?;
        writeln!(
            f,
            "retraining on {} feedback records + replay: {:.2} s",
            self.feedback, self.retrain_seconds
        )?;
        writeln!(
            f,
            "drift: p99 {:.2} before the change, {:.2} stale, {:.2} after one retraining ({:.2}× the p99 before)",
            self.learned.p99,
            self.drift_stale.p99,
            self.drift_retrained.p99,
            self.drift_retrained.p99 / self.learned.p99
        )
    }
}
