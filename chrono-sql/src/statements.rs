//! Statement statistics, pg_stat_statements' way: per normalized statement (literals
//! replaced by `?`, a VALUES list by its first row), how often it ran, how long it took
//! (total, mean, max and a p95 from a log-scale histogram), the rows it returned or changed,
//! and its errors — kept cheaply on every statement's path (one clock read on each side and
//! one short lock), for the health report.
//!
//! At most `capacity` statements are tracked (1,000 by default,
//! [`StatementStats::set_capacity`]); past that, new statements count under `(other)`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

/// Histogram buckets: four per power of two of nanoseconds.
const BUCKETS: usize = 256;
/// Longest example text kept per statement.
const EXAMPLE_BYTES: usize = 4096;
/// The statement all others count under once the table is full.
pub const OTHER: &str = "(other)";

/// What one normalized statement did, summed over its runs.
#[derive(Debug, Clone)]
pub struct StatementSummary {
    /// The normalized text.
    pub statement: String,
    /// Runs.
    pub calls: u64,
    /// Runs that ended in an error.
    pub errors: u64,
    /// Time in all runs.
    pub total: Duration,
    /// Mean time per run.
    pub mean: Duration,
    /// 95th percentile of the run time (within 19%: the histogram's resolution).
    pub p95: Duration,
    /// Longest run.
    pub max: Duration,
    /// Rows returned (queries) or changed (writes), summed.
    pub rows: u64,
    /// The text of its most recent run (to EXPLAIN it), cut at 4 KiB.
    pub example: String,
}

struct Entry {
    calls: u64,
    errors: u64,
    total_ns: u128,
    max_ns: u64,
    rows: u64,
    histogram: Box<[u32; BUCKETS]>,
    example: String,
}

impl Entry {
    fn new() -> Entry {
        Entry {
            calls: 0,
            errors: 0,
            total_ns: 0,
            max_ns: 0,
            rows: 0,
            histogram: Box::new([0; BUCKETS]),
            example: String::new(),
        }
    }

    fn p95_ns(&self) -> u64 {
        let want = (self.calls as f64 * 0.95).ceil() as u64;
        let mut seen = 0u64;
        for (b, &n) in self.histogram.iter().enumerate() {
            seen += u64::from(n);
            if seen >= want.max(1) {
                // The bucket's geometric middle.
                return 2f64.powf((b as f64 + 0.5) / 4.0) as u64;
            }
        }
        self.max_ns
    }
}

fn bucket(ns: u64) -> usize {
    if ns <= 1 {
        return 0;
    }
    ((ns as f64).log2() * 4.0) as usize % BUCKETS
}

/// The statement statistics of a database.
pub struct StatementStats {
    enabled: AtomicBool,
    capacity: AtomicUsize,
    entries: Mutex<HashMap<Arc<str>, Entry>>,
}

impl Default for StatementStats {
    fn default() -> Self {
        StatementStats {
            enabled: AtomicBool::new(true),
            capacity: AtomicUsize::new(1000),
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl StatementStats {
    /// Turns recording on or off (on by default); what was recorded stays.
    pub fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Ordering::Relaxed);
    }

    /// Whether statements are recorded.
    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// How many distinct statements are tracked before new ones count under `(other)`.
    pub fn set_capacity(&self, capacity: usize) {
        self.capacity.store(capacity.max(1), Ordering::Relaxed);
    }

    /// Records one run of `normalized` (its full text `text`, for the example).
    pub fn record(
        &self,
        normalized: &Arc<str>,
        text: &str,
        elapsed: Duration,
        rows: u64,
        failed: bool,
    ) {
        if !self.is_enabled() {
            return;
        }
        let ns = elapsed.as_nanos().min(u128::from(u64::MAX)) as u64;
        let mut entries = self.entries.lock();
        let entry = match entries.get_mut(normalized) {
            Some(e) => e,
            None => {
                let key: Arc<str> = if entries.len() < self.capacity.load(Ordering::Relaxed) {
                    normalized.clone()
                } else {
                    Arc::from(OTHER)
                };
                entries.entry(key).or_insert_with(Entry::new)
            }
        };
        entry.calls += 1;
        entry.errors += u64::from(failed);
        entry.total_ns += u128::from(ns);
        entry.max_ns = entry.max_ns.max(ns);
        entry.rows += rows;
        entry.histogram[bucket(ns)] += 1;
        let mut cut = text.len().min(EXAMPLE_BYTES);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        if entry.example != text[..cut] {
            entry.example.clear();
            entry.example.push_str(&text[..cut]);
        }
    }

    /// Every statement's summary, the most total time first.
    pub fn summaries(&self) -> Vec<StatementSummary> {
        let entries = self.entries.lock();
        let mut out: Vec<StatementSummary> = entries
            .iter()
            .map(|(text, e)| StatementSummary {
                statement: text.to_string(),
                calls: e.calls,
                errors: e.errors,
                total: Duration::from_nanos(e.total_ns.min(u128::from(u64::MAX)) as u64),
                mean: Duration::from_nanos((e.total_ns / u128::from(e.calls.max(1))) as u64),
                p95: Duration::from_nanos(e.p95_ns().min(e.max_ns)),
                max: Duration::from_nanos(e.max_ns),
                rows: e.rows,
                example: e.example.clone(),
            })
            .collect();
        out.sort_by(|a, b| b.total.cmp(&a.total).then(a.statement.cmp(&b.statement)));
        out
    }

    /// Forgets everything recorded.
    pub fn reset(&self) {
        self.entries.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_percentiles_and_the_overflow_bucket() {
        let s = StatementStats::default();
        s.set_capacity(2);
        let a: Arc<str> = Arc::from("SELECT ?");
        for i in 1..=100u64 {
            s.record(&a, "SELECT 1", Duration::from_micros(i), 1, i == 100);
        }
        s.record(&Arc::from("B"), "B", Duration::from_millis(5), 0, false);
        s.record(&Arc::from("C"), "C", Duration::from_millis(1), 0, false);
        let all = s.summaries();
        assert_eq!(all.len(), 3, "two tracked and (other)");
        let sel = all.iter().find(|x| x.statement == "SELECT ?").unwrap();
        assert_eq!((sel.calls, sel.errors, sel.rows), (100, 1, 100));
        assert_eq!(sel.mean, Duration::from_nanos(50_500));
        let p95 = sel.p95.as_nanos() as f64;
        assert!((80_000.0..=114_000.0).contains(&p95), "{p95}");
        assert_eq!(sel.max, Duration::from_micros(100));
        assert!(all.iter().any(|x| x.statement == OTHER && x.calls == 1));
        s.set_enabled(false);
        s.record(&a, "SELECT 1", Duration::from_micros(1), 1, false);
        assert_eq!(
            s.summaries()
                .iter()
                .find(|x| x.statement == "SELECT ?")
                .unwrap()
                .calls,
            100
        );
    }
}
