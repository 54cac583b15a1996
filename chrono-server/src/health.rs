//! The AI health report ([`ChronoDb::get_health_report`]): what the database saw
//! and what to do about it. Every finding has a severity, the evidence in numbers and a
//! recommendation in plain words; the sections behind them are in the report too:
//!
//! - **statements** — per normalized statement (pg_stat_statements' model): calls, total,
//!   mean, p95 and max time, rows, errors; the slowest with their plans (`EXPLAIN` of the
//!   last text run, which does not run it);
//! - **index advice** — columns that full scans filtered on with no index to use, with the
//!   rows those scans read and kept, and the `CREATE INDEX` to run (gone once it is);
//! - **estimator** — per table, the q-error (max(estimate/actual, actual/estimate)) of the
//!   recent scans' estimates, by estimator, and whether the table has statistics; the learned
//!   estimator's own held-out evaluation when it is on;
//! - **history** — per table: live rows, versions, versions per row, bytes, the oldest
//!   version, and what `retention_days` would let go;
//! - **storage** — per column family: bytes on disk and live, files per level, compaction
//!   debt, write stalls;
//! - **audit** — the log's length and where checkpoints go.
//!
//! It reads what is kept anyway (statement statistics, scan feedback) plus one pass over
//! the history families, so it costs nothing until it is asked for. Text, JSON and HTML
//! (with SVG bars) forms: [`HealthReport::to_text`], [`HealthReport::to_json`],
//! [`HealthReport::to_html`].

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono_sql::Outcome;
use chrono_storage::{Timestamp, Value};
use serde::Serialize;

use crate::ChronoDb;
use crate::error::Result;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Costs time or space now; act on it.
    Warning,
    /// Puts data or availability at risk.
    Critical,
}

/// One finding.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// How much it matters.
    pub severity: Severity,
    /// Which section it comes from.
    pub area: &'static str,
    /// What was found, in one line.
    pub title: String,
    /// The evidence.
    pub detail: String,
    /// What to do.
    pub recommendation: String,
}

/// A statement's statistics.
#[derive(Debug, Clone, Serialize)]
pub struct StatementRow {
    /// Normalized text.
    pub statement: String,
    /// Runs.
    pub calls: u64,
    /// Failed runs.
    pub errors: u64,
    /// Milliseconds in all runs.
    pub total_ms: f64,
    /// Mean milliseconds per run.
    pub mean_ms: f64,
    /// 95th percentile, milliseconds.
    pub p95_ms: f64,
    /// Longest run, milliseconds.
    pub max_ms: f64,
    /// Rows returned or changed.
    pub rows: u64,
}

/// One of the slowest statements, with its plan.
#[derive(Debug, Clone, Serialize)]
pub struct SlowStatement {
    /// Normalized text.
    pub statement: String,
    /// Mean milliseconds per run.
    pub mean_ms: f64,
    /// The text of its last run.
    pub example: String,
    /// `EXPLAIN` of it (empty when it cannot be explained: a schema change, an error).
    pub plan: Vec<String>,
}

/// A column to index.
#[derive(Debug, Clone, Serialize)]
pub struct IndexRow {
    /// The table.
    pub table: String,
    /// The column.
    pub column: String,
    /// Recent full scans filtering on it.
    pub scans: u64,
    /// Rows they read.
    pub rows_read: u64,
    /// Rows their conditions kept.
    pub rows_matched: u64,
    /// Rows an index would have saved reading.
    pub rows_saved: u64,
    /// The statement to run.
    pub statement: String,
}

/// How well one table's row counts were estimated recently.
#[derive(Debug, Clone, Serialize)]
pub struct EstimatorRow {
    /// The table.
    pub table: String,
    /// The estimator that made the estimates.
    pub estimator: String,
    /// Scans measured.
    pub scans: usize,
    /// Median q-error.
    pub median_q_error: f64,
    /// 95th percentile q-error.
    pub p95_q_error: f64,
    /// Whether the table has statistics (ANALYZE ran).
    pub analyzed: bool,
}

/// The estimator section.
#[derive(Debug, Clone, Serialize)]
pub struct EstimatorHealth {
    /// The estimator the planner asks.
    pub in_use: String,
    /// Whether the learned estimator is on.
    pub learned_enabled: bool,
    /// Per table and estimator, from the recent scans.
    pub tables: Vec<EstimatorRow>,
    /// The learned estimator's own metrics (when it is on).
    pub learned: Option<serde_json::Value>,
}

