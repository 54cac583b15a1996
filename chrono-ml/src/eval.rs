//! The evaluation the `ml-eval` binary prints and the tests check: the synthetic table,
//! bootstrap training through `ANALYZE`, random queries of 1–4 atoms, q-errors of the
//! network and of the statistics baseline, inference time, retraining time and the drift
//! check; and the same held-out check on a real table read from a CSV file ([`run_csv`]).

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

/// What [`run_csv`] measured on a real table.
#[derive(Debug, Clone)]
pub struct CsvEvalResult {
    /// The table's name and rows.
    pub table: String,
    /// Rows.
    pub rows: usize,
    /// Seconds of `ANALYZE` (statistics and the sample; training excluded).
    pub analyze_seconds: f64,
    /// Seconds of the training that followed.
    pub training_seconds: f64,
    /// The estimator the planner uses (network or baseline, as the estimator decides) on
    /// the held-out queries.
    pub served: QErrorSummary,
    /// The network alone.
    pub learned: QErrorSummary,
    /// The statistics baseline.
    pub baseline: QErrorSummary,
    /// Mean microseconds per estimate through the planner's interface.
    pub inference_micros: f64,
    /// The served estimator's worst held-out queries: (q-error, estimate, actual, query).
    pub worst: Vec<(f64, f64, f64, String)>,
}

/// Reads a CSV file with a header row into a table (integer, real or text columns, as
/// every value of the column reads; empty and `NA` are NULL), analyzes it, and scores
/// `queries` held-out queries (drawn with another seed than training's, answered exactly
/// on every row).
pub fn run_csv(path: &std::path::Path, queries: usize) -> Result<CsvEvalResult, String> {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("t")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>();
    let mut reader = csv::Reader::from_path(path).map_err(|e| e.to_string())?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(|h| h.to_string())
        .collect();
    let mut cells: Vec<Vec<Option<String>>> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| e.to_string())?;
        cells.push(
            record
                .iter()
                .map(|c| (!c.is_empty() && c != "NA").then(|| c.to_string()))
                .collect(),
        );
    }
    let kind = |c: usize| {
        let all = |ok: &dyn Fn(&str) -> bool| {
            cells
                .iter()
                .all(|r| r.get(c).and_then(|v| v.as_deref()).is_none_or(ok))
        };
        if all(&|v| v.parse::<i64>().is_ok()) {
            "INTEGER"
        } else if all(&|v| v.parse::<f64>().is_ok()) {
            "REAL"
        } else {
            "TEXT"
        }
    };
    let kinds: Vec<&str> = (0..header.len()).map(kind).collect();
    let rows: Vec<Vec<Value>> = cells
        .into_iter()
        .map(|r| {
            kinds
                .iter()
                .enumerate()
                .map(|(c, k)| match r.get(c).cloned().flatten() {
                    None => Value::Null,
                    Some(v) => match *k {
                        "INTEGER" => v.parse().map(Value::Int).unwrap_or(Value::Null),
                        "REAL" => v.parse().map(Value::Float).unwrap_or(Value::Null),
                        _ => Value::Text(v),
                    },
                })
                .collect()
        })
        .collect();
    let db = Database::in_memory();
    let est = LearnedEstimator::in_memory(MlConfig {
        background: true,
        training_interval: u64::MAX,
        ..MlConfig::default()
    });
    db.set_estimator(Arc::new(est.clone()));
    let columns: Vec<String> = header.iter().map(|h| format!("\"{h}\"")).collect();
    let create = format!(
        "CREATE TABLE {name} ({})",
        columns
            .iter()
            .zip(&kinds)
            .map(|(c, k)| format!("{c} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    db.execute(&create).map_err(|e| e.to_string())?;
    for chunk in rows.chunks(10_000) {
        db.insert_rows(&name, &header, chunk.to_vec())
            .map_err(|e| e.to_string())?;
    }
    let began = Instant::now();
    db.execute(&format!("ANALYZE {name}"))
        .map_err(|e| e.to_string())?;
    let analyze_seconds = began.elapsed().as_secs_f64();
    est.wait_idle();
    let training_seconds = began.elapsed().as_secs_f64() - analyze_seconds;

    let def = db
        .tables()
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|t| t.name == name)
        .ok_or("the table is gone")?;
    let stats = db.stats().table(def.keyspace).ok_or("not analyzed")?;
    let data = Columnar::new(header.len(), rows.clone());
    let mut rng = StdRng::seed_from_u64(2024);
    let test = workload::generate(&rows, &stats, queries, &mut rng);
    let (mut served, mut learned, mut baseline) = (Vec::new(), Vec::new(), Vec::new());
    let mut worst = Vec::new();
    for q in &test {
        let actual = data.eval_all(q).count() as f64;
        let f = conjunction(q).expect("queries have atoms");
        let s = est.estimate_scan(&def, Some(&stats), Some(&f)).rows;

        served.push(q_error(s, actual));
        let text = q
            .iter()
            .map(|a| {
                let col = a
                    .col
                    .and_then(|c| header.get(c))
                    .map_or("?", |h| h.as_str());
                format!("{col} {:?} {:?}", a.op, a.values)
            })
            .collect::<Vec<_>>()
            .join(" AND ");
        worst.push((q_error(s, actual), s, actual, text));
        learned.push(q_error(
            est.learned_estimate(&name, &f).unwrap_or(0.0),
            actual,
        ));
        baseline.push(q_error(
            StatisticsEstimator::rows(Some(&stats), Some(&f)),
            actual,
        ));
    }
    worst.sort_by(|a, b| b.0.total_cmp(&a.0));
    worst.truncate(10);
    // Inference: every held-out query estimated ten times over (the planner asks the same
    // estimator again and again; the first pass above warmed nothing up for the timing).
    let filters: Vec<Expr> = test.iter().filter_map(|q| conjunction(q)).collect();
    let began = Instant::now();
    for _ in 0..10 {
        for f in &filters {
            std::hint::black_box(est.estimate_scan(&def, Some(&stats), Some(f)));
        }
    }
    let inference_micros = began.elapsed().as_secs_f64() * 1e6 / (10 * filters.len().max(1)) as f64;
    Ok(CsvEvalResult {
        worst,
        table: name,
        rows: rows.len(),
        analyze_seconds,
        training_seconds,
        served: QErrorSummary::of(&served),
        learned: QErrorSummary::of(&learned),
        baseline: QErrorSummary::of(&baseline),
        inference_micros,
    })
}

impl std::fmt::Display for CsvEvalResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}: {} rows, {} held-out queries of 1–4 atoms",
            self.table, self.rows, self.served.count
        )?;
        for (name, s) in [
            ("served (what the planner gets)", &self.served),
            ("learned (MLP)", &self.learned),
            ("statistics baseline", &self.baseline),
        ] {
            writeln!(f, "{name:<32} {s}")?;
        }
        writeln!(
            f,
            "ANALYZE {:.2} s, then training {:.2} s in the background; {:.1} µs per estimate",
            self.analyze_seconds, self.training_seconds, self.inference_micros
        )?;
        writeln!(f, "worst held-out queries (q-error, estimate, actual):")?;
        for (q, est, actual, text) in &self.worst {
            writeln!(f, "  {q:>8.1} {est:>10.0} {actual:>8.0}  {text}")?;
        }
        Ok(())
    }
}
