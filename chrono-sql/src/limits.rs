//! What one statement may use, and how a running statement is stopped.
//!
//! Every limit is a named field of [`Limits`] (config key `limits.<field>` in the server's
//! `config.yaml`) and every error it raises names that key, so whoever hits it knows what to
//! change. Three kinds:
//!
//! ```text
//!  text ──► size and shape checks on the tokens, before sqlparser builds a tree
//!           (max_sql_bytes, max_statement_tokens, max_statements, max_expression_depth,
//!            max_in_list)
//!       ──► planning (max_relations)
//!       ──► execution: a StatementGuard per statement
//!             charge(bytes)   every operator that holds rows (hash join, aggregate, sort,
//!                             DISTINCT, IN-sets, a collected result)  → statement_memory_mb
//!             tick()/check()  in every operator loop: cancel token and deadline
//!             value cap       every value-building function          → max_value_bytes
//!       ──► admission: at most max_concurrent_statements at once, statement_queue waiting
//! ```
//!
//! Why the shape check runs on tokens: sqlparser builds a left-deep tree for `1+1+…+1`
//! without its own recursion guard, and recursing over (or merely dropping) such a tree
//! overflows the stack. The token check bounds the depth of every tree built afterwards, so
//! the recursive walks of the planner and executor stay within a known depth; those walks
//! also grow their stack on demand (`#[recursive::recursive]`), so a bounded tree is safe on
//! any thread, a 2 MiB one included, in unoptimized builds too.
//!
//! The value cap and the cancel check inside long per-row functions (LIKE) reach the guard
//! through a thread-local set for the statement's duration ([`StatementGuard::enter`]):
//! expression evaluation is called from many places (constant folding, DEFAULTs, scans),
//! and a value is built on the thread that runs the statement. The thread-local holds the
//! guard itself, not a copy, so a deadline a streamed statement restarts holds there too.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, Result};

/// The largest `limits.max_expression_depth` accepted. The recursive walks over expression
/// trees grow their stack on demand (the `recursive` crate), so this bounds time and memory
/// rather than stack.
pub const MAX_EXPRESSION_DEPTH: usize = 4_096;

/// Per-statement limits. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longest SQL text accepted in one call, in bytes.
    pub max_sql_bytes: usize,
    /// Most tokens in one call's SQL text (a bound on the nodes of the trees built from it,
    /// however many statements it holds).
    pub max_statement_tokens: usize,
    /// Most statements in one call's SQL text.
    pub max_statements: usize,
    /// Deepest expression: nesting plus the length of an operator chain.
    pub max_expression_depth: usize,
    /// Most items in one `IN (…)` list.
    pub max_in_list: usize,
    /// Most tables, subqueries and joins in one query.
    pub max_relations: usize,
    /// Memory one statement's operators may hold, in MiB.
    pub statement_memory_mb: usize,
    /// Largest value a function or operator may build, in bytes.
    pub max_value_bytes: usize,
    /// Statements running at once; more wait in the queue.
    pub max_concurrent_statements: usize,
    /// Statements waiting to run; past it a statement is refused at once.
    pub statement_queue: usize,
    /// Rows a whole-table scan reads on its own thread before it hands the second half of
    /// what is left to one helper thread; 0: scans never use a second thread.
    pub parallel_scan_rows: usize,
    /// Most rounds of a `WITH RECURSIVE` query (its recursive part run again on the rows
    /// the round before made); the rows it holds count toward `statement_memory_mb`.
    pub max_recursion_depth: usize,
    /// Rows `ANALYZE` keeps of a table (a uniform sample) to compute its statistics and
    /// train the learned estimator on; a larger table's statistics are estimated from the
    /// sample (distinct values with the Haas–Stokes estimator, as PostgreSQL does).
    pub analyze_sample_rows: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_sql_bytes: 16 << 20,
            max_statement_tokens: 1_000_000,
            max_statements: 10_000,
            max_expression_depth: 1_000,
            max_in_list: 100_000,
            max_relations: 64,
            statement_memory_mb: 256,
            max_value_bytes: 16 << 20,
            max_concurrent_statements: 16,
            statement_queue: 256,
            parallel_scan_rows: 16_384,
            max_recursion_depth: 1_000_000,
            analyze_sample_rows: 300_000,
        }
    }
}

