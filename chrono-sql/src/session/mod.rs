//! Running statements: a [`Database`] shared by [`Session`]s, each with at most one open
//! transaction.
//!
//! Outside `BEGIN … COMMIT` every statement is its own transaction (autocommit); a write
//! conflict then retries the statement on a fresh snapshot a few times before giving up,
//! since re-running one statement is always safe. Inside a transaction a failing
//! statement is undone alone (statement-level atomicity) and the transaction stays open;
//! a conflict at `COMMIT` ends it and nothing of it is written.
//!
//! | file | job |
//! |---|---|
//! | `mod.rs` | [`Session`]: transaction control, admission, autocommit and its retries |
//! | `pipeline.rs` | one statement: kept plan or planner → optimizer, then execution and commit |
//! | `database.rs` | [`Database`]'s settings, statistics, parse cache, bulk insert, history |
//! | `rows.rs` | [`RowIter`]: a query's rows as an iterator, from a thread of its own |

mod database;
mod describe;
mod pipeline;
mod rows;

pub use describe::Description;
pub use rows::RowIter;

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono_storage::{Operation, Store, Transaction, Value, encoding};
use parking_lot::RwLock;

use crate::ast;
use crate::catalog::{self, Snapshot, TableDef};
use crate::cost::{CardinalityEstimator, StatisticsEstimator, StatsRegistry, TableStats};
use crate::error::{Error, Result};
use crate::execution::{self, ExecCtx, NodeStats};
use crate::limits::{Admission, CancelToken, Limits, StatementGuard};
use crate::optimizer;
use crate::parse::{self, Prepared};
use crate::plan::{Access, Plan, ReadAt, Root};
use crate::plan_cache::{CatalogCache, CatalogVersion, PastRead, PlanCounts, PlanKey};
use crate::planner::{Planner, Scope, table_scope};
use crate::schema_gate::SchemaGate;
use crate::table;

/// What one statement produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A query's result.
    Rows {
        /// Column names.
        columns: Vec<String>,
        /// Rows.
        rows: Vec<Vec<Value>>,
        /// A write's RETURNING rows: the commit timestamp once committed (`None` for a
        /// query, and inside an open transaction).
        commit_ts: Option<u64>,
    },
    /// A write: rows affected and, once committed, the commit timestamp (microseconds).
    Affected {
        /// Rows inserted, updated or deleted.
        affected: u64,
        /// The commit timestamp (`None` inside an open transaction, or when nothing changed).
        commit_ts: Option<u64>,
    },
    /// DDL or transaction control.
    Done {
        /// What was done (`CREATE TABLE`, `COMMIT`…).
        tag: String,
        /// The commit timestamp, when this committed something.
        commit_ts: Option<u64>,
    },
}

/// When a table is analyzed again by itself ([`Database::set_auto_analyze`]): once the rows
/// inserted, updated or deleted since its last `ANALYZE` reach `min_rows` plus `fraction` of
/// the rows it had then. The fixed part keeps small tables (a one-row counter updated by
/// every transaction) from being analyzed, replanned and retrained again and again.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AutoAnalyze {
    /// The fraction of the analyzed row count.
    pub fraction: f64,
    /// Rows changed before the fraction counts at all.
    pub min_rows: u64,
}

impl AutoAnalyze {
    /// Whether `changed` rows since an `ANALYZE` that counted `analyzed` make it due again.
    pub fn due(&self, changed: u64, analyzed: u64) -> bool {
        changed as f64 >= self.min_rows as f64 + self.fraction * analyzed as f64
    }
}

/// Parsed statements by their text, so a statement sent again is not parsed again.
const PARSE_CACHE_ENTRIES: usize = 1024;
/// Longer texts are not kept: statements sent again and again are short (parameters carry
/// the values), and the cache must stay small whatever clients send.
const PARSE_CACHE_MAX_TEXT_BYTES: usize = 8 << 10;

struct Shared {
    store: Store,
    limits: RwLock<Arc<Limits>>,
    admission: Admission,
    time_travel: std::sync::atomic::AtomicBool,
    parsed: parking_lot::Mutex<std::collections::HashMap<String, Arc<Vec<Prepared>>>>,
    stats: StatsRegistry,
    estimator: RwLock<Arc<dyn CardinalityEstimator>>,
    auto_analyze: RwLock<Option<AutoAnalyze>>,
    analyzing: parking_lot::Mutex<std::collections::HashSet<String>>,
    catalog_version: CatalogVersion,
    catalog_cache: CatalogCache,
    plans: PlanCounts,
    schema_gate: SchemaGate,
    statements: crate::statements::StatementStats,
    /// Another server committed (shared engine): statistics are read again before the
    /// next statement.
    stats_stale: std::sync::atomic::AtomicBool,
}

