//! Running statements: a [`Database`] shared by [`Session`]s, each with at most one open
//! transaction.
//!
//! Outside `BEGIN … COMMIT` every statement is its own transaction (autocommit); a write
//! conflict then retries the statement on a fresh snapshot a few times before giving up,
//! since re-running one statement is always safe. Inside a transaction a failing
//! statement is undone alone (statement-level atomicity) and the transaction stays open;
//! a conflict at `COMMIT` ends it and nothing of it is written.

use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono_storage::{Operation, Store, Transaction, Value, encoding};
use parking_lot::RwLock;

use crate::ast;
use crate::catalog::{self, TableDef, View};
use crate::cost::{CardinalityEstimator, StatisticsEstimator, StatsRegistry, TableStats};
use crate::error::{Error, Result};
use crate::execution::{self, ExecCtx, NodeStats};
use crate::limits::{Admission, CancelToken, Limits, StatementGuard};
use crate::optimizer;
use crate::parse::{self, Prepared};
use crate::plan::{Access, Plan, ReadAt, Root};
use crate::plan_cache::{CatalogCache, CatalogVersion, PlanCounts, PlanKey};
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
    auto_analyze: RwLock<Option<f64>>,
    analyzing: parking_lot::Mutex<std::collections::HashSet<String>>,
    catalog_version: CatalogVersion,
    catalog_cache: CatalogCache,
    plans: PlanCounts,
    schema_gate: SchemaGate,
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

impl Database {
    /// A database on `store`.
    pub fn new(store: Store) -> Self {
        let db = Self {
            shared: Arc::new(Shared {
                store,
                limits: RwLock::new(Arc::new(Limits::default())),
                admission: Admission::default(),
                time_travel: std::sync::atomic::AtomicBool::new(true),
                parsed: parking_lot::Mutex::new(std::collections::HashMap::new()),
                stats: StatsRegistry::default(),
                estimator: RwLock::new(Arc::new(StatisticsEstimator)),
                auto_analyze: RwLock::new(None),
                analyzing: parking_lot::Mutex::new(std::collections::HashSet::new()),
                catalog_version: CatalogVersion::default(),
                catalog_cache: CatalogCache::default(),
                plans: PlanCounts::default(),
                schema_gate: SchemaGate::default(),
            }),
        };
        db.load_statistics();
        db
    }

    /// Loads the committed statistics of every table (at open, and after each commit that
    /// wrote the catalog: an `ANALYZE`, a `DROP TABLE`, an `ALTER TABLE`).
    fn load_statistics(&self) {
        let txn = self.store().begin();
        let Ok(tables) = catalog::list_tables(View::Current(&txn)) else {
            return;
        };
        let mut all = std::collections::HashMap::new();
        for t in tables {
            if let Ok(Some(raw)) = catalog::get_stats(View::Current(&txn), &t)
                && let Some(stats) = TableStats::decode(&raw)
                && stats.columns.len() == t.columns.len()
            {
                all.insert(t.name.clone(), stats);
            }
        }
        self.shared.stats.replace_all(all);
    }

    /// Replaces the per-statement limits (checked first: an unusable value is an error that
    /// names its key).
    pub fn set_limits(&self, limits: Limits) -> Result<()> {
        limits.validate()?;
        *self.shared.limits.write() = Arc::new(limits);
        Ok(())
    }

    /// The per-statement limits in force.
    pub fn limits(&self) -> Arc<Limits> {
        self.shared.limits.read().clone()
    }