/// One table's history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    /// The table.
    pub table: String,
    /// Rows a current read returns.
    pub live_rows: u64,
    /// Row versions kept.
    pub versions: u64,
    /// Versions per live row.
    pub versions_per_row: f64,
    /// Bytes of its versions (rows, not indexes).
    pub bytes: u64,
    /// The oldest version's time.
    pub oldest: Option<String>,
    /// The table's retention in days (0: forever): `table_retention_days`, else
    /// `retention_days`.
    pub retention_days: u32,
    /// Versions its retention would let go.
    pub retention_would_free: u64,
    /// Their bytes.
    pub retention_would_free_bytes: u64,
}

/// One column family's storage.
#[derive(Debug, Clone, Serialize)]
pub struct StorageRow {
    /// The column family.
    pub family: String,
    /// Bytes on disk.
    pub disk_bytes: u64,
    /// Estimated live bytes.
    pub live_bytes: u64,
    /// Table files per level.
    pub files_per_level: Vec<u64>,
    /// Compaction debt in bytes.
    pub pending_compaction_bytes: u64,
    /// Writes stopped or slowed now.
    pub write_stalled: bool,
}

/// The audit section.
#[derive(Debug, Clone, Serialize)]
pub struct AuditHealth {
    /// Whether commits are audited.
    pub enabled: bool,
    /// Transactions in the log.
    pub transactions: u64,
    /// Where signed checkpoints are written, if anywhere.
    pub checkpoint_dir: Option<String>,
    /// The newest checkpoint file there.
    pub last_checkpoint: Option<String>,
    /// The last verification since the database was opened: when, and its outcome ("ok"
    /// or the failure's kind and position).
    pub last_verification: Option<(String, String)>,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// When it was made.
    pub generated_at: String,
    /// The database's identity.
    pub database: String,
    /// What to act on, the most severe first.
    pub findings: Vec<Finding>,
    /// Statements by total time (at most 20).
    pub statements: Vec<StatementRow>,
    /// The slowest statements by mean time (at most 5), with plans.
    pub slowest: Vec<SlowStatement>,
    /// Columns to index.
    pub index_advice: Vec<IndexRow>,
    /// Cardinality estimation.
    pub estimator: EstimatorHealth,
    /// History per table.
    pub history: Vec<HistoryRow>,
    /// `retention_days` in force (0: forever).
    pub retention_days: u32,
    /// Storage per column family.
    pub storage: Vec<StorageRow>,
    /// The audit trail.
    pub audit: AuditHealth,
}

fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn q_error(estimated: f64, actual: u64) -> f64 {
    let (e, a) = (estimated.max(1.0), (actual as f64).max(1.0));
    (e / a).max(a / e)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Minimum rows an index would have saved before it is recommended.
const INDEX_ROWS_SAVED: u64 = 1_000;
/// q-error at p95 past which a table's estimates are called off.
const BAD_Q_ERROR: f64 = 10.0;
/// Mean time past which a statement is called slow.
const SLOW_MS: f64 = 100.0;
/// Versions per live row past which history is called deep.
const DEEP_HISTORY: f64 = 20.0;

impl ChronoDb {
    /// The documented `get_health_report()`: findings with severities and recommendations, and
    /// the statement, index, estimator, history, storage and audit sections behind them.
    pub fn get_health_report(&self) -> Result<HealthReport> {
        let db = self.database();
        let store = db.store();
        let now = Timestamp::now();
        let mut findings = Vec::new();
        // A catalog that does not read is the finding, not the end of the report.
        let tables = match db.tables() {
            Ok(t) => t,
            Err(e) => {
                findings.push(Finding {
                    severity: Severity::Critical,
                    area: "storage",
                    title: "the catalog does not read".into(),
                    detail: e.to_string(),
                    recommendation: "The database files were damaged or changed behind \
                                     ChronoDB: run `chronodb audit verify` and restore from a \
                                     backup you trust."
                        .into(),
                });
                Vec::new()
            }
        };

        // Statements.
        let summaries = db.statement_stats().summaries();
        let statements: Vec<StatementRow> = summaries
            .iter()
            .take(20)
            .map(|s| StatementRow {
                statement: s.statement.clone(),
                calls: s.calls,
                errors: s.errors,
                total_ms: ms(s.total),
                mean_ms: ms(s.mean),
                p95_ms: ms(s.p95),
                max_ms: ms(s.max),
                rows: s.rows,
            })
            .collect();
        let mut by_mean = summaries.clone();
        by_mean.sort_by_key(|s| std::cmp::Reverse(s.mean));
        let mut slowest = Vec::new();
        for s in by_mean.iter().take(5) {
            let plan = self.explain_lines(&s.example);
            if ms(s.mean) >= SLOW_MS {
                findings.push(Finding {
                    severity: Severity::Warning,
                    area: "statements",
                    title: format!("slow statement: {}", s.statement),
                    detail: format!(
                        "{} runs, mean {:.1} ms, p95 {:.1} ms, max {:.1} ms",
                        s.calls,
                        ms(s.mean),
                        ms(s.p95),
                        ms(s.max)
                    ),
                    recommendation: "Read its plan below: a full scan of a large table wants an \
                                     index (see the index advice), a join of unanalyzed tables \
                                     wants ANALYZE."
                        .into(),
                });
            }
            slowest.push(SlowStatement {
                statement: s.statement.clone(),
                mean_ms: ms(s.mean),
                example: cut(&s.example, 300),
                plan,
            });
        }
        for s in &summaries {
            if s.calls >= 10 && s.errors * 10 > s.calls {
                findings.push(Finding {
                    severity: Severity::Warning,
                    area: "statements",
                    title: format!("a statement fails often: {}", s.statement),
                    detail: format!("{} of {} runs failed", s.errors, s.calls),
                    recommendation: "Check the errors the clients get for it (conflicts are \
                                     retried by autocommit; constraint violations are the \
                                     data's)."
                        .into(),
                });
            }
        }

        // Index advice.
        let feedback = db.stats().feedback();
        let advice = chrono_sql::cost::index_advice(&feedback, &tables);
        let index_advice: Vec<IndexRow> = advice
            .iter()
            .map(|a| IndexRow {
                table: a.table.clone(),
                column: a.column.clone(),
                scans: a.scans,
                rows_read: a.rows_read,
                rows_matched: a.rows_matched,
                rows_saved: a.rows_saved(),
                statement: a.statement.clone(),
            })
            .collect();
        for a in &advice {
            if a.scans >= 2 && a.rows_saved() >= INDEX_ROWS_SAVED && a.selectivity() <= 0.5 {
                findings.push(Finding {
                    severity: Severity::Warning,
                    area: "indexes",
                    title: format!("{}.{} is filtered on by full scans", a.table, a.column),
                    detail: format!(
                        "{} recent scans read {} rows to keep {} ({:.1}%)",
                        a.scans,
                        a.rows_read,
                        a.rows_matched,
                        a.selectivity() * 100.0
                    ),
                    recommendation: format!(
                        "Run `{}`: it would have saved reading {} rows.",
                        a.statement,
                        a.rows_saved()
                    ),
                });
            }
        }

        // Estimator.
        let mut q: BTreeMap<(String, u32, String), Vec<f64>> = BTreeMap::new();
        for fb in feedback.iter().filter(|f| f.current) {
            q.entry((
                fb.table.to_ascii_lowercase(),
                fb.keyspace,
                fb.estimator.to_string(),
            ))
            .or_default()
            .push(q_error(fb.estimated, fb.actual));
        }
        let mut estimator_rows = Vec::new();
        for ((table, keyspace, estimator), mut errors) in q {
            errors.sort_by(f64::total_cmp);
            let analyzed = db.stats().table(keyspace).is_some();
            let row = EstimatorRow {
                table: table.clone(),
                estimator,
                scans: errors.len(),
                median_q_error: percentile(&errors, 0.5),
                p95_q_error: percentile(&errors, 0.95),
                analyzed,
            };
            if row.scans >= 5 && row.p95_q_error >= BAD_Q_ERROR {
                findings.push(Finding {
                    severity: Severity::Warning,
                    area: "estimator",
                    title: format!("row estimates for {table} are off"),
                    detail: format!(
                        "{} scans, q-error median {:.1}, p95 {:.1} ({})",
                        row.scans, row.median_q_error, row.p95_q_error, row.estimator
                    ),
                    recommendation: if analyzed {
                        format!(
                            "Run `ANALYZE {table}` again: the data has moved since its \
                             statistics were taken."
                        )
                    } else {
                        format!("Run `ANALYZE {table}`: it has no statistics.")
                    },
                });
            }
            estimator_rows.push(row);
        }
        for t in &tables {
            let scanned = feedback.iter().any(|f| f.keyspace == t.keyspace);
            if scanned && db.stats().table(t.keyspace).is_none() {
                findings.push(Finding {
                    severity: Severity::Info,
                    area: "estimator",
                    title: format!("{} has no statistics", t.name),
                    detail: "its scans are estimated with defaults".into(),
                    recommendation: format!(
                        "Run `ANALYZE {}` (tables are analyzed again by themselves once \
                         features.ml_optimizer.reanalyze_min_rows plus reanalyze_fraction \
                         of their rows changed).",
                        t.name
                    ),
                });
            }
        }
        let learned = self.ml_optimizer().map(|m| m.get_performance_metrics());
        if learned.is_none() {
            findings.push(Finding {
                severity: Severity::Info,
                area: "estimator",
                title: if crate::ml::BUILT_IN {
                    "the learned estimator is off".into()
                } else {
                    "the learned estimator is not built into this chronodb".into()
                },
                detail: "row counts are estimated from statistics alone".into(),
                recommendation: if crate::ml::BUILT_IN {
                    "Set features.ml_optimizer.enabled: true to learn from the queries that run."
                        .into()
                } else {
                    "Build chronodb with the ml feature (the default) to learn from the queries \
                     that run."
                        .into()
                },
            });
        }
        let estimator = EstimatorHealth {
            in_use: db.estimator().name().to_string(),
            learned_enabled: learned.is_some(),
            tables: estimator_rows,
            learned: learned.and_then(|m| serde_json::to_value(m).ok()),
        };

        // History.
        let retention_days = self.config().features.time_travel.retention_days;
        let cutoffs = self.retention_horizons(now)?;
        let summary = chrono_storage::history::summarize(store, Some(&cutoffs))?;
        let mut history = Vec::new();
        for t in &tables {
            let h = summary.get(&t.keyspace).cloned().unwrap_or_default();
            let days = self.table_retention_days(&t.name);
            let row = HistoryRow {
                retention_days: days,
                table: t.name.clone(),
                live_rows: h.live,
                versions: h.versions,
                versions_per_row: h.versions as f64 / h.live.max(1) as f64,
                bytes: h.bytes,
                oldest: h.oldest_ts.map(|ts| Timestamp::from_micros(ts).to_string()),
                retention_would_free: h.collectable,
                retention_would_free_bytes: h.collectable_bytes,
            };
            if row.versions_per_row >= DEEP_HISTORY && row.versions >= 1_000 {
                findings.push(Finding {
                    severity: Severity::Info,
                    area: "history",
                    title: format!("{} keeps deep history", t.name),
                    detail: format!(
                        "{} versions for {} live rows ({:.0} per row), {} bytes",
                        row.versions, row.live_rows, row.versions_per_row, row.bytes
                    ),
                    recommendation: if days == 0 {
                        format!(
                            "Its retention is 0 days (keep forever): set \
                             features.time_travel.table_retention_days.{} (or retention_days) \
                             if history older than some days is not needed, or run DELETE \
                             HISTORY FROM {} BEFORE SYSTEM_TIME <time>.",
                            t.name, t.name
                        )
                    } else {
                        format!(
                            "Its retention of {days} days would let {} of its versions go.",
                            row.retention_would_free
                        )
                    },
                });
            }
            history.push(row);
        }
        if history.iter().any(|h| h.retention_would_free > 0) {
            let (n, bytes) = history.iter().fold((0, 0), |(n, b), h| {
                (n + h.retention_would_free, b + h.retention_would_free_bytes)
            });
            findings.push(Finding {
                severity: Severity::Info,
                area: "history",
                title: format!("{n} versions are older than their tables' retention"),
                detail: format!(
                    "{bytes} bytes of versions no read inside the retention window needs"
                ),
                recommendation: "They go at the next collection (`chronodb serve` collects \
                                 every features.time_travel.gc_interval_secs; embedded: \
                                 ChronoDb::collect_history); AS OF before the horizon is then \
                                 refused."
                    .into(),
            });
        }

        // Storage.
        let storage: Vec<StorageRow> = store
            .engine()
            .state()
            .into_iter()
            .map(|f| StorageRow {
                family: f.name.to_string(),
                disk_bytes: f.disk_bytes,
                live_bytes: f.live_bytes,
                files_per_level: f.files_per_level,
                pending_compaction_bytes: f.pending_compaction_bytes,
                write_stalled: f.write_stalled,
            })
            .collect();
        for f in &storage {
            if f.write_stalled {
                findings.push(Finding {
                    severity: Severity::Critical,
                    area: "storage",
                    title: format!("writes to {} are stalled", f.family),
                    detail: format!(
                        "level-0 files {}, compaction debt {} bytes",
                        f.files_per_level.first().copied().unwrap_or(0),
                        f.pending_compaction_bytes
                    ),
                    recommendation: "Writes come faster than compaction keeps up: spread \
                                     bulk loads out, or give the machine more disk bandwidth."
                        .into(),
                });
            } else if f.pending_compaction_bytes > 1 << 30 {
                findings.push(Finding {
                    severity: Severity::Warning,
                    area: "storage",
                    title: format!("{} has a compaction backlog", f.family),
                    detail: format!("{} bytes wait for compaction", f.pending_compaction_bytes),
                    recommendation: "Reads slow down as files pile up; let compaction catch up \
                                     before the next bulk load."
                        .into(),
                });
            }
        }

        // Audit.
        let audit_cfg = &self.config().features.audit;
        // The directory the checkpoint writer uses, as configured.
        let checkpoint_dir = audit_cfg.checkpoint_dir.clone();
        let last_checkpoint = checkpoint_dir.as_ref().and_then(|dir| {
            std::fs::read_dir(dir)
                .ok()?
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    let size: u64 = name
                        .strip_prefix("checkpoint-")?
                        .strip_suffix(".txt")?
                        .parse()
                        .ok()?;
                    Some((size, name))
                })
                .max()
                .map(|(_, name)| name)
        });
        let last_verification = self.last_verification();
        let audit = AuditHealth {
            enabled: self.audit.is_some(),
            transactions: self.audit.as_ref().map_or(0, |a| a.size()),
            checkpoint_dir: checkpoint_dir.map(|d| d.display().to_string()),
            last_checkpoint,
            last_verification: last_verification.as_ref().map(|(at, r)| {
                (
                    at.to_string(),
                    match &r.failure {
                        None => "ok".to_string(),
                        Some(f) => format!("FAILED: {:?} at {}", f.kind, f.position),
                    },
                )
            }),
        };
        if let Some((at, r)) = &last_verification
            && let Some(f) = &r.failure
        {
            findings.push(Finding {
                severity: Severity::Critical,
                area: "audit",
                title: "the audit trail failed verification".into(),
                detail: format!("at {at}: {:?} at {}", f.kind, f.position),
                recommendation: "Something changed the database files behind ChronoDB: \
                                 restore from a backup you trust and compare it with a \
                                 checkpoint kept outside."
                    .into(),
            });
        }
        if !audit.enabled {
            findings.push(Finding {
                severity: Severity::Warning,
                area: "audit",
                title: "the audit trail is off".into(),
                detail: "commits are not recorded in the tamper-evident log".into(),
                recommendation: "Set features.audit.enabled: true to record who changed what."
                    .into(),
            });
        } else if audit.checkpoint_dir.is_none() {
            findings.push(Finding {
                severity: Severity::Info,
                area: "audit",
                title: "no signed checkpoints are written".into(),
                detail: format!(
                    "the log has {} transactions and nothing outside the database holds it \
                     to its past",
                    audit.transactions
                ),
                recommendation:
                    "Set features.audit.signing_key_file and features.audit.checkpoint_dir (and \
                                 copy the checkpoints off the machine): a history rewritten \
                                 with every hash recomputed then fails verification."
                        .into(),
            });
        }

        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        Ok(HealthReport {
            generated_at: now.to_string(),
            database: store.database_id().to_string(),
            findings,
            statements,
            slowest,
            index_advice,
            estimator,
            history,
            retention_days,
            storage,
            audit,
        })
    }

    /// `EXPLAIN` of a statement's text, one line per node; empty when it has none.
    fn explain_lines(&self, text: &str) -> Vec<String> {
        // A parameter's value does not change the plan (plans keep parameters as slots):
        // NULLs stand in for them. The report's own EXPLAIN is no statement of the workload.
        let Ok(prepared) = chrono_sql::parse(&format!("EXPLAIN {text}")) else {
            return Vec::new();
        };
        let [p] = prepared.as_slice() else {
            return Vec::new();
        };
        let mut session = self.database().session();
        session.set_statement_stats(false);
        match session.run(p, &vec![Value::Null; p.param_count]).ok() {
            Some(Outcome::Rows { rows, .. }) => rows
                .iter()
                .map(|r| match (r.first(), r.get(1)) {
                    (Some(Value::Text(node)), Some(Value::Int(n))) => {
                        format!("{node}  (~{n} rows)")
                    }
                    (Some(Value::Text(node)), _) => node.clone(),
                    _ => String::new(),
                })
                .collect(),
            _ => Vec::new(),
        }
    }
}

