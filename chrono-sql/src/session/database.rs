//! The [`Database`]'s shared state and what it offers outside statements: settings,
//! statistics, the parse cache, bulk inserts, change history, change-stream filters.

use super::*;

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
                statements: Default::default(),
                stats_stale: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        if db.store().engine().shared() {
            db.store()
                .add_observer(Arc::new(ForeignCommits(Arc::downgrade(&db.shared))));
        }
        db.shared.stats.set_history(db.store().clone());
        db.load_statistics();
        // Until the last definition change is known, no time is known to read the
        // current definitions: AS OF plans are not kept.
        let defined = catalog::definitions_changed_at(db.store()).unwrap_or(u64::MAX);
        db.shared.catalog_version.opened(defined);
        if let Err(e) = db.apply_history_purges() {
            tracing::warn!(error = %e, "applying the recorded DELETE HISTORY statements failed");
        }
        db
    }

    /// Applies every recorded `DELETE HISTORY` the store's horizons do not include yet (one
    /// whose commit was not followed by its application: a crash in between). At open, and
    /// whenever history is collected.
    pub fn apply_history_purges(&self) -> Result<()> {
        let txn = self.store().begin_read_only(u64::MAX);
        let purges = catalog::history_purges(Snapshot::Transaction(&txn))?;
        drop(txn);
        let horizons = self.store().horizons();
        for purge in purges {
            if purge
                .keyspaces
                .iter()
                .any(|&ks| horizons.of(ks) < purge.before)
            {
                pipeline::apply_purge(self.store(), &purge)?;
            }
        }
        Ok(())
    }

    /// Loads the committed statistics of every table (at open, and after each commit that
    /// wrote the catalog: an `ANALYZE`, a `DROP TABLE`, an `ALTER TABLE`).
    pub(super) fn load_statistics(&self) {
        let txn = self.store().begin();
        let Ok(tables) = catalog::list_tables(Snapshot::Transaction(&txn)) else {
            return;
        };
        let mut all = std::collections::HashMap::new();
        for t in tables {
            if let Ok(Some(raw)) = catalog::get_stats(Snapshot::Transaction(&txn), &t)
                && let Some(stats) = TableStats::decode(&raw)
                && stats.columns.len() == t.columns.len()
            {
                all.insert(t.keyspace, stats);
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

    /// Analyzes a table again by itself, in the background, once enough of its rows have
    /// been inserted, updated or deleted (`None`: never; the default).
    pub fn set_auto_analyze(&self, auto: Option<AutoAnalyze>) {
        *self.shared.auto_analyze.write() = auto;
    }

    /// Checks, as of now, that a table's indexes and rows agree and its NOT NULL columns
    /// hold no NULL; a disagreement is [`Error::Corruption`] naming it.
    pub fn check_table(&self, table: &str) -> Result<()> {
        let txn = self.store().begin_read_only(u64::MAX);
        let def = catalog::require_table(Snapshot::Transaction(&txn), table)?;
        table::check_indexes(&txn, &def)
    }

    /// Runs `ANALYZE` on one table (statistics, and the estimator's own training), in a
    /// transaction of its own.
    pub fn analyze(&self, table: &str) -> Result<()> {
        let mut txn = self.store().begin();
        let def = catalog::require_table(Snapshot::Transaction(&txn), table)?;
        let estimator = self.estimator();
        let guard = StatementGuard::new(&self.limits(), crate::CancelToken::new(), None);
        self.analyze_table(&mut txn, &def, estimator, &guard)?;
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
        self.insert_in(&mut txn, table, columns, rows)?;
        Ok(self.commit(txn)?.map(|i| i.commit_ts))
    }

    /// [`Self::insert_rows`] into an open transaction: the rows written.
    pub(super) fn insert_in(
        &self,
        txn: &mut Transaction,
        table: &str,
        columns: &[String],
        rows: Vec<Vec<Value>>,
    ) -> Result<u64> {
        let def = catalog::require_table(Snapshot::Transaction(txn), table)?;
        let mut targets = Vec::with_capacity(columns.len());
        for c in columns {
            targets.push(def.column_index(c).ok_or_else(|| {
                Error::NotFound(format!("table {} has no column named {c}", def.name))
            })?);
        }
        let defaults = self.with_planner(txn, |planner, _| planner.defaults(&def, &targets))?;
        catalog::depend_on_definition(txn, &def);
        let n = execution::write::insert(txn, &def, &targets, &defaults, rows)?;
        self.note_changes(&def, n);
        Ok(n)
    }

    /// True when `p` is a query whose kept plan, current for the newest catalog and
    /// statistics, reads at most one row by primary key and holds no subquery: its cost is
    /// a key lookup whatever the table's size. A server may run such a statement on the
    /// thread that received it instead of handing it to a pool of blocking threads.
    pub fn is_kept_point_read(&self, p: &Prepared) -> bool {
        if !p.is_query() {
            return false;
        }
        let Some(key) = self.plan_key_at(self.shared.store.current_ts()) else {
            return false;
        };
        p.plan
            .get(key)
            .is_some_and(|kept| !kept.subqueries && kept.plan.is_point_read())
    }

    /// The statements parsed from `sql_text` before, if the parse cache holds them (no
    /// parsing).
    pub fn parsed_before(&self, sql_text: &str) -> Option<Arc<Vec<Prepared>>> {
        self.shared.parsed.lock().get(sql_text).cloned()
    }

    /// Parses `sql_text`, or returns the statements parsed from the same text before.
    pub fn parse_cached(&self, sql_text: &str) -> Result<Arc<Vec<Prepared>>> {
        if let Some(p) = self.parsed_before(sql_text) {
            return Ok(p);
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
            savepoints: Vec::new(),
            principal: None,
            cancel: CancelToken::new(),
            timeout: None,
            recorded: true,
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
        let def = catalog::require_table(Snapshot::Transaction(&txn), table)?;
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
        self.row_predicate_within(table, text, None)
    }

    /// [`Self::row_predicate`], its subqueries stopped once `timeout` has passed (a
    /// subscription's filter runs under the server's statement timeout).
    pub fn row_predicate_within(
        &self,
        table: &TableDef,
        text: &str,
        timeout: Option<std::time::Duration>,
    ) -> Result<crate::expr::Expr> {
        let ast = parse::parse_expr(text, &self.limits())?;
        let txn = self.store().begin_read_only(u64::MAX);
        self.bind_alone(&txn, &ast, &table_scope(table, &table.name), timeout)
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
        timeout: Option<std::time::Duration>,
    ) -> Result<crate::expr::Expr> {
        let guard = StatementGuard::new(&self.limits(), CancelToken::new(), timeout);
        let est = StatisticsEstimator;
        let bound = Planner::new(txn, &[], &self.shared.stats, &est, &guard).bind(ast, scope)?;
        execution::instantiate_expr(&bound, &[], txn, &self.shared.stats, &guard)
    }

    /// The statement statistics (per normalized statement: calls, times, rows, errors).
    pub fn statement_stats(&self) -> &crate::statements::StatementStats {
        &self.shared.statements
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
        catalog::list_tables(Snapshot::Transaction(&txn))
    }
}