impl Limits {
    /// Checks that every limit is usable (at least 1, and the ones the engine itself needs
    /// larger). The error names the key.
    pub fn validate(&self) -> Result<()> {
        let checks: [(&str, usize, usize); 13] = [
            ("max_sql_bytes", self.max_sql_bytes, 64),
            ("max_statement_tokens", self.max_statement_tokens, 16),
            ("max_statements", self.max_statements, 1),
            ("max_expression_depth", self.max_expression_depth, 8),
            ("max_in_list", self.max_in_list, 1),
            ("max_relations", self.max_relations, 1),
            ("statement_memory_mb", self.statement_memory_mb, 1),
            ("max_value_bytes", self.max_value_bytes, 1024),
            (
                "max_concurrent_statements",
                self.max_concurrent_statements,
                1,
            ),
            ("statement_queue", self.statement_queue, 0),
            ("parallel_scan_rows", self.parallel_scan_rows, 0),
            ("max_recursion_depth", self.max_recursion_depth, 1),
            ("analyze_sample_rows", self.analyze_sample_rows, 1000),
        ];
        for (name, value, min) in checks {
            if value < min {
                return Err(Error::InvalidInput(format!(
                    "limits.{name} must be at least {min} (is {value})"
                )));
            }
        }
        if self.max_expression_depth > MAX_EXPRESSION_DEPTH {
            return Err(Error::InvalidInput(format!(
                "limits.max_expression_depth must be at most {MAX_EXPRESSION_DEPTH}"
            )));
        }
        Ok(())
    }

    /// The error for a limit that was passed.
    pub fn exceeded(key: &str, what: impl std::fmt::Display) -> Error {
        Error::ResourceExhausted(format!("{what} (limit: limits.{key})"))
    }

    /// Fails when `value` passes `limit`: "`what` more than `limit` `unit`", naming the key.
    /// Inlined, so a check per token or row is a comparison; the error is built out of line.
    #[inline]
    pub fn at_most(value: usize, limit: usize, key: &str, what: &str, unit: &str) -> Result<()> {
        if value > limit {
            return Err(Self::passed(limit, key, what, unit));
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn passed(limit: usize, key: &str, what: &str, unit: &str) -> Error {
        Self::exceeded(key, format!("{what} more than {limit} {unit}"))
    }
}

/// Stops a running statement from another thread (a client that went away, a timeout),
/// and tells that thread how far a long statement is (`ANALYZE` counts the rows it read).
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<TokenState>);

#[derive(Debug, Default)]
struct TokenState {
    cancelled: AtomicBool,
    done: AtomicU64,
    total: AtomicU64,
}

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the statement to stop; it does within a few thousand rows.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Relaxed);
    }

    /// True once cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Relaxed)
    }

    /// How far the statement is: rows done and the rows it expects (0: not known).
    /// `None` until a statement that counts its work reports.
    pub fn progress(&self) -> Option<(u64, u64)> {
        let done = self.0.done.load(Ordering::Relaxed);
        (done > 0).then(|| (done, self.0.total.load(Ordering::Relaxed)))
    }

    fn report(&self, done: u64, total: u64) {
        self.0.total.store(total, Ordering::Relaxed);
        self.0.done.store(done, Ordering::Relaxed);
    }
}

/// How often (in ticks) a guard looks at the clock and the cancel flag.
const CHECK_EVERY: u32 = 1024;

/// One statement's budget, cancel token and deadline. Operators call [`tick`](Self::tick)
/// per row and [`charge`](Self::charge) for what they hold.
#[derive(Debug)]
pub struct StatementGuard {
    max_relations: usize,
    relations: Cell<usize>,
    memory_limit: usize,
    max_value_bytes: usize,
    parallel_scan_rows: usize,
    max_recursion_depth: usize,
    analyze_sample_rows: usize,
    cancel: CancelToken,
    timeout: Option<Duration>,
    deadline: Cell<Option<Instant>>,
    used: Cell<usize>,
    peak: Cell<usize>,
    ticks: Cell<u32>,
}

