//! Plans kept with their prepared statements, and the versions that say when one is stale.
//!
//! A query's plan holds parameter slots and subquery nodes, not values (the executor binds
//! parameters per execution, node by node, without copying the plan; a plan with subqueries
//! is copied with their results in place, [`crate::execution::instantiate`]), so the plan
//! built at a statement's first execution serves the next ones. It is kept in the [`crate::Prepared`] statement (shared by the parse cache,
//! so a text sent again finds it too) under a [`PlanKey`]:
//!
//! ```text
//! PlanKey = (catalog generation, statistics version, time travel enabled)
//! ```
//!
//! - The **catalog generation** moves when a transaction that wrote the catalog commits. While
//!   such a commit is in flight, and for a transaction whose snapshot is older than the last
//!   catalog change (it sees an older catalog), or that wrote the catalog itself, there is no
//!   key: the statement is planned afresh and the plan not kept.
//! - The **statistics version** moves when `ANALYZE` (or auto-analyze) stores new statistics:
//!   estimates, and so join order and access paths, may change.
//!
//! A plan that read a parameter's value while planning (`LIMIT ?`) or reads a version range
//! (`FOR SYSTEM_TIME BETWEEN …`) is never kept. Checking the key is a mutex and three
//! compares: no catalog read, no estimate, no planning.
//!
//! A query `AS OF` a time is planned with the table definitions in force then. Its plan is
//! kept, and run again, only while those are the current definitions: every time it reads
//! ([`PastRead`]: written in the statement, or a parameter's value at each execution) is
//! at or after the last change of any table definition ([`CatalogVersion::definitions_at`];
//! statistics do not count). `AS OF $1` is then planned once and serves every time asked
//! about since the last DDL; earlier times are planned afresh, with the definitions of
//! their day.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use parking_lot::Mutex;

use crate::catalog::TableDef;
use crate::error::Result;
use crate::plan::Plan;

/// What a kept plan was built against; equal keys mean it is still the plan planning
/// would build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanKey {
    /// The catalog generation.
    pub catalog: u64,
    /// The statistics version.
    pub stats: u64,
    /// Whether time travel was enabled.
    pub time_travel: bool,
}

/// A time in the past a plan reads its tables at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PastRead {
    /// A time written in the statement (microseconds).
    At(u64),
    /// The time parameter `$n` (1-based) gives at each execution.
    Param(usize),
}

/// A kept plan.
#[derive(Debug)]
pub struct CachedPlan {
    /// What it was built against.
    pub key: PlanKey,
    /// The plan, with parameter slots.
    pub plan: Arc<Plan>,
    /// The past times it reads (`AS OF`): it serves an execution only while each is at or
    /// after the last table-definition change.
    pub past: Vec<PastRead>,
    /// Whether it holds subqueries ([`Plan::has_subqueries`]): such a plan is copied with
    /// their results in place before each execution; any other runs as it is kept.
    pub subqueries: bool,
}

/// The place a prepared statement keeps its plan.
#[derive(Debug, Default)]
pub struct PlanSlot(Mutex<Option<Arc<CachedPlan>>>);

impl PlanSlot {
    /// The kept plan, if it was built against `key`.
    pub fn get(&self, key: PlanKey) -> Option<Arc<CachedPlan>> {
        let kept = self.0.lock();
        kept.as_ref().filter(|c| c.key == key).cloned()
    }

    /// Keeps `plan`, built against `key`, reading the past at `past`.
    pub fn put(&self, key: PlanKey, plan: Arc<Plan>, past: Vec<PastRead>, subqueries: bool) {
        *self.0.lock() = Some(Arc::new(CachedPlan {
            key,
            plan,
            past,
            subqueries,
        }));
    }
}

/// Decoded table definitions of one catalog generation, so a statement that is planned
/// (not run from a kept plan) does not decode its tables' catalog entries again.
#[derive(Debug, Default)]
pub struct CatalogCache(Mutex<(u64, HashMap<String, Arc<TableDef>>)>);