    /// A database in memory.
    pub fn in_memory() -> Self {
        Self::new(Store::in_memory())
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Statistics and feedback.
    pub fn stats(&self) -> &StatsRegistry {
        &self.shared.stats
    }

    /// Replaces the cardinality estimator the planner uses; it is also told of every
    /// executed scan's feedback and of every `ANALYZE`.
    pub fn set_estimator(&self, estimator: Arc<dyn CardinalityEstimator>) {
        self.shared.stats.set_observer(Some(estimator.clone()));
        *self.shared.estimator.write() = estimator;
    }

    /// The cardinality estimator in use.
    pub fn estimator(&self) -> Arc<dyn CardinalityEstimator> {
        self.shared.estimator.read().clone()
    }

    /// Analyzes a table again by itself, in the background, once this fraction of its
    /// analyzed rows has been inserted, updated or deleted (`None`: never; the default).
    pub fn set_auto_analyze(&self, fraction: Option<f64>) {
        *self.shared.auto_analyze.write() = fraction;
    }

    /// Checks, as of now, that a table's indexes and rows agree and its NOT NULL columns
    /// hold no NULL; a disagreement is [`Error::Corruption`] naming it.
    pub fn check_table(&self, table: &str) -> Result<()> {
        let txn = self.store().begin_read_only(u64::MAX);
        let def = catalog::require_table(View::Current(&txn), table)?;
        table::check_indexes(&txn, &def)
    }

    /// Runs `ANALYZE` on one table (statistics, and the estimator's own training), in a
    /// transaction of its own.
    pub fn analyze(&self, table: &str) -> Result<()> {
        let mut txn = self.store().begin();
        let def = catalog::require_table(View::Current(&txn), table)?;
        let estimator = self.estimator();
        self.analyze_table(&mut txn, &def, estimator.as_ref())?;
        self.commit(txn)?;
        Ok(())
    }

    /// Turns `AS OF` / `FOR SYSTEM_TIME` on or off (on by default). Off, a query that uses
    /// them fails with a clear error; history is still kept.
    pub fn set_time_travel(&self, enabled: bool) {
        self.shared.time_travel.store(enabled, Ordering::Relaxed);
    }

    /// Inserts rows (values for `columns`, in that order; other columns get their
    /// defaults) into `table` in one transaction, with every check an INSERT makes.
    pub fn insert_rows(
        &self,
        table: &str,
        columns: &[String],
        rows: Vec<Vec<Value>>,
    ) -> Result<Option<u64>> {
        let mut txn = self.store().begin();
        let def = catalog::require_table(View::Current(&txn), table)?;
        let mut targets = Vec::with_capacity(columns.len());
        for c in columns {
            targets.push(def.column_index(c).ok_or_else(|| {
                Error::NotFound(format!("table {} has no column named {c}", def.name))
            })?);
        }
        let defaults = self.with_planner(&txn, |planner, _| planner.defaults(&def, &targets))?;
        catalog::depend_on_definition(&mut txn, &def);
        let n = execution::write::insert(&mut txn, &def, &targets, &defaults, rows)?;
        self.note_changes(&def.name, n);
        Ok(self.commit(txn)?.map(|i| i.commit_ts))
    }

    /// Parses `sql_text`, or returns the statements parsed from the same text before.
    pub fn parse_cached(&self, sql_text: &str) -> Result<Arc<Vec<Prepared>>> {
        if let Some(p) = self.shared.parsed.lock().get(sql_text) {
            return Ok(p.clone());
        }
        let parsed = Arc::new(parse::parse_with(sql_text, &self.limits())?);
        if sql_text.len() > PARSE_CACHE_MAX_TEXT_BYTES {
            return Ok(parsed);
        }
        let mut cache = self.shared.parsed.lock();
        if cache.len() >= PARSE_CACHE_ENTRIES {
            cache.clear();
        }
        cache.insert(sql_text.to_string(), parsed.clone());
        Ok(parsed)
    }

    /// A new session.
    pub fn session(&self) -> Session {
        Session {
            db: self.clone(),
            txn: None,
            principal: None,
            cancel: CancelToken::new(),
            timeout: None,
        }
    }

    /// Runs `sql` in a new session (autocommit).
    pub fn execute(&self, sql_text: &str) -> Result<Vec<Outcome>> {
        self.session().execute(sql_text)
    }

    /// Every version of the row of `table` with primary key `key`, oldest first.
    pub fn change_history(
        &self,
        table: &str,
        key: &[Value],
    ) -> Result<(Vec<String>, Vec<RowVersion>)> {
        let txn = self.store().begin_read_only(u64::MAX);
        let def = catalog::require_table(View::Current(&txn), table)?;
        if def.primary_key.is_empty() {
            return Err(Error::InvalidInput(format!(
                "table {} has no primary key",
                def.name
            )));
        }
        if key.len() != def.primary_key.len() {
            return Err(Error::InvalidInput(format!(
                "table {} has a primary key of {} columns, {} values given",
                def.name,
                def.primary_key.len(),
                key.len()
            )));
        }
        let mut pk = Vec::with_capacity(key.len());
        for (&c, v) in def.primary_key.iter().zip(key) {
            let col = &def.columns[c];
            pk.push(col.data_type.coerce(v.clone(), &col.name)?);
        }
        let versions =
            self.store()
                .history(def.keyspace, &encoding::encode_key(&pk), txn.read_ts())?;
        let columns = def.columns.iter().map(|c| c.name.clone()).collect();
        let mut out = Vec::with_capacity(versions.len());
        for v in versions {
            out.push(RowVersion {
                commit_ts: v.commit_ts,
                op: v.op,
                row: v
                    .value
                    .as_deref()
                    .map(|raw| def.decode_row(raw))
                    .transpose()?,
            });
        }
        Ok((columns, out))
    }

    /// Binds a SQL condition over `table`'s columns (for change-stream filters).
    pub fn row_predicate(&self, table: &TableDef, text: &str) -> Result<crate::expr::Expr> {
        let ast = parse::parse_expr(text, &self.limits())?;
        let txn = self.store().begin_read_only(u64::MAX);
        self.bind_alone(&txn, &ast, &table_scope(table, &table.name))
    }

    /// Runs `f` with a planner outside any statement (a change-stream filter, a DEFAULT,
    /// a bulk insert), under the default budget.
    fn with_planner<T>(
        &self,
        txn: &Transaction,
        f: impl FnOnce(&mut Planner<'_>, &StatementGuard) -> Result<T>,
    ) -> Result<T> {
        let guard = StatementGuard::new(&self.limits(), CancelToken::new(), None);
        let est = StatisticsEstimator;
        let mut planner = Planner::new(txn, &[], &self.shared.stats, &est, &guard);
        planner.limits = self.limits();
        f(&mut planner, &guard)
    }

    /// Binds an expression outside any statement (a change-stream filter), its subqueries
    /// run.
    fn bind_alone(
        &self,
        txn: &Transaction,
        ast: &ast::Expr,
        scope: &Scope,
    ) -> Result<crate::expr::Expr> {
        let guard = StatementGuard::new(&self.limits(), CancelToken::new(), None);
        let est = StatisticsEstimator;
        let bound = Planner::new(txn, &[], &self.shared.stats, &est, &guard).bind(ast, scope)?;
        execution::instantiate_expr(&bound, &[], txn, &self.shared.stats, &guard)
    }

    /// How many query plans were built and how many kept plans were run again, since the
    /// database was opened.
    pub fn plan_counts(&self) -> (u64, u64) {
        (
            self.shared.plans.built.load(Ordering::Relaxed),
            self.shared.plans.reused.load(Ordering::Relaxed),
        )
    }

    /// The tables, as of now.
    pub fn tables(&self) -> Result<Vec<TableDef>> {
        let txn = self.store().begin_read_only(u64::MAX);
        catalog::list_tables(View::Current(&txn))
    }
}

/// Rows of a query as they are produced, from [`Database::query_iter`]. The query runs on a
/// thread of its own, a bounded number of rows ahead of the reader; dropping the iterator
/// cancels it.
pub struct RowIter {
    columns: Vec<String>,
    rows: std::sync::mpsc::Receiver<Result<Vec<Value>>>,
    cancel: CancelToken,
}

impl RowIter {
    /// The result's column names.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }
}

impl Iterator for RowIter {
    type Item = Result<Vec<Value>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rows.recv().ok()
    }
}

impl Drop for RowIter {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Rows a [`RowIter`]'s query runs ahead of its reader.
const ROW_ITER_AHEAD: usize = 1024;

/// Feeds a [`RowIter`]: columns first, then rows; a reader that went away stops the query.
struct ChannelSink {
    columns: Option<std::sync::mpsc::SyncSender<Vec<String>>>,
    rows: std::sync::mpsc::SyncSender<Result<Vec<Value>>>,
}

impl RowSink for ChannelSink {
    fn columns(&mut self, columns: &[String]) -> Result<()> {
        match self.columns.take() {
            Some(tx) => tx
                .send(columns.to_vec())
                .map_err(|_| Error::Cancelled("the reader went away".into())),
            None => Err(Error::InvalidInput(
                "query_iter runs one query per call".into(),
            )),
        }
    }