/// On a shared engine, hears of other servers' commits: the catalog may have changed
/// (plans and decoded definitions are keyed by a new generation) and so may statistics.
struct ForeignCommits(std::sync::Weak<Shared>);

impl chrono_storage::CommitObserver for ForeignCommits {
    fn on_commit(
        &self,
        _commit: &chrono_storage::Commit,
        _batch: &mut chrono_storage::WriteBatch,
    ) -> chrono_storage::Result<()> {
        Ok(())
    }

    fn foreign_commits(&self, upto_ts: u64) {
        if let Some(shared) = self.0.upgrade() {
            shared.catalog_version.foreign(upto_ts);
            shared.stats_stale.store(true, Ordering::Release);
        }
    }
}

/// A SQL database on a [`Store`]. Cheap to clone.
#[derive(Clone)]
pub struct Database {
    shared: Arc<Shared>,
}

/// One version of a row, from [`Database::change_history`].
#[derive(Debug, Clone, PartialEq)]
pub struct RowVersion {
    /// Commit timestamp (microseconds).
    pub commit_ts: u64,
    /// INSERT, UPDATE or DELETE.
    pub op: Operation,
    /// The row after the change (`None` for a delete).
    pub row: Option<Vec<Value>>,
}

const AUTOCOMMIT_RETRIES: usize = 5;

/// A connection-like handle: runs statements, holds an open transaction.
pub struct Session {
    db: Database,
    txn: Option<Transaction>,
    /// The open transaction's savepoints, oldest first (a name may repeat: the newest
    /// counts). Meaningless once the transaction ends; `BEGIN` clears them.
    savepoints: Vec<(String, chrono_storage::Savepoint)>,
    principal: Option<String>,
    cancel: CancelToken,
    timeout: Option<std::time::Duration>,
    /// Whether its statements count in the statement statistics.
    recorded: bool,
}

/// Where a streamed query's rows go, as they are produced.
pub trait RowSink {
    /// Called once per query, before its rows.
    fn columns(&mut self, columns: &[String]) -> Result<()>;
    /// One row; an error stops the statement (a reader that went away).
    fn row(&mut self, row: Vec<Value>) -> Result<()>;
}

impl Session {
    /// The database.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// True inside BEGIN … COMMIT.
    pub fn in_transaction(&self) -> bool {
        self.txn.is_some()
    }

    /// The token that cancels this session's statements (a new one replaces it, e.g. per
    /// call of a server).
    pub fn set_cancel_token(&mut self, token: CancelToken) {
        self.cancel = token;
    }

    /// Stops each statement that runs longer than `timeout` (`None`: no limit; the default).
    /// A streamed query ([`execute_streaming`](Self::execute_streaming)) is stopped when it
    /// runs that long without handing out a row.
    pub fn set_statement_timeout(&mut self, timeout: Option<std::time::Duration>) {
        self.timeout = timeout;
    }

    /// Whether this session's statements count in the statement statistics (on by default;
    /// off for a tool's own statements, such as the health report's EXPLAINs).
    pub fn set_statement_stats(&mut self, recorded: bool) {
        self.recorded = recorded;
    }

    /// Names who runs this session's commits (seen by commit observers).
    pub fn set_principal(&mut self, principal: Option<String>) {
        self.principal = principal;
    }

    /// Runs every statement of `sql_text`; stops at the first error.
    pub fn execute(&mut self, sql_text: &str) -> Result<Vec<Outcome>> {
        self.execute_with_params(sql_text, &[])
    }

    /// Runs every statement of `sql_text` with positional parameters (`?` or `$1`…).
    pub fn execute_with_params(
        &mut self,
        sql_text: &str,
        params: &[Value],
    ) -> Result<Vec<Outcome>> {
        let mut out = Vec::new();
        for p in self.db.parse_cached(sql_text)?.iter() {
            out.push(self.run(p, params)?);
        }
        Ok(out)
    }