impl HealthReport {
    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report as text for a terminal.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "ChronoDB health report · database {} · {}",
            self.database, self.generated_at
        );
        let _ = writeln!(s, "\nFindings ({}):", self.findings.len());
        if self.findings.is_empty() {
            let _ = writeln!(s, "  nothing to act on");
        }
        for f in &self.findings {
            let _ = writeln!(
                s,
                "  [{:?}] {}: {}\n      {}\n      → {}",
                f.severity, f.area, f.title, f.detail, f.recommendation
            );
        }
        let _ = writeln!(s, "\nStatements (by total time):");
        let _ = writeln!(
            s,
            "  {:>7} {:>10} {:>9} {:>9} {:>9} {:>8}  statement",
            "calls", "total ms", "mean ms", "p95 ms", "max ms", "rows"
        );
        for r in &self.statements {
            let _ = writeln!(
                s,
                "  {:>7} {:>10.1} {:>9.3} {:>9.3} {:>9.3} {:>8}  {}",
                r.calls,
                r.total_ms,
                r.mean_ms,
                r.p95_ms,
                r.max_ms,
                r.rows,
                cut(&r.statement, 70)
            );
        }
        let _ = writeln!(s, "\nSlowest statements (by mean) and their plans:");
        for r in &self.slowest {
            let _ = writeln!(s, "  {:.3} ms  {}", r.mean_ms, cut(&r.statement, 80));
            for line in &r.plan {
                let _ = writeln!(s, "      {line}");
            }
        }
        let _ = writeln!(s, "\nIndex advice:");
        if self.index_advice.is_empty() {
            let _ = writeln!(s, "  none: no full scan filtered on an unindexed column");
        }
        for a in &self.index_advice {
            let _ = writeln!(
                s,
                "  {}.{}: {} scans read {} rows, kept {}; `{}`",
                a.table, a.column, a.scans, a.rows_read, a.rows_matched, a.statement
            );
        }
        let _ = writeln!(
            s,
            "\nEstimator: {} (learned {}):",
            self.estimator.in_use,
            if self.estimator.learned_enabled {
                "on"
            } else {
                "off"
            }
        );
        for e in &self.estimator.tables {
            let _ = writeln!(
                s,
                "  {} ({}): {} scans, q-error median {:.2}, p95 {:.2}{}",
                e.table,
                e.estimator,
                e.scans,
                e.median_q_error,
                e.p95_q_error,
                if e.analyzed { "" } else { ", not analyzed" }
            );
        }
        let _ = writeln!(
            s,
            "\nHistory (retention_days {}):",
            if self.retention_days == 0 {
                "0: forever".to_string()
            } else {
                self.retention_days.to_string()
            }
        );
        for h in &self.history {
            let _ = writeln!(
                s,
                "  {}: {} live rows, {} versions ({:.2} per row), {} bytes, oldest {}, retention {} days, would free {}",
                h.table,
                h.live_rows,
                h.versions,
                h.versions_per_row,
                h.bytes,
                h.oldest.as_deref().unwrap_or("-"),
                h.retention_days,
                h.retention_would_free
            );
        }
        let _ = writeln!(s, "\nStorage:");
        if self.storage.is_empty() {
            let _ = writeln!(s, "  in memory");
        }
        for f in &self.storage {
            let _ = writeln!(
                s,
                "  {}: {} bytes on disk ({} live), files per level {:?}, compaction debt {}{}",
                f.family,
                f.disk_bytes,
                f.live_bytes,
                f.files_per_level,
                f.pending_compaction_bytes,
                if f.write_stalled {
                    ", WRITES STALLED"
                } else {
                    ""
                }
            );
        }
        let _ = writeln!(
            s,
            "\nAudit: {}, {} transactions, checkpoints: {}, last verified: {}",
            if self.audit.enabled { "on" } else { "off" },
            self.audit.transactions,
            match (&self.audit.checkpoint_dir, &self.audit.last_checkpoint) {
                (None, _) => "none written".to_string(),
                (Some(d), None) => format!("to {d} (none yet)"),
                (Some(d), Some(f)) => format!("to {d}, newest {f}"),
            },
            match &self.audit.last_verification {
                None => "not since opened".to_string(),
                Some((at, outcome)) => format!("{at}, {outcome}"),
            }
        );
        s
    }

    /// The report as one HTML page, with SVG bars for statement times and history depth.
    pub fn to_html(&self) -> String {
        let bars = |items: &[(String, f64)], unit: &str, why_empty: &str| -> String {
            if items.is_empty() {
                return format!("<p class=\"empty\">nothing to show: {}</p>", esc(why_empty));
            }
            let max = items.iter().map(|(_, v)| *v).fold(0.0, f64::max).max(1e-9);
            let h = 22 * items.len().max(1) + 10;
            let mut svg = format!(
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"760\" height=\"{h}\" \
                 font-family=\"sans-serif\" font-size=\"12\">"
            );
            for (i, (label, v)) in items.iter().enumerate() {
                let y = 5 + 22 * i;
                let w = (v / max * 400.0).max(1.0);
                let _ = write!(
                    svg,
                    "<text x=\"0\" y=\"{}\"><title>{}</title>{}</text><rect x=\"300\" y=\"{y}\" \
                     width=\"{w:.1}\" height=\"16\" fill=\"#4a7bd0\"/><text x=\"{:.1}\" \
                     y=\"{}\">{v:.2} {unit}</text>",
                    y + 12,
                    esc(label),
                    esc(&cut(label, 45)),
                    305.0 + w,
                    y + 12
                );
            }
            svg + "</svg>"
        };
        let mut s = String::from(
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>ChronoDB health \
             report</title><style>body{font-family:sans-serif;margin:2em}td,th{padding:2px \
             8px;text-align:left}.critical{color:#b00}.warning{color:#b60}.info{color:#357}\
             </style></head><body>",
        );
        let _ = write!(
            s,
            "<h1>ChronoDB health report</h1><p>database {} · {}</p><h2>Findings</h2><ul>",
            esc(&self.database),
            esc(&self.generated_at)
        );
        for f in &self.findings {
            let sev = format!("{:?}", f.severity).to_ascii_lowercase();
            let _ = write!(
                s,
                "<li class=\"{sev}\"><b>{sev}</b> {}: {}<br>{}<br>→ {}</li>",
                f.area,
                esc(&f.title),
                esc(&f.detail),
                esc(&f.recommendation)
            );
        }
        s += "</ul><h2>Statements: mean time</h2>";
        let times: Vec<(String, f64)> = self
            .statements
            .iter()
            .map(|r| (r.statement.clone(), r.mean_ms))
            .collect();
        s += &bars(
            &times,
            "ms",
            "no statement has run since the database was opened (statistics are kept in memory)",
        );
        s += "<table><tr><th>calls</th><th>total ms</th><th>mean ms</th><th>p95 ms</th>\
              <th>rows</th><th>statement</th></tr>";
        for r in &self.statements {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{:.1}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td><td>{}</td></tr>",
                r.calls,
                r.total_ms,
                r.mean_ms,
                r.p95_ms,
                r.rows,
                esc(&r.statement)
            );
        }
        s += "</table><h2>Index advice</h2><ul>";
        if self.index_advice.is_empty() {
            s += "<li class=\"empty\">none: no scan since the database was opened read many rows to \
                  keep few on one column</li>";
        }
        for a in &self.index_advice {
            let _ = write!(
                s,
                "<li>{}.{}: {} scans read {} rows, kept {} — <code>{}</code></li>",
                esc(&a.table),
                esc(&a.column),
                a.scans,
                a.rows_read,
                a.rows_matched,
                esc(&a.statement)
            );
        }
        s += "</ul><h2>History: versions per live row</h2>";
        let depth: Vec<(String, f64)> = self
            .history
            .iter()
            .map(|h| (h.table.clone(), h.versions_per_row))
            .collect();
        s += &bars(&depth, "", "no table has rows");
        s += "<h2>History: kilobytes kept, and what retention would free</h2>";
        let kept: Vec<(String, f64, f64)> = self
            .history
            .iter()
            .map(|h| {
                (
                    format!("{} ({} days)", h.table, h.retention_days),
                    h.bytes.saturating_sub(h.retention_would_free_bytes) as f64 / 1024.0,
                    h.retention_would_free_bytes as f64 / 1024.0,
                )
            })
            .collect();
        s += &stacked(
            &kept,
            ["stays", "retention would free"],
            "KiB",
            "no table has history",
        );
        s += "<h2>Estimator: q-error per table (median, p95)</h2>";
        let q: Vec<(String, f64, f64)> = self
            .estimator
            .tables
            .iter()
            .map(|e| {
                (
                    format!("{} ({})", e.table, e.estimator),
                    e.median_q_error,
                    (e.p95_q_error - e.median_q_error).max(0.0),
                )
            })
            .collect();
        s += &stacked(
            &q,
            ["median", "up to p95"],
            "×",
            "no scan has been estimated and checked against its real row count since the \
             database was opened",
        );
        s += "<h2>Storage: megabytes on disk per column family</h2>";
        let disk: Vec<(String, f64, f64)> = self
            .storage
            .iter()
            .map(|f| {
                (
                    f.family.clone(),
                    f.live_bytes.min(f.disk_bytes) as f64 / 1048576.0,
                    f.disk_bytes.saturating_sub(f.live_bytes) as f64 / 1048576.0,
                )
            })
            .collect();
        s += &stacked(
            &disk,
            ["live", "compaction would drop"],
            "MiB",
            "this engine does not report its files (etcd), or nothing is on disk yet",
        );
        s += "<h2>Everything</h2><pre>";
        s += &esc(&self.to_json());
        s + "</pre></body></html>"
    }
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Horizontal SVG bars of two stacked parts per item (`a`, then `b`), with a legend; each
/// bar is labelled with the total.
fn stacked(items: &[(String, f64, f64)], legend: [&str; 2], unit: &str, why_empty: &str) -> String {
    const COLORS: [&str; 2] = ["#4a7bd0", "#e0a030"];
    if items.is_empty() {
        return format!("<p class=\"empty\">nothing to show: {}</p>", esc(why_empty));
    }
    let max = items
        .iter()
        .map(|(_, a, b)| a + b)
        .fold(0.0, f64::max)
        .max(1e-9);
    let h = 22 * items.len() + 34;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"760\" height=\"{h}\" \
         font-family=\"sans-serif\" font-size=\"12\">"
    );
    for (i, (label, a, b)) in items.iter().enumerate() {
        let y = 5 + 22 * i;
        let wa = a / max * 400.0;
        let wb = b / max * 400.0;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{ty}\"><title>{full}</title>{label}</text>\
             <rect x=\"300\" y=\"{y}\" width=\"{wa:.1}\" height=\"16\" fill=\"{c0}\"/>\
             <rect x=\"{xb:.1}\" y=\"{y}\" width=\"{wb:.1}\" height=\"16\" fill=\"{c1}\"/>\
             <text x=\"{xt:.1}\" y=\"{ty}\">{total:.2} {unit}</text>",
            ty = y + 12,
            full = esc(label),
            label = esc(&cut(label, 45)),
            c0 = COLORS[0],
            c1 = COLORS[1],
            xb = 300.0 + wa,
            xt = 305.0 + wa + wb,
            total = a + b,
        );
    }
    let y = 22 * items.len() + 12;
    for (k, (name, color)) in legend.iter().zip(COLORS).enumerate() {
        let x = 300 + 200 * k;
        let _ = write!(
            svg,
            "<rect x=\"{x}\" y=\"{y}\" width=\"12\" height=\"12\" fill=\"{color}\"/>\
             <text x=\"{}\" y=\"{}\">{}</text>",
            x + 16,
            y + 11,
            esc(name)
        );
    }
    svg + "</svg>"
}

fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n).collect();
    out.push('…');
    out
}