    fn row(&mut self, row: Vec<Value>) -> Result<()> {
        self.rows
            .send(Ok(row))
            .map_err(|_| Error::Cancelled("the reader went away".into()))
    }
}

impl Database {
    /// Runs one query and returns its rows as they are produced, for results too large to
    /// collect (the collecting call is [`Session::execute_with_params`]). Errors before the
    /// first row (syntax, unknown table) are returned here; later ones end the iteration.
    pub fn query_iter(&self, sql_text: &str, params: &[Value]) -> Result<RowIter> {
        let prepared = self.parse_cached(sql_text)?;
        let [p] = prepared.as_slice() else {
            return Err(Error::InvalidInput(
                "query_iter takes exactly one statement".into(),
            ));
        };
        if !matches!(p.statement(), ast::Statement::Query(_)) {
            return Err(Error::InvalidInput("query_iter takes a query".into()));
        }
        let (columns_tx, columns_rx) = std::sync::mpsc::sync_channel(1);
        let (rows_tx, rows_rx) = std::sync::mpsc::sync_channel(ROW_ITER_AHEAD);
        let cancel = CancelToken::new();
        let mut session = self.session();
        session.set_cancel_token(cancel.clone());
        let (p, params) = (p.clone(), params.to_vec());
        std::thread::Builder::new()
            .name("chronodb-query".into())
            .spawn(move || {
                let mut sink = ChannelSink {
                    columns: Some(columns_tx),
                    rows: rows_tx,
                };
                if let Err(e) = session.run_streaming(&p, &params, &mut sink) {
                    let _ = sink.rows.send(Err(e));
                }
            })
            .map_err(|e| Error::Unavailable(format!("cannot start a query thread: {e}")))?;
        match columns_rx.recv() {
            Ok(columns) => Ok(RowIter {
                columns,
                rows: rows_rx,
                cancel,
            }),
            // The query failed before producing its columns: its error is waiting.
            Err(_) => Err(match rows_rx.recv() {
                Ok(Err(e)) => e,
                _ => Error::Unavailable("the query thread ended without a result".into()),
            }),
        }
    }
}

/// A connection-like handle: runs statements, holds an open transaction.
pub struct Session {
    db: Database,
    txn: Option<Transaction>,
    principal: Option<String>,
    cancel: CancelToken,
    timeout: Option<std::time::Duration>,
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