    /// Like [`execute_with_params`](Self::execute_with_params), but each query's rows go
    /// to `sink` as they are produced instead of into the returned [`Outcome::Rows`]
    /// (which then holds the columns only).
    pub fn execute_streaming(
        &mut self,
        sql_text: &str,
        params: &[Value],
        sink: &mut dyn RowSink,
    ) -> Result<Vec<Outcome>> {
        let mut out = Vec::new();
        for p in self.db.parse_cached(sql_text)?.iter() {
            out.push(self.run_inner(p, params, Some(&mut *sink))?);
        }
        Ok(out)
    }

    /// Runs one prepared statement.
    pub fn run(&mut self, p: &Prepared, params: &[Value]) -> Result<Outcome> {
        self.run_inner(p, params, None)
    }

    /// Runs one prepared statement; a query's rows go to `sink` as they are produced.
    pub fn run_streaming(
        &mut self,
        p: &Prepared,
        params: &[Value],
        sink: &mut dyn RowSink,
    ) -> Result<Outcome> {
        self.run_inner(p, params, Some(sink))
    }

    /// Runs a statement and records it in the statement statistics.
    fn run_inner(
        &mut self,
        p: &Prepared,
        params: &[Value],
        sink: Option<&mut (dyn RowSink + '_)>,
    ) -> Result<Outcome> {
        if !self.recorded || !self.db.shared.statements.is_enabled() {
            return self.run_unrecorded(p, params, sink);
        }
        let began = std::time::Instant::now();
        let result = self.run_unrecorded(p, params, sink);
        let rows = match &result {
            Ok(Outcome::Rows { rows, .. }) => rows.len() as u64,
            Ok(Outcome::Affected { affected, .. }) => *affected,
            _ => 0,
        };
        self.db.shared.statements.record(
            p.normalized(),
            p.text(),
            began.elapsed(),
            rows,
            result.is_err(),
        );
        result
    }

    /// Inserts rows (values for `columns`, in that order) into `table` inside the open
    /// transaction, with every check an INSERT makes: the bulk path of `COPY … FROM STDIN`.
    /// A batch that fails leaves the transaction as it was before the batch.
    pub fn insert_rows(
        &mut self,
        table: &str,
        columns: &[String],
        rows: Vec<Vec<Value>>,
    ) -> Result<u64> {
        let db = self.db.clone();
        let txn = self.txn.as_mut().ok_or_else(|| {
            Error::TransactionState("rows are inserted in batches inside a transaction".into())
        })?;
        atomically(txn, |txn| db.insert_in(txn, table, columns, rows))
    }

    /// `SAVEPOINT`, `RELEASE` and `ROLLBACK TO` in the open transaction (PostgreSQL's and
    /// SQLite's meaning: a name may be used again, the newest counts; rolling back to one
    /// keeps it and forgets those after it; releasing one forgets it and those after it).
    fn savepoint(&mut self, statement: &ast::Statement, name: &str) -> Result<Outcome> {
        let Some(txn) = self.txn.as_mut() else {
            return Err(Error::TransactionState(format!(
                "{} can only be used in a transaction (BEGIN first)",
                match statement {
                    ast::Statement::Savepoint(_) => "SAVEPOINT",
                    ast::Statement::Release(_) => "RELEASE SAVEPOINT",
                    _ => "ROLLBACK TO SAVEPOINT",
                }
            )));
        };
        let tag = match statement {
            ast::Statement::Savepoint(_) => {
                self.savepoints.push((name.to_string(), txn.savepoint()));
                "SAVEPOINT"
            }
            _ => {
                let Some(at) = self
                    .savepoints
                    .iter()
                    .rposition(|(n, _)| n.eq_ignore_ascii_case(name))
                else {
                    return Err(Error::NotFound(format!("no such savepoint: {name}")));
                };
                if matches!(statement, ast::Statement::Release(_)) {
                    self.savepoints.truncate(at);
                    "RELEASE"
                } else {
                    self.savepoints.truncate(at + 1);
                    txn.rollback_to(self.savepoints[at].1);
                    "ROLLBACK TO"
                }
            }
        };
        Ok(Outcome::Done {
            tag: tag.into(),
            commit_ts: None,
        })
    }

    fn run_unrecorded(
        &mut self,
        p: &Prepared,
        params: &[Value],
        sink: Option<&mut (dyn RowSink + '_)>,
    ) -> Result<Outcome> {
        if params.len() < p.param_count {
            return Err(Error::InvalidInput(format!(
                "the statement has {} parameters but {} values were given",
                p.param_count,
                params.len()
            )));
        }
        let store = self.db.store().clone();
        match p.statement() {
            ast::Statement::Begin => {
                if self.txn.is_some() {
                    return Err(Error::TransactionState(
                        "a transaction is already open".into(),
                    ));
                }
                let mut t = store.begin();
                t.set_principal(self.principal.clone());
                self.txn = Some(t);
                self.savepoints.clear();
                return Ok(Outcome::Done {
                    tag: "BEGIN".into(),
                    commit_ts: None,
                });
            }
            ast::Statement::Savepoint(name)
            | ast::Statement::Release(name)
            | ast::Statement::RollbackTo(name) => {
                return self.savepoint(p.statement(), name);
            }
            ast::Statement::Commit => {
                let t = self
                    .txn
                    .take()
                    .ok_or_else(|| Error::TransactionState("no transaction is open".into()))?;
                let info = self.db.commit(t)?;
                return Ok(Outcome::Done {
                    tag: "COMMIT".into(),
                    commit_ts: info.map(|i| i.commit_ts),
                });
            }
            ast::Statement::Rollback => {
                let t = self
                    .txn
                    .take()
                    .ok_or_else(|| Error::TransactionState("no transaction is open".into()))?;
                t.rollback();
                return Ok(Outcome::Done {
                    tag: "ROLLBACK".into(),
                    commit_ts: None,
                });
            }
            _ => {}
        }
        let db = self.db.clone();
        let limits = db.limits();
        let guard = Rc::new(StatementGuard::new(
            &limits,
            self.cancel.clone(),
            self.timeout,
        ));
        let _permit = db.shared.admission.admit(&limits, &guard)?;
        let _entered = guard.enter();
        let result = self.run_admitted(&db, p, params, &guard, sink);
        crate::limits::release_memory_after(&guard);
        result
    }

    fn run_admitted(
        &mut self,
        db: &Database,
        p: &Prepared,
        params: &[Value],
        guard: &StatementGuard,
        mut sink: Option<&mut (dyn RowSink + '_)>,
    ) -> Result<Outcome> {
        let role = p.schema_role();
        if self.txn.is_some() && matches!(p.statement(), ast::Statement::DeleteHistory { .. }) {
            return Err(Error::TransactionState(
                "DELETE HISTORY runs outside a transaction (it cannot be rolled back)".into(),
            ));
        }
        if let Some(txn) = self.txn.as_mut() {
            let _gate = db.shared.schema_gate.enter(role, guard)?;
            return atomically(txn, |txn| db.statement(txn, p, params, guard, sink));
        }
        let store = db.store().clone();
        // Held from the snapshot to the commit (see `schema_gate`).
        let _gate = db.shared.schema_gate.enter(role, guard)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut txn = store.begin();
            txn.set_principal(self.principal.clone());
            let outcome = db.statement(&mut txn, p, params, guard, sink.as_deref_mut())?;
            match db.commit(txn) {
                Ok(info) => {
                    let ts = info.map(|i| i.commit_ts);
                    return Ok(match outcome {
                        Outcome::Affected { affected, .. } => Outcome::Affected {
                            affected,
                            commit_ts: ts,
                        },
                        Outcome::Done { tag, .. } => Outcome::Done { tag, commit_ts: ts },
                        Outcome::Rows { columns, rows, .. } => Outcome::Rows {
                            columns,
                            rows,
                            commit_ts: ts,
                        },
                    });
                }
                Err(chrono_storage::Error::Conflict(_)) if attempt < AUTOCOMMIT_RETRIES => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Runs `f` in an open transaction; if it fails, the transaction is as it was before.
fn atomically<T>(
    txn: &mut Transaction,
    f: impl FnOnce(&mut Transaction) -> Result<T>,
) -> Result<T> {
    let save = txn.savepoint();
    let r = f(txn);
    if r.is_err() {
        txn.rollback_to(save);
    }
    r
}

/// What a statement runs with: its parse, its parameters and the estimator in use.
/// A plan ready to run, kept or just built.
struct Planned {
    plan: Arc<crate::plan::Plan>,
    /// Whether it holds subqueries (filled in per execution before it runs).
    subqueries: bool,
}

struct Stmt<'a> {
    p: &'a Prepared,
    params: &'a [Value],
    est: &'a dyn CardinalityEstimator,
    guard: &'a StatementGuard,
}
