//! Statistics and feedback shared by the sessions of a database: the statistics of each
//! table (loaded from the catalog), a version that changes when they do (plans built on
//! older statistics are built again), and the estimated/actual rows of executed scans
//! that learned estimators train on.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use chrono_storage::{Keyspace, Store};
use parking_lot::{Mutex, RwLock};

use super::{CardinalityEstimator, Estimate, StatisticsEstimator, TableStats};
use crate::catalog::{self, Snapshot, TableDef};
use crate::expr::Expr;

/// Past statistics looked up for `AS OF` scans, kept for reuse (then cleared).
const PAST_LOOKUPS_KEPT: usize = 256;

/// One executed scan: what was estimated and what came out.
#[derive(Debug, Clone)]
pub struct Feedback {
    /// The table's name.
    pub table: String,
    /// The table's id (its key space): what the estimator keys its models by.
    pub keyspace: Keyspace,
    /// The filter, as text.
    pub predicate: String,
    /// The filter, bound (column positions of the table).
    pub filter: Option<Expr>,
    /// Estimated rows.
    pub estimated: f64,
    /// Actual rows.
    pub actual: u64,
    /// The estimator that made the estimate.
    pub estimator: &'static str,
    /// Whether the scan read the current state (not `AS OF` a past time).
    pub current: bool,
    /// Rows the scan read from storage before its filter (`actual` of them passed).
    pub rows_read: u64,
    /// Whether it read the whole table (no key or index bounded it).
    pub full_scan: bool,
}

/// Statistics and feedback shared by the sessions of a database.
pub struct StatsRegistry {
    tables: RwLock<HashMap<Keyspace, Arc<TableStats>>>,
    feedback: Mutex<VecDeque<Feedback>>,
    feedback_capacity: usize,
    observer: RwLock<Option<Arc<dyn CardinalityEstimator>>>,
    changed: Mutex<HashMap<Keyspace, u64>>,
    version: std::sync::atomic::AtomicU64,
    /// The store whose catalog history holds the statistics of earlier `ANALYZE`s.
    history: RwLock<Option<Store>>,
    past: Mutex<HashMap<(Keyspace, u64), PastStats>>,
}

/// The statistics found for a table as of a time (`None`: none were written before it).
type PastStats = Option<Arc<TableStats>>;

/// The statistics a scan is estimated with ([`StatsRegistry::for_scan`]), looked up once
/// for every estimate of the scan.
pub struct ScanStats {
    /// The table's statistics for the time the scan reads (`None`: never analyzed).
    pub stats: Option<Arc<TableStats>>,
    /// Whether they are earlier ones than the current.
    past: bool,
}

impl ScanStats {
    /// The estimate of the scan with `filter`: `estimator`'s, or for a past state the
    /// statistics estimator's (a learned model knows the current state only).
    pub fn estimate(
        &self,
        estimator: &dyn CardinalityEstimator,
        table: &TableDef,
        filter: Option<&Expr>,
    ) -> Estimate {
        if self.past {
            StatisticsEstimator.estimate_scan(table, self.stats.as_deref(), filter)
        } else {
            estimator.estimate_scan(table, self.stats.as_deref(), filter)
        }
    }

    /// What one fetch by key costs on the table, in scanned rows: as `ANALYZE` measured
    /// it, or [`FETCH_COST`](super::FETCH_COST) when it did not.
    pub fn fetch_cost(&self) -> f64 {
        self.stats
            .as_deref()
            .map(|s| s.fetch_cost)
            .filter(|c| c.is_finite() && *c > 0.0)
            .unwrap_or(super::FETCH_COST)
    }
}

impl Default for StatsRegistry {
    fn default() -> Self {
        Self {
            tables: RwLock::new(HashMap::new()),
            feedback: Mutex::new(VecDeque::new()),
            feedback_capacity: 10_000,
            observer: RwLock::new(None),
            changed: Mutex::new(HashMap::new()),
            version: std::sync::atomic::AtomicU64::new(0),
            history: RwLock::new(None),
            past: Mutex::new(HashMap::new()),
        }
    }
}