impl StatementGuard {
    /// A guard with `limits`, stopping when `cancel` is cancelled or `timeout` has passed.
    pub fn new(limits: &Limits, cancel: CancelToken, timeout: Option<Duration>) -> Self {
        Self {
            max_relations: limits.max_relations,
            relations: Cell::new(0),
            memory_limit: limits.statement_memory_mb.saturating_mul(1 << 20),
            max_value_bytes: limits.max_value_bytes,
            parallel_scan_rows: limits.parallel_scan_rows,
            max_recursion_depth: limits.max_recursion_depth,
            analyze_sample_rows: limits.analyze_sample_rows,
            cancel,
            timeout,
            deadline: Cell::new(timeout.map(|t| Instant::now() + t)),
            used: Cell::new(0),
            peak: Cell::new(0),
            ticks: Cell::new(0),
        }
    }

    /// How this statement's whole-table scans split between threads: after
    /// `limits.parallel_scan_rows` rows, the helper keeping at most
    /// `limits.statement_memory_mb` of rows waiting.
    pub fn scan_split(&self) -> crate::table::ScanSplit {
        crate::table::ScanSplit {
            after_rows: self.parallel_scan_rows,
            buffer_bytes: self.memory_limit,
        }
    }

    /// Fails when a recursive query starts round `round` past `limits.max_recursion_depth`.
    pub fn check_recursion(&self, round: usize) -> Result<()> {
        if round > self.max_recursion_depth {
            return Err(Limits::exceeded(
                "max_recursion_depth",
                format!(
                    "a WITH RECURSIVE query ran more than {} rounds",
                    self.max_recursion_depth
                ),
            ));
        }
        Ok(())
    }

    /// Checks the cancel token and the deadline now.
    pub fn check(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            return Err(Error::Cancelled("the statement was cancelled".into()));
        }
        if let Some(d) = self.deadline.get()
            && Instant::now() >= d
        {
            return Err(Error::DeadlineExceeded(
                "the statement ran past its deadline and was stopped".into(),
            ));
        }
        Ok(())
    }

    /// Counts one unit of work; every few thousand, [`check`](Self::check)s.
    #[inline]
    pub fn tick(&self) -> Result<()> {
        let t = self.ticks.get().wrapping_add(1);
        self.ticks.set(t);
        if t.is_multiple_of(CHECK_EVERY) {
            self.check()
        } else {
            Ok(())
        }
    }

    /// Says how far the statement is (rows done of the `total` expected, 0: not known), for
    /// whoever holds its cancel token (the shell's progress line).
    pub fn report_progress(&self, done: u64, total: u64) {
        self.cancel.report(done, total);
    }

    /// Rows `ANALYZE` keeps as a table's sample (`limits.analyze_sample_rows`).
    pub fn analyze_sample_rows(&self) -> usize {
        self.analyze_sample_rows
    }

    /// Starts the timeout again from now: a streamed statement's timeout bounds the time
    /// it computes between two rows it hands out, not how long its reader keeps reading.
    pub fn restart_deadline(&self) {
        if let Some(t) = self.timeout {
            self.deadline.set(Some(Instant::now() + t));
        }
    }

    /// Counts one table, subquery or join of the statement.
    pub fn count_relation(&self) -> Result<()> {
        let n = self.relations.get() + 1;
        self.relations.set(n);
        Limits::at_most(
            n,
            self.max_relations,
            "max_relations",
            "the statement reads",
            "tables and subqueries",
        )
    }

    /// Charges `bytes` to the statement's memory budget.
    pub fn charge(&self, bytes: usize) -> Result<()> {
        let used = self.used.get().saturating_add(bytes);
        self.used.set(used);
        if used > self.peak.get() {
            self.peak.set(used);
        }
        if used > self.memory_limit {
            return Err(Limits::exceeded(
                "statement_memory_mb",
                format!(
                    "the statement needs more than {} MiB of memory",
                    self.memory_limit >> 20
                ),
            ));
        }
        Ok(())
    }

    /// Gives back what an operator no longer holds.
    pub fn release(&self, bytes: usize) {
        self.used.set(self.used.get().saturating_sub(bytes));
    }

    /// The most memory charged at once.
    pub fn peak(&self) -> usize {
        self.peak.get()
    }

    /// Makes this guard the one expression evaluation on this thread answers to (value
    /// cap, cancel token, deadline), until the returned scope ends.
    pub fn enter(self: &Rc<Self>) -> EnteredGuard {
        let previous = CURRENT.with(|c| c.replace(Some(self.clone())));
        EnteredGuard { previous }
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Rc<StatementGuard>>> = const { RefCell::new(None) };
}