    fn run_inner(
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
                return Ok(Outcome::Done {
                    tag: "BEGIN".into(),
                    commit_ts: None,
                });
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
        if let Some(txn) = self.txn.as_mut() {
            let _gate = db.shared.schema_gate.enter(role, guard)?;
            let save = txn.savepoint();
            let r = db.statement(txn, p, params, guard, sink);
            if r.is_err() {
                txn.rollback_to(save);
            }
            return r;
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
                        rows => rows,
                    });
                }
                Err(chrono_storage::Error::Conflict(_)) if attempt < AUTOCOMMIT_RETRIES => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Database {
    fn planner<'a>(&'a self, txn: &'a Transaction, s: &Stmt<'a>) -> Planner<'a> {
        self.planner_with_key(txn, s, self.plan_key(txn))
    }

    /// A planner for `txn`, reading table definitions from the catalog cache when `key`
    /// says `txn` sees the newest catalog.
    fn planner_with_key<'a>(
        &'a self,
        txn: &'a Transaction,
        s: &Stmt<'a>,
        key: Option<PlanKey>,
    ) -> Planner<'a> {
        let mut planner = Planner::new(txn, s.params, &self.shared.stats, s.est, s.guard);
        planner.time_travel = self.shared.time_travel.load(Ordering::Relaxed);
        planner.limits = self.limits();
        planner.catalog_cache = key.map(|key| (&self.shared.catalog_cache, key.catalog));
        planner
    }

    fn optimizer_env<'a>(&'a self, s: &Stmt<'a>) -> optimizer::Env<'a> {
        optimizer::Env {
            stats: &self.shared.stats,
            estimator: s.est,
            params: s.params,
        }
    }

    /// Commits `txn`; a commit that writes the catalog moves the catalog version, so
    /// kept plans are planned again.
    fn commit(
        &self,
        txn: Transaction,
    ) -> chrono_storage::Result<Option<chrono_storage::CommitInfo>> {
        if !txn.writes_keyspace(catalog::CATALOG_KEYSPACE) {
            return txn.commit();
        }
        let change = self.shared.catalog_version.change();
        let info = txn.commit()?;
        change.committed(
            info.as_ref()
                .map_or_else(|| self.store().current_ts(), |i| i.commit_ts),
        );
        // Statistics live in the catalog: the committed ones are now the ones to use.
        self.load_statistics();
        Ok(info)
    }

    /// What a plan kept for `txn` must have been built against, or `None` when `txn` may
    /// see another catalog than the newest (it wrote the catalog, or reads an older one).
    fn plan_key(&self, txn: &Transaction) -> Option<PlanKey> {
        if txn.writes_keyspace(catalog::CATALOG_KEYSPACE) {
            return None;
        }
        let catalog = self.shared.catalog_version.generation_for(txn.read_ts())?;
        Some(PlanKey {
            catalog,
            stats: self.shared.stats.version(),
            time_travel: self.shared.time_travel.load(Ordering::Relaxed),
        })
    }

    /// The statement's plan: the one kept with the statement when it is still current,
    /// else a new one from `build` (kept when it can be reused).
    fn plan<'a>(
        &'a self,
        txn: &'a Transaction,
        s: &Stmt<'a>,
        build: impl FnOnce(&mut Planner<'a>) -> Result<Plan>,
    ) -> Result<Arc<Plan>> {
        let key = self.plan_key(txn);
        if let Some(key) = key
            && let Some(plan) = s.p.plan.get(key)
        {
            self.shared.plans.reused.fetch_add(1, Ordering::Relaxed);
            return Ok(plan);
        }
        self.shared.plans.built.fetch_add(1, Ordering::Relaxed);
        let mut planner = self.planner_with_key(txn, s, key);
        let planned = build(&mut planner)?;
        let plan = Arc::new(optimizer::optimize(planned, &self.optimizer_env(s))?);
        if let Some(key) = key
            && planner.is_reusable()
            && self.plan_key(txn) == Some(key)
        {
            s.p.plan.put(key, plan.clone());
        }
        Ok(plan)
    }

    fn statement(
        &self,
        txn: &mut Transaction,
        p: &Prepared,
        params: &[Value],
        guard: &StatementGuard,
        sink: Option<&mut (dyn RowSink + '_)>,
    ) -> Result<Outcome> {
        let estimator = self.shared.estimator.read().clone();
        let stmt = Stmt {
            p,
            params,
            est: estimator.as_ref(),
            guard,
        };
        let s = &stmt;
        match p.statement() {
            ast::Statement::Query(q) => {
                let planned = self.plan(txn, s, |p| p.plan_query(q))?;
                let plan =
                    execution::instantiate(&planned, params, txn, &self.shared.stats, guard)?;
                let columns: Vec<String> = plan.columns.iter().map(|c| c.name.clone()).collect();
                let rows = match sink {
                    None => execution::collect(&plan, txn, &self.shared.stats, guard)?,
                    Some(sink) => {
                        sink.columns(&columns)?;
                        for row in execution::rows(&plan, txn, &self.shared.stats, guard)? {
                            sink.row(row?)?;
                            guard.restart_deadline();
                        }
                        Vec::new()
                    }
                };
                Ok(Outcome::Rows { columns, rows })
            }
            ast::Statement::Explain {
                analyze,
                optimizers,
                statement,
            } => {
                let plan = match self.planner(txn, s).plan_statement(statement)? {
                    Root::Query(plan) | Root::Write(plan) => plan,
                    Root::Schema(change) => {
                        return Ok(Outcome::Rows {
                            columns: ["node", "estimated_rows", "estimator"]
                                .map(String::from)
                                .to_vec(),
                            rows: vec![vec![
                                Value::Text(change.describe()),
                                Value::Null,
                                Value::Text("none".into()),
                            ]],
                        });
                    }
                    Root::Analyze(_) => {
                        return Err(Error::Unsupported("EXPLAIN of ANALYZE".into()));
                    }
                };
                let env = self.optimizer_env(s);
                if *optimizers {
                    return Ok(explain_stepwise(optimizer::optimize_stepwise(plan, &env)?));
                }
                let plan = optimizer::optimize(plan, &env)?;
                Ok(self.explain(&plan, txn, params, *analyze, guard)?)
            }
            ast::Statement::Insert(ins) => {
                let plan = self.plan(txn, s, |p| p.plan_insert(ins))?;
                self.write(txn, &plan, s)
            }
            ast::Statement::Update(upd) => {
                let plan = self.plan(txn, s, |p| p.plan_update(upd))?;
                self.write(txn, &plan, s)
            }
            ast::Statement::Delete(del) => {
                let plan = self.plan(txn, s, |p| p.plan_delete(del))?;
                self.write(txn, &plan, s)
            }
            other => match self.planner(txn, s).plan_statement(other)? {
                Root::Schema(change) => {
                    txn.record_statement(p.text());
                    let tag = execution::schema::run(&change, txn, guard)?;
                    Ok(Outcome::Done {
                        tag: tag.into(),
                        commit_ts: None,
                    })
                }
                Root::Analyze(tables) => {
                    for name in tables {
                        let def = catalog::require_table(View::Current(txn), &name)?;
                        self.analyze_table(txn, &def, estimator.as_ref())?;
                    }
                    Ok(Outcome::Done {
                        tag: "ANALYZE".into(),
                        commit_ts: None,
                    })
                }
                // Queries and writes took the arms above, with their kept plans.
                Root::Query(_) | Root::Write(_) => {
                    Err(Error::Unsupported(format!("{} here", p.text())))
                }
            },
        }
    }

    /// Runs a write plan: fills in its parameters and subqueries, writes, and counts the
    /// changed rows toward auto-analyze.
    fn write(&self, txn: &mut Transaction, planned: &Plan, s: &Stmt<'_>) -> Result<Outcome> {
        txn.record_statement(s.p.text());
        let stats = &self.shared.stats;
        let plan = execution::instantiate(planned, s.params, txn, stats, s.guard)?;
        let (table, n) = execution::write::run(&plan, txn, stats, s.guard)?;
        self.note_changes(&table.name, n);
        Ok(Outcome::Affected {
            affected: n,
            commit_ts: None,
        })
    }

    /// Reads every row of `def`, computes its statistics and writes them in `txn` (they are
    /// used once it commits), and hands the rows to the estimator.
    fn analyze_table(
        &self,
        txn: &mut Transaction,
        def: &TableDef,
        estimator: &dyn CardinalityEstimator,
    ) -> Result<()> {
        let rows: Vec<Vec<Value>> = table::scan(txn, def, ReadAt::Current, &Access::Full)?
            .map(|r| r.map(|(_, row)| row))
            .collect::<Result<_>>()?;
        let stats = TableStats::compute(def.columns.len(), &rows);
        catalog::put_stats(txn, def, stats.encode())?;
        estimator.analyzed(def, &rows, &stats);
        Ok(())
    }

    /// Counts rows changed in a table; past the auto-analyze fraction, analyzes the table
    /// again in the background (once at a time per table).
    fn note_changes(&self, table: &str, rows: u64) {
        let Some(fraction) = self.shared.stats.note_changes(table, rows) else {
            return;
        };
        let threshold = *self.shared.auto_analyze.read();
        let Some(threshold) = threshold else { return };
        if fraction < threshold {
            return;
        }
        let key = table.to_ascii_lowercase();
        if !self.shared.analyzing.lock().insert(key.clone()) {
            return;
        }
        let weak = Arc::downgrade(&self.shared);
        std::thread::spawn(move || {
            let Some(shared) = weak.upgrade() else { return };
            let db = Database { shared };
            if let Err(e) = db.analyze(&key) {
                tracing::warn!(table = %key, error = %e, "auto-analyze failed");
            }
            db.shared.analyzing.lock().remove(&key);
        });
    }

    fn explain(
        &self,
        plan: &Plan,
        txn: &Transaction,
        params: &[Value],
        analyze: bool,
        guard: &StatementGuard,
    ) -> Result<Outcome> {
        // EXPLAIN shows subqueries as plans; EXPLAIN ANALYZE runs them first and shows
        // the plan that ran, with their results in place.
        let plan = if analyze {
            execution::instantiate(plan, params, txn, &self.shared.stats, guard)?
        } else {
            std::borrow::Cow::Borrowed(plan)
        };
        let plan = &*plan;
        let nodes = plan.flatten();
        let mut columns = vec!["node".to_string(), "estimated_rows".to_string()];
        let mut stats = Vec::new();
        if analyze {
            stats = (0..nodes.len())
                .map(|_| std::rc::Rc::new(NodeStats::default()))
                .collect();
            let mut ctx = ExecCtx {
                txn,
                stats: &self.shared.stats,
                analyze: Some(stats.clone()),
                guard,
            };
            let mut id = 0;
            for r in execution::build(plan, &mut ctx, &mut id)? {
                r?;
            }
            columns.extend(["actual_rows".to_string(), "time_ms".to_string()]);
        }
        columns.push("estimator".into());
        let rows = nodes
            .iter()
            .enumerate()
            .map(|(i, (depth, node))| {
                let mut row = vec![
                    Value::Text(format!("{}{}", "  ".repeat(*depth), node.describe())),
                    Value::Int(node.est_rows.round() as i64),
                ];
                if let Some(s) = stats.get(i) {
                    row.push(Value::Int(s.rows.get() as i64));
                    row.push(Value::Float((s.nanos.get() as f64 / 1e3).round() / 1e3));
                }
                row.push(Value::Text(node.estimator.into()));
                row
            })
            .collect();
        Ok(Outcome::Rows { columns, rows })
    }
}

/// `EXPLAIN (OPTIMIZERS)`: the plan as the planner built it and after each pass, one row
/// per node with the pass's name.
fn explain_stepwise(steps: Vec<(&'static str, Plan)>) -> Outcome {
    let columns = ["pass", "node", "estimated_rows", "estimator"]
        .map(String::from)
        .to_vec();
    let mut rows = Vec::new();
    for (pass, plan) in &steps {
        for (depth, node) in plan.flatten() {
            rows.push(vec![
                Value::Text((*pass).into()),
                Value::Text(format!("{}{}", "  ".repeat(depth), node.describe())),
                Value::Int(node.est_rows.round() as i64),
                Value::Text(node.estimator.into()),
            ]);
        }
    }
    Outcome::Rows { columns, rows }
}

/// What a statement runs with: its parse, its parameters and the estimator in use.
struct Stmt<'a> {
    p: &'a Prepared,
    params: &'a [Value],
    est: &'a dyn CardinalityEstimator,
    guard: &'a StatementGuard,
}