impl StatsRegistry {
    /// The statistics of a table (by its id), if analyzed.
    pub fn table(&self, table: Keyspace) -> Option<Arc<TableStats>> {
        self.tables.read().get(&table).cloned()
    }

    /// Moves whenever a table's statistics change: plans kept from before may no longer be
    /// the best.
    pub fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Replaces every table's statistics (those committed now), keeping the change counts
    /// of tables whose statistics stayed the same.
    pub fn replace_all(&self, tables: HashMap<Keyspace, TableStats>) {
        let tables: HashMap<Keyspace, Arc<TableStats>> = tables
            .into_iter()
            .map(|(table, stats)| (table, Arc::new(stats)))
            .collect();
        let mut current = self.tables.write();
        {
            let mut changed = self.changed.lock();
            changed.retain(|table, _| match (current.get(table), tables.get(table)) {
                (Some(a), Some(b)) => **a == **b,
                _ => false,
            });
        }
        *current = tables;
        self.past.lock().clear();
        self.version
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// Reads earlier statistics from `store`'s catalog history (for [`Self::for_scan`]).
    pub fn set_history(&self, store: Store) {
        *self.history.write() = Some(store);
    }

    /// The statistics a scan of `table` as of `at` (microseconds; `None`: now) is estimated
    /// with: the current ones when they describe a state at or before `at`; otherwise those
    /// the last `ANALYZE` before `at` wrote, read from the catalog's history (kept for the
    /// next lookups); the current ones when there were none then (or that history was
    /// collected).
    pub fn for_scan(&self, table: &TableDef, at: Option<u64>) -> ScanStats {
        let current = self.table(table.keyspace);
        let now = |stats| ScanStats { stats, past: false };
        let Some(at) = at else { return now(current) };
        if current.as_ref().is_none_or(|s| s.analyzed_at <= at) {
            return now(current);
        }
        let key = (table.keyspace, at);
        let kept = self.past.lock().get(&key).cloned();
        let past = kept.unwrap_or_else(|| {
            let read = self.history.read().as_ref().and_then(|store| {
                let txn = store.begin_read_only(at);
                let raw = catalog::get_stats(Snapshot::Transaction(&txn), table).ok()??;
                TableStats::decode(&raw)
                    .filter(|s| s.columns.len() == table.columns.len())
                    .map(Arc::new)
            });
            let mut kept = self.past.lock();
            if kept.len() >= PAST_LOOKUPS_KEPT {
                kept.clear();
            }
            kept.insert(key, read.clone());
            read
        });
        match past {
            Some(stats) => ScanStats {
                stats: Some(stats),
                past: true,
            },
            None => now(current),
        }
    }

    /// Counts `rows` inserted, updated or deleted in a table since its last `ANALYZE`, and
    /// returns the rows changed so far and the row count analyzed (`None` when the table
    /// was never analyzed).
    pub fn note_changes(&self, table: Keyspace, rows: u64) -> Option<(u64, u64)> {
        let analyzed = self.table(table)?.rows;
        let mut changed = self.changed.lock();
        let n = changed.entry(table).or_insert(0);
        *n += rows;
        Some((*n, analyzed))
    }

    /// The estimator told of every feedback record.
    pub fn set_observer(&self, observer: Option<Arc<dyn CardinalityEstimator>>) {
        *self.observer.write() = observer;
    }

    /// Records feedback, dropping the oldest beyond capacity, and tells the observer.
    pub fn record(&self, fb: Feedback) {
        if let Some(o) = self.observer.read().as_ref() {
            o.observe(&fb);
        }
        let mut q = self.feedback.lock();
        if q.len() == self.feedback_capacity {
            q.pop_front();
        }
        q.push_back(fb);
    }

    /// The feedback recorded so far (oldest first).
    pub fn feedback(&self) -> Vec<Feedback> {
        self.feedback.lock().iter().cloned().collect()
    }
}
