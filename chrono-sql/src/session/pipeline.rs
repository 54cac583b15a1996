//! One statement's way through the engine, for [`Database`]: its kept plan or a new one
//! (planner → optimizer), then execution — rows to the caller or a sink, writes, schema
//! changes, ANALYZE, EXPLAIN — and the commit that moves the catalog version.

use super::*;

impl Database {
    pub(super) fn planner<'a>(&'a self, txn: &'a Transaction, s: &Stmt<'a>) -> Planner<'a> {
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
    pub(super) fn commit(
        &self,
        txn: Transaction,
    ) -> chrono_storage::Result<Option<chrono_storage::CommitInfo>> {
        if !txn.writes_keyspace(catalog::CATALOG_KEYSPACE) {
            return txn.commit();
        }
        let change = self
            .shared
            .catalog_version
            .change(catalog::writes_definitions(&txn));
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
        self.plan_key_at(txn.read_ts())
    }

    /// The key of plans built for a snapshot at `read_ts` that wrote no catalog entry.
    pub(super) fn plan_key_at(&self, read_ts: u64) -> Option<PlanKey> {
        let catalog = self.shared.catalog_version.generation_for(read_ts)?;
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
    ) -> Result<Planned> {
        let key = self.plan_key(txn);
        if let Some(key) = key
            && let Some(kept) = s.p.plan.get(key)
            && self.definitions_current(&kept.past, s.params)
        {
            self.shared.plans.reused.fetch_add(1, Ordering::Relaxed);
            return Ok(Planned {
                plan: kept.plan.clone(),
                subqueries: kept.subqueries,
            });
        }
        self.shared.plans.built.fetch_add(1, Ordering::Relaxed);
        let mut planner = self.planner_with_key(txn, s, key);
        let planned = build(&mut planner)?;
        let plan = Arc::new(optimizer::optimize(planned, &self.optimizer_env(s))?);
        let past = planner.past_reads();
        let subqueries = plan.has_subqueries();
        if let Some(key) = key
            && planner.is_reusable()
            && self.plan_key(txn) == Some(key)
            && self.definitions_current(&past, s.params)
        {
            s.p.plan.put(key, plan.clone(), past, subqueries);
        }
        Ok(Planned { plan, subqueries })
    }

    /// The plan to run: a plan with subqueries copied with their results (and the
    /// parameters) in place; any other as it is, its parameters bound by the executor.
    fn fill<'p>(
        &self,
        planned: &'p Planned,
        txn: &Transaction,
        params: &[Value],
        guard: &StatementGuard,
    ) -> Result<std::borrow::Cow<'p, Plan>> {
        if planned.subqueries {
            execution::instantiate(&planned.plan, params, txn, &self.shared.stats, guard)
        } else {
            Ok(std::borrow::Cow::Borrowed(&planned.plan))
        }
    }

    /// True when the table definitions as of every time in `past` (with this execution's
    /// `params`) are the current ones: no definition changed since the earliest.
    fn definitions_current(&self, past: &[PastRead], params: &[Value]) -> bool {
        if past.is_empty() {
            return true;
        }
        let since = self.shared.catalog_version.definitions_at();
        past.iter().all(|p| match *p {
            PastRead::At(ts) => ts >= since,
            // Only the time: whether it is in the past is checked when the plan is filled in.
            PastRead::Param(i) => crate::planner::time_micros(
                &crate::parse::timetravel::TimeLiteral::Param(i),
                params,
            )
            .is_ok_and(|ts| ts >= since),
        })
    }

    pub(super) fn statement(
        &self,
        txn: &mut Transaction,
        p: &Prepared,
        params: &[Value],
        guard: &StatementGuard,
        sink: Option<&mut (dyn RowSink + '_)>,
    ) -> Result<Outcome> {
        if self.shared.stats_stale.swap(false, Ordering::AcqRel) {
            self.load_statistics();
        }
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
                let plan = self.fill(&planned, txn, params, guard)?;
                let columns: Vec<String> = plan.columns.iter().map(|c| c.name.clone()).collect();
                let rows = match sink {
                    None => execution::collect(&plan, params, txn, &self.shared.stats, guard)?,
                    Some(sink) => {
                        sink.columns(&columns)?;
                        for row in execution::rows(&plan, params, txn, &self.shared.stats, guard)? {
                            sink.row(row?)?;
                            guard.restart_deadline();
                        }
                        Vec::new()
                    }
                };
                Ok(Outcome::Rows {
                    columns,
                    rows,
                    commit_ts: None,
                })
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
                            columns: explain_columns(false, false)
                                .iter()
                                .map(|c| c.to_string())
                                .collect(),
                            rows: vec![vec![
                                Value::Text(change.describe()),
                                Value::Null,
                                Value::Text("none".into()),
                            ]],
                            commit_ts: None,
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
                stream_returned(self.write(txn, &plan, s)?, sink)
            }
            ast::Statement::Update(upd) => {
                let plan = self.plan(txn, s, |p| p.plan_update(upd))?;
                stream_returned(self.write(txn, &plan, s)?, sink)
            }
            ast::Statement::Delete(del) => {
                let plan = self.plan(txn, s, |p| p.plan_delete(del))?;
                stream_returned(self.write(txn, &plan, s)?, sink)
            }
            ast::Statement::DeleteHistory { table, before } => {
                self.delete_history(txn, p, table, before.as_ref(), params)
            }
            ast::Statement::Reindex { target } => {
                // Indexes are written with their rows: there is nothing to rebuild. The name,
                // when given, must be a table or an index, as in SQLite.
                if let Some(name) = target {
                    let tables = catalog::list_tables(Snapshot::Transaction(txn))?;
                    let known = tables.iter().any(|t| {
                        t.name.eq_ignore_ascii_case(name)
                            || t.indexes.iter().any(|i| i.name.eq_ignore_ascii_case(name))
                    });
                    if !known {
                        return Err(Error::NotFound(format!("no such table or index: {name}")));
                    }
                }
                Ok(Outcome::Done {
                    tag: "REINDEX".into(),
                    commit_ts: None,
                })
            }
            other => match self.planner(txn, s).plan_statement(other)? {
                Root::Schema(change) => {
                    txn.record_statement(p.text());
                    let tag = execution::schema::run(&change, txn, guard, &estimator)?;
                    Ok(Outcome::Done {
                        tag: tag.into(),
                        commit_ts: None,
                    })
                }
                Root::Analyze(tables) => {
                    for name in tables {
                        let def = catalog::require_table(Snapshot::Transaction(txn), &name)?;
                        self.analyze_table(txn, &def, estimator.clone(), guard)?;
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
    fn write(&self, txn: &mut Transaction, planned: &Planned, s: &Stmt<'_>) -> Result<Outcome> {
        txn.record_statement(s.p.text());
        let stats = &self.shared.stats;
        let plan = self.fill(planned, txn, s.params, s.guard)?;
        let written = execution::write::run(&plan, s.params, txn, stats, s.guard)?;
        self.note_changes(written.table, written.affected);
        if !plan.columns.is_empty() {
            // RETURNING: the rows, as a query gives them.
            return Ok(Outcome::Rows {
                columns: plan.columns.iter().map(|c| c.name.clone()).collect(),
                rows: written.returned,
                commit_ts: None,
            });
        }
        Ok(Outcome::Affected {
            affected: written.affected,
            commit_ts: None,
        })
    }

    /// `DELETE HISTORY FROM table [BEFORE SYSTEM_TIME before]`: records the purge in the
    /// catalog (audited, with the principal), and once that commits moves the horizons of
    /// the table's key spaces to `before` (at most the transaction's snapshot: the newest
    /// commit) and compacts them, so the versions no read at or after it needs leave the
    /// disk. Refused while a transaction, pin or change stream reads before `before`.
    fn delete_history(
        &self,
        txn: &mut Transaction,
        p: &Prepared,
        table: &str,
        before: Option<&crate::parse::timetravel::TimeLiteral>,
        params: &[Value],
    ) -> Result<Outcome> {
        let def = catalog::require_table(Snapshot::Transaction(txn), table)?;
        let before = match before {
            Some(lit) => crate::planner::time_micros(lit, params)?.min(txn.read_ts()),
            None => txn.read_ts(),
        };
        let store = self.store().clone();
        // This transaction reads at or after `before`: an older reader is another's.
        if let Some(oldest) = store.oldest_reader()
            && oldest < before
        {
            return Err(Error::InvalidInput(format!(
                "cannot delete the history of {} before {}: it is still read as of {} (an open \
                 transaction, a pin or a change stream); try again when that read ends",
                def.name,
                chrono_storage::Timestamp::from_micros(before),
                chrono_storage::Timestamp::from_micros(oldest)
            )));
        }
        txn.record_statement(p.text());
        let purge = catalog::put_history_purge(txn, &def, before)?;
        txn.after_commit(move || {
            if let Err(e) = apply_purge(&store, &purge) {
                // The purge is recorded: it is applied again at the next collection or open.
                tracing::warn!(table = %purge.table, error = %e, "applying DELETE HISTORY failed");
            }
        });
        Ok(Outcome::Done {
            tag: "DELETE HISTORY".into(),
            commit_ts: None,
        })
    }

    /// Reads every row of `def` once, keeping a uniform sample of at most
    /// `limits.analyze_sample_rows` (reservoir sampling, seeded by the table so that the
    /// same data gives the same statistics); computes the statistics from it and writes them
    /// in `txn` (they are used once it commits), and hands the sample to the estimator,
    /// which learns from it after the commit (in the background: `ANALYZE` returns once the
    /// statistics are written). Reports the rows read to the statement's cancel token.
    pub(super) fn analyze_table(
        &self,
        txn: &mut Transaction,
        def: &TableDef,
        estimator: Arc<dyn CardinalityEstimator>,
        guard: &StatementGuard,
    ) -> Result<()> {
        use rand::SeedableRng;
        let keep = guard.analyze_sample_rows();
        // The rows it had when last analyzed: what the progress counts toward.
        let expected = self
            .shared
            .stats
            .table(def.keyspace)
            .map(|s| s.rows)
            .unwrap_or(0);
        let mut rng = rand::rngs::StdRng::seed_from_u64(u64::from(def.keyspace));
        let mut sample: Vec<Vec<Value>> = Vec::new();
        // Keys of random rows, to time fetches by key after the scan.
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut seen = 0u64;
        for found in table::scan(txn, def, ReadAt::Current, &Access::Full)? {
            let (key, row) = found?;
            seen += 1;
            guard.tick()?;
            reservoir(&mut sample, keep, row, seen, &mut rng);
            reservoir(&mut keys, FETCH_PROBES, key, seen, &mut rng);
            if seen.is_multiple_of(4096) {
                guard.report_progress(seen, expected.max(seen));
            }
        }
        guard.report_progress(seen, seen);
        let mut stats = TableStats::from_sample(def.columns.len(), &sample, seen);
        stats.analyzed_at = txn.read_ts();
        stats.fetch_cost = fetch_cost(txn, def, keys, seen, &mut rng)?;
        catalog::put_stats(txn, def, stats.encode())?;
        // The estimator learns from these rows only once they are committed: an ANALYZE in a
        // transaction that rolls back teaches it nothing.
        let def = def.clone();
        txn.after_commit(move || estimator.analyzed(&def, sample, &stats));
        Ok(())
    }

    /// Counts rows changed in a table; past the auto-analyze threshold, analyzes the table
    /// again in the background (once at a time per table).
    pub(super) fn note_changes(&self, table: &TableDef, rows: u64) {
        let Some((changed, analyzed)) = self.shared.stats.note_changes(table.keyspace, rows) else {
            return;
        };
        let Some(auto) = *self.shared.auto_analyze.read() else {
            return;
        };
        if !auto.due(changed, analyzed) {
            return;
        }
        let key = table.name.to_ascii_lowercase();
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
        let columns = explain_columns(analyze, false)
            .iter()
            .map(|c| c.to_string())
            .collect();
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
                params,
                work: Default::default(),
            };
            let mut id = 0;
            for r in execution::build(plan, &mut ctx, &mut id)? {
                r?;
            }
        }
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
        Ok(Outcome::Rows {
            columns,
            rows,
            commit_ts: None,
        })
    }
}

/// `EXPLAIN (OPTIMIZERS)`: the plan as the planner built it and after each pass, one row
/// per node with the pass's name.
/// The columns of EXPLAIN's rows: with ANALYZE the measured rows and time, with the
/// optimizer's passes (`optimizers`) the pass first.
pub(super) fn explain_columns(analyze: bool, optimizers: bool) -> &'static [&'static str] {
    match (optimizers, analyze) {
        (true, _) => &["pass", "node", "estimated_rows", "estimator"],
        (false, true) => &[
            "node",
            "estimated_rows",
            "actual_rows",
            "time_ms",
            "estimator",
        ],
        (false, false) => &["node", "estimated_rows", "estimator"],
    }
}