/// Restores the previous statement guard of the thread when dropped.
pub struct EnteredGuard {
    previous: Option<Rc<StatementGuard>>,
}

impl Drop for EnteredGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Fails when a value of `bytes` would pass the running statement's `max_value_bytes`.
pub fn check_value_size(bytes: usize) -> Result<()> {
    let max = CURRENT.with(|c| {
        c.borrow()
            .as_ref()
            .map(|g| g.max_value_bytes)
            .unwrap_or_else(|| Limits::default().max_value_bytes)
    });
    Limits::at_most(bytes, max, "max_value_bytes", "a value would have", "bytes")
}

/// For long loops inside one function call (LIKE on long texts): the running statement's
/// [`StatementGuard::check`] (nothing outside a statement).
pub fn check_interrupted() -> Result<()> {
    CURRENT.with(|c| c.borrow().as_ref().map_or(Ok(()), |g| g.check()))
}

/// Bytes a value holds, for memory accounting (the enum itself plus its heap part).
pub fn value_bytes(v: &chrono_storage::Value) -> usize {
    use chrono_storage::Value;
    std::mem::size_of::<Value>()
        + match v {
            Value::Text(s) => s.capacity(),
            Value::Blob(b) => b.capacity(),
            _ => 0,
        }
}

/// Bytes a row holds, for memory accounting.
pub fn row_bytes(row: &[chrono_storage::Value]) -> usize {
    std::mem::size_of::<Vec<chrono_storage::Value>>() + row.iter().map(value_bytes).sum::<usize>()
}

/// Bytes a row held with its sort key (sorts, top-k).
pub fn keyed_row_bytes(key: &[chrono_storage::Value], row: &[chrono_storage::Value]) -> usize {
    row_bytes(key) + row_bytes(row)
}

/// What a set or map spends per entry beyond its key (buckets, nodes, control bytes).
const HASH_ENTRY_OVERHEAD: usize = 32;

/// Bytes an encoded key held in a set or map takes (DISTINCT, GROUP BY, hash joins).
pub fn hashed_key_bytes(key: &[u8]) -> usize {
    key.len() + HASH_ENTRY_OVERHEAD
}

/// After a statement that held this much, freed memory is handed back to the system.
const TRIM_AFTER_BYTES: usize = 64 << 20;

/// Hands memory a large statement freed back to the operating system: glibc's allocator
/// otherwise keeps it for the process, so one big statement would leave the server large.
pub fn release_memory_after(guard: &StatementGuard) {
    if guard.peak() < TRIM_AFTER_BYTES {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Lets at most `max_concurrent_statements` statements run at once, with a bounded queue.
#[derive(Debug, Default)]
pub struct Admission {
    slots: Mutex<Slots>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct Slots {
    running: usize,
    waiting: usize,
}

/// A running statement's place; dropping it lets the next one in.
pub struct Permit<'a> {
    admission: &'a Admission,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.admission.slots.lock().running -= 1;
        self.admission.freed.notify_one();
    }
}

impl Admission {
    /// Waits for a place (at most until the guard's deadline or cancellation).
    pub fn admit<'a>(&'a self, limits: &Limits, guard: &StatementGuard) -> Result<Permit<'a>> {
        let mut slots = self.slots.lock();
        if slots.running < limits.max_concurrent_statements {
            slots.running += 1;
            return Ok(Permit { admission: self });
        }
        if slots.waiting >= limits.statement_queue {
            return Err(Limits::exceeded(
                "statement_queue",
                format!(
                    "the server is busy: {} statements run and {} wait",
                    slots.running, slots.waiting
                ),
            ));
        }
        slots.waiting += 1;
        let result = loop {
            if let Err(e) = guard.check() {
                break Err(e);
            }
            if slots.running < limits.max_concurrent_statements {
                slots.running += 1;
                break Ok(Permit { admission: self });
            }
            self.freed.wait_for(&mut slots, Duration::from_millis(50));
        };
        slots.waiting -= 1;
        result
    }
}