impl CatalogCache {
    /// The definition of `name` in catalog `generation`: cached, or `load`ed and kept.
    /// Only a transaction that sees exactly that generation may ask (see
    /// [`CatalogVersion::generation_for`]).
    pub fn table(
        &self,
        generation: u64,
        name: &str,
        load: impl FnOnce() -> Result<TableDef>,
    ) -> Result<Arc<TableDef>> {
        let key = name.to_ascii_lowercase();
        {
            let kept = self.0.lock();
            if kept.0 == generation
                && let Some(def) = kept.1.get(&key)
            {
                return Ok(def.clone());
            }
        }
        let def = Arc::new(load()?);
        let mut kept = self.0.lock();
        if kept.0 < generation {
            *kept = (generation, HashMap::new());
        }
        if kept.0 == generation {
            kept.1.insert(key, def.clone());
        }
        Ok(def)
    }
}

/// Query plans built and kept plans run again.
#[derive(Debug, Default)]
pub struct PlanCounts {
    /// Plans built.
    pub built: AtomicU64,
    /// Kept plans run again.
    pub reused: AtomicU64,
}

#[derive(Debug, Default)]
struct CatalogState {
    generation: u64,
    /// Catalog-writing commits in flight.
    changing: u32,
    /// The commit timestamp of the last catalog change.
    changed_at: u64,
    /// The commit timestamp of the last table-definition change (a catalog change that
    /// was not only statistics).
    definitions_at: u64,
}

/// The catalog's version, moved by every commit that wrote it.
#[derive(Debug, Default)]
pub struct CatalogVersion(Mutex<CatalogState>);

impl CatalogVersion {
    /// The generation a transaction reading at `read_ts` may key plans by, or `None` when
    /// its view of the catalog may differ from the newest one.
    pub fn generation_for(&self, read_ts: u64) -> Option<u64> {
        let state = self.0.lock();
        (state.changing == 0 && read_ts >= state.changed_at).then_some(state.generation)
    }

    /// The commit timestamp of the last table-definition change this process knows of:
    /// the definitions as of any later time are the current ones.
    pub fn definitions_at(&self) -> u64 {
        self.0.lock().definitions_at
    }

    /// The database was opened with its last table-definition change at `ts`.
    pub fn opened(&self, ts: u64) {
        let mut state = self.0.lock();
        state.definitions_at = state.definitions_at.max(ts);
    }

    /// Other servers committed up to `upto_ts` (a shared engine): what they did to the
    /// catalog is not known, so plans and definitions kept so far are not used again, and
    /// transactions reading before `upto_ts` key nothing.
    pub fn foreign(&self, upto_ts: u64) {
        let mut state = self.0.lock();
        state.generation += 1;
        state.changed_at = state.changed_at.max(upto_ts);
        state.definitions_at = state.definitions_at.max(upto_ts);
    }

    /// Marks a catalog-writing commit as in flight until the returned guard is finished
    /// (or dropped, when the commit failed); `definitions` says whether it changes a table
    /// definition.
    pub fn change(&self, definitions: bool) -> CatalogChange<'_> {
        self.0.lock().changing += 1;
        CatalogChange {
            version: self,
            commit_ts: None,
            definitions,
        }
    }
}

/// A catalog-writing commit in flight.
pub struct CatalogChange<'a> {
    version: &'a CatalogVersion,
    commit_ts: Option<u64>,
    definitions: bool,
}

impl CatalogChange<'_> {
    /// The commit succeeded at `commit_ts`.
    pub fn committed(mut self, commit_ts: u64) {
        self.commit_ts = Some(commit_ts);
    }
}

impl Drop for CatalogChange<'_> {
    fn drop(&mut self) {
        let mut state = self.version.0.lock();
        state.changing -= 1;
        state.generation += 1;
        if let Some(ts) = self.commit_ts {
            state.changed_at = state.changed_at.max(ts);
            if self.definitions {
                state.definitions_at = state.definitions_at.max(ts);
            }
        }
    }
}