fn explain_stepwise(steps: Vec<(&'static str, Plan)>) -> Outcome {
    let columns = explain_columns(false, true)
        .iter()
        .map(|c| c.to_string())
        .collect();
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
    Outcome::Rows {
        columns,
        rows,
        commit_ts: None,
    }
}

/// Moves the horizons of a purge's key spaces and compacts their versions.
pub(super) fn apply_purge(
    store: &chrono_storage::Store,
    purge: &catalog::HistoryPurge,
) -> Result<()> {
    let before = store.horizons();
    let after = store.advance_horizons(&purge.horizons(), false)?;
    for &ks in &purge.keyspaces {
        if after.of(ks) > before.of(ks) {
            let start = chrono_storage::encoding::versions_prefix(ks);
            let end = chrono_storage::encoding::versions_prefix(ks.saturating_add(1));
            store
                .engine()
                .compact_range(chrono_storage::ColumnFamily::Versions, &start, &end)?;
        }
    }
    Ok(())
}

/// A write's RETURNING rows handed to `sink` when the statement streams (as a query's are);
/// any other outcome as it is.
fn stream_returned(outcome: Outcome, sink: Option<&mut (dyn RowSink + '_)>) -> Result<Outcome> {
    match (outcome, sink) {
        (
            Outcome::Rows {
                columns,
                rows,
                commit_ts,
            },
            Some(sink),
        ) => {
            sink.columns(&columns)?;
            for row in rows {
                sink.row(row)?;
            }
            Ok(Outcome::Rows {
                columns,
                rows: Vec::new(),
                commit_ts,
            })
        }
        (outcome, _) => Ok(outcome),
    }
}

/// Keeps in `kept` a uniform sample of at most `cap` of the items offered so far (Vitter's
/// algorithm R): `item` is the `seen`-th.
fn reservoir<T>(kept: &mut Vec<T>, cap: usize, item: T, seen: u64, rng: &mut rand::rngs::StdRng) {
    use rand::Rng;
    if kept.len() < cap {
        kept.push(item);
    } else if let Some(slot) = usize::try_from(rng.gen_range(0..seen))
        .ok()
        .and_then(|j| kept.get_mut(j))
    {
        *slot = item;
    }
}

/// Rows whose fetch by key `ANALYZE` times, at most.
const FETCH_PROBES: usize = 1000;

/// What one fetch by key costs in rows of a sequential scan, on this table: up to
/// [`SCAN_PROBE_ROWS`] rows scanned as a filtered full scan reads them (the filter tested
/// on each row's stored bytes), then `keys` (random rows' keys) fetched in a random order,
/// as an index lookup fetches the rows its entries name. 0 (not measured) for a table too
/// small to tell.
fn fetch_cost(
    txn: &Transaction,
    def: &TableDef,
    mut keys: Vec<Vec<u8>>,
    rows: u64,
    rng: &mut rand::rngs::StdRng,
) -> Result<f64> {
    use rand::seq::SliceRandom;
    use std::borrow::Cow;
    if keys.len() < 100 || rows < 1000 || def.columns.is_empty() {
        return Ok(0.0);
    }
    // A condition few rows pass, on the first column: the scan's cost is the stepping and
    // the test, as for most filtered scans.
    let test = crate::expr::Expr::IsNull(Box::new(crate::expr::Expr::Column(0)), false);
    let filter = table::RowFilter::with(Some(Cow::Owned(test)), None);
    let began = std::time::Instant::now();
    let mut scanned = 0u64;
    let pass = table::rows_where(
        txn,
        def,
        ReadAt::Current,
        &Access::Full,
        Some(filter),
        table::ScanSplit::NEVER,
    )?;
    for row in pass.take(SCAN_PROBE_ROWS) {
        std::hint::black_box(row?);
        scanned += 1;
    }
    let scan = began.elapsed();
    keys.shuffle(rng);
    let probes = keys.len();
    let began = std::time::Instant::now();
    let found = table::fetch_rows(txn, def, keys)?;
    let fetched = began.elapsed();
    if found * 2 < probes || scan.is_zero() || scanned == 0 {
        return Ok(0.0);
    }
    let per_fetch = fetched.as_secs_f64() / found as f64;
    let per_row = scan.as_secs_f64() / scanned as f64;
    Ok((per_fetch / per_row).clamp(1.0, 1000.0))
}

/// Rows `ANALYZE` scans again to time a scan's row.
const SCAN_PROBE_ROWS: usize = 50_000;
