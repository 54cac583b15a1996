//! # chrono-server
//!
//! The facade that wires ChronoDB together — [`ChronoDb`], the embedded API with the
//! documented calls — its [`config`] file, the result [`output`] formats, and the `chronodb`
//! command-line tool (`src/main.rs`).
//!
//! ```
//! use chrono_server::{ChronoDb, Outcome};
//! use chrono_storage::Value;
//!
//! # fn main() -> chrono_server::Result<()> {
//! let dir = tempfile::tempdir().unwrap();
//! let db = ChronoDb::open(dir.path())?;
//! db.execute("CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT, email TEXT)")?;
//! db.execute("INSERT INTO users (id, name, email) VALUES (1, 'Alice', 'alice@email.com')")?;
//! db.execute("UPDATE users SET email = 'alice@new.example' WHERE id = 1")?;
//! let history = db.get_change_history("users", &[Value::Int(1)])?;
//! assert_eq!(history.versions.len(), 2);
//! let Outcome::Rows { rows, .. } =
//!     db.execute("SELECT name FROM users WHERE name = 'Alice'")?.remove(0)
//! else { unreachable!() };
//! assert_eq!(rows.len(), 1);
//! # Ok(())
//! # }
//! ```

pub mod auth;
pub mod browser;
pub mod changes;
pub mod checkpoints;
pub mod cli;
pub mod config;
pub mod error;
pub mod graphql;
pub mod grpc;
pub mod health;
pub mod http;
pub mod listener;
pub mod ml;
pub mod output;
pub mod pg;
pub mod websocket;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use chrono_audit::{AuditTrail, Checkpoint, VerifyReport};
pub use chrono_sql::{Database, Outcome, RowVersion, Session};
use chrono_storage::{RocksEngine, RocksOptions, Store, Value};
pub use config::Config;
pub use error::{Error, Result};

/// An embedded ChronoDB database.
pub struct ChronoDb {
    db: Database,
    audit: Option<Arc<AuditTrail>>,
    changes: Arc<changes::ChangeHub>,
    ml: Option<ml::MlOptimizer>,
    config: Config,
    _temp: Option<tempfile::TempDir>,
    /// The last verification since the database was opened: when, and what it found.
    last_verification: parking_lot::Mutex<Option<(chrono_storage::Timestamp, VerifyReport)>>,
    /// On a shared engine: the thread that looks for other servers' commits.
    _head_poller: Option<HeadPoller>,
    /// Places for change-feed replays from the stored history
    /// (`server.max_concurrent_replays`).
    replays: Arc<tokio::sync::Semaphore>,
}

/// What [`ChronoDb::collect_history`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GcReport {
    /// The GC horizon now (microseconds; reads before it are refused).
    pub horizon: u64,
    /// Whether it moved (and a compaction ran).
    pub moved: bool,
}

/// On a shared engine, looks for other servers' commits every interval, so change streams
/// deliver them without waiting for this server's next transaction. Stops when dropped.
struct HeadPoller {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HeadPoller {
    fn start(store: Store, every: std::time::Duration) -> HeadPoller {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("chronodb-head".into())
            .spawn(move || {
                while !flag.load(std::sync::atomic::Ordering::Acquire) {
                    if let Err(e) = store.sync_head() {
                        tracing::debug!(error = %e, "reading the shared head failed");
                    }
                    std::thread::sleep(every);
                }
            })
            .ok();
        HeadPoller { stop, thread }
    }
}

impl Drop for HeadPoller {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The versions of one row, oldest first, from [`ChronoDb::get_change_history`].
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeHistory {
    /// The table's columns.
    pub columns: Vec<String>,
    /// Each committed version: timestamp, operation, the row after it.
    pub versions: Vec<RowVersion>,
}

impl ChronoDb {
    /// Opens (creating if needed) the database in `dir` with the default configuration.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_config(Config::with_data_dir(dir.as_ref()))
    }

    /// Opens the database that `config` describes.
    pub fn open_with_config(config: Config) -> Result<Self> {
        config.validate()?;
        let options = RocksOptions {
            wal_enabled: config.database.wal_enabled,
            sync_writes: config.database.sync_writes,
            compression: config.database.compression,
            block_cache_bytes: config.database.block_cache_mb << 20,
            write_buffer_bytes: config.database.write_buffer_mb << 20,
            bloom_bits_per_key: f64::from(config.database.bloom_bits_per_key),
            idle_iterators: config.database.idle_iterators,
        };
        let engine: Arc<dyn chrono_storage::Engine> = match config.database.engine {
            config::EngineKind::Rocksdb => {
                Arc::new(RocksEngine::open(&config.database.data_file, &options)?)
            }
            #[cfg(feature = "etcd")]
            config::EngineKind::Etcd => Arc::new(chrono_etcd::EtcdEngine::open(
                config.database.etcd.options(),
            )?),
            #[cfg(not(feature = "etcd"))]
            config::EngineKind::Etcd => {
                return Err(Error::Config(
                    "database.engine: etcd, but this chronodb is built without the etcd \
                     engine (cargo feature etcd)"
                        .into(),
                ));
            }
        };
        let store = Store::open(engine)?;
        // The audit trail observes every commit, so it is attached before the first one.
        let audit = if config.features.audit.enabled {
            Some(AuditTrail::attach(&store)?)
        } else {
            None
        };
        let audit_config = &config.features.audit;
        if let (Some(trail), Some(dir), Some(key_file)) = (
            &audit,
            &audit_config.checkpoint_dir,
            &audit_config.signing_key_file,
        ) {
            let key_hex = std::fs::read_to_string(key_file).map_err(|e| {
                Error::Config(format!(
                    "features.audit.signing_key_file {}: {e}",
                    key_file.display()
                ))
            })?;
            store.add_observer(checkpoints::CheckpointWriter::start(
                trail,
                &key_hex,
                dir.clone(),
                audit_config.checkpoint_every,
            )?);
        }
        let changes = Arc::new(changes::ChangeHub::new());
        store.add_observer(changes.clone());
        let head_poller = store.engine().shared().then(|| {
            HeadPoller::start(
                store.clone(),
                std::time::Duration::from_millis(config.database.etcd.poll_ms.max(1)),
            )
        });
        let engine = store.engine().clone();
        let db = Database::new(store);
        db.set_limits(config.limits.clone())?;
        db.set_time_travel(config.features.time_travel.enabled);
        let ml_config = &config.features.ml_optimizer;
        #[cfg(not(feature = "ml"))]
        let ml: Option<ml::MlOptimizer> = {
            if ml_config.enabled {
                tracing::warn!(
                    "features.ml_optimizer.enabled, but this chronodb is built without the \
                     learned estimator (cargo feature ml): statistics estimates only"
                );
            }
            drop(engine);
            None
        };
        #[cfg(feature = "ml")]
        let ml = ml_config.enabled.then(|| {
            let estimator = chrono_ml::LearnedEstimator::open(
                engine,
                chrono_ml::MlConfig {
                    training_interval: ml_config.training_interval,
                    threads: ml_config.threads,
                    training_budget: (ml_config.training_budget_ms > 0)
                        .then(|| std::time::Duration::from_millis(ml_config.training_budget_ms)),
                    ..Default::default()
                },
            );
            db.set_estimator(Arc::new(estimator.clone()));
            let fraction = ml_config.reanalyze_fraction;
            db.set_auto_analyze((fraction > 0.0).then_some(chrono_sql::AutoAnalyze {
                fraction,
                min_rows: ml_config.reanalyze_min_rows,
            }));
            ml::MlOptimizer {
                estimator,
                report_dir: config.database.data_file.join("reports"),
            }
        });
        let replays = Arc::new(tokio::sync::Semaphore::new(
            config.server.max_concurrent_replays.max(1),
        ));
        Ok(Self {
            db,
            audit,
            changes,
            ml,
            config,
            _temp: None,
            last_verification: parking_lot::Mutex::new(None),
            _head_poller: head_poller,
            replays,
        })
    }

    /// A database in a new temporary directory, removed when this value is dropped.
    pub fn open_temporary() -> Result<Self> {
        let dir = tempfile::tempdir()
            .map_err(|e| Error::Io(format!("cannot create a temporary directory: {e}")))?;
        let mut db = Self::open(dir.path())?;
        db._temp = Some(dir);
        Ok(db)
    }

    /// Retention: lets history older than `features.time_travel.retention_days` go. Moves
    /// the GC horizon to now − retention (never past an open transaction or a pin, see
    /// `Store::pin`), then compacts, so the versions no read inside the window needs leave
    /// the disk. Reads before the horizon are then refused with an error naming the
    /// earliest readable time. `chronodb serve` runs it every
    /// `features.time_travel.gc_interval_secs`; an embedder calls it when it likes.
    /// Nothing happens with `retention_days: 0` (keep forever).
    pub fn collect_history(&self) -> Result<GcReport> {
        self.collect_history_at(chrono_storage::Timestamp::now())
    }

    /// [`collect_history`](Self::collect_history) as if the clock read `now`.
    pub fn collect_history_at(&self, now: chrono_storage::Timestamp) -> Result<GcReport> {
        let store = self.db.store();
        let before = store.horizons();
        let after = store.advance_horizons(&self.retention_horizons(now)?, false)?;
        // DELETE HISTORY statements recorded but not applied (a crash in between) go now.
        self.db.apply_history_purges()?;
        let moved = *after != *before;
        if moved {
            store.engine().compact()?;
        }
        Ok(GcReport {
            horizon: after.default,
            moved,
        })
    }

    /// The retention of `table` in days (0: forever): its own, else the default.
    pub(crate) fn table_retention_days(&self, table: &str) -> u32 {
        let tt = &self.config.features.time_travel;
        tt.table_retention_days
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(table))
            .map_or(tt.retention_days, |(_, d)| *d)
    }

    /// Where retention wants the horizons at `now`: now − `retention_days` for key spaces
    /// of no table in `table_retention_days`, now − that table's days for its rows and
    /// indexes, and for the catalog the earliest of them (a table kept longer is read with
    /// the catalog of its time). 0 days: keep (no move).
    pub(crate) fn retention_horizons(
        &self,
        now: chrono_storage::Timestamp,
    ) -> Result<chrono_storage::Horizons> {
        let tt = &self.config.features.time_travel;
        let cutoff = |days: u32| match days {
            0 => 0,
            d => now
                .as_micros()
                .saturating_sub(u64::from(d) * 86_400 * 1_000_000),
        };
        let mut wanted = chrono_storage::Horizons {
            default: cutoff(tt.retention_days),
            ..Default::default()
        };
        if tt.table_retention_days.is_empty() {
            return Ok(wanted);
        }
        let txn = self.db.store().begin_read_only(u64::MAX);
        let tables =
            chrono_sql::catalog::list_tables(chrono_sql::catalog::Snapshot::Transaction(&txn))?;
        drop(txn);
        let mut earliest = wanted.default;
        for t in tables {
            if !tt
                .table_retention_days
                .keys()
                .any(|name| name.eq_ignore_ascii_case(&t.name))
            {
                continue;
            }
            let h = cutoff(self.table_retention_days(&t.name));
            earliest = earliest.min(h);
            for ks in std::iter::once(t.keyspace).chain(t.indexes.iter().map(|ix| ix.keyspace)) {
                wanted.retained.insert(ks, h);
            }
        }
        if earliest < wanted.default {
            wanted
                .retained
                .insert(chrono_sql::catalog::CATALOG_KEYSPACE, earliest);
        }
        Ok(wanted)
    }

    /// The learned optimizer (`None` when `features.ml_optimizer.enabled` is false).
    pub fn ml_optimizer(&self) -> Option<&ml::MlOptimizer> {
        self.ml.as_ref()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The database directory.
    pub fn data_dir(&self) -> PathBuf {
        self.config.database.data_file.clone()
    }

    /// The SQL database underneath.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Commits waiting in the change buffer for slow subscribers.
    pub fn queued_changes(&self) -> usize {
        self.changes.queued()
    }

    /// Told the newest commit of other servers on a shared engine, as this one hears of
    /// them (it looks every `database.etcd.poll_ms`, and before each transaction).
    pub fn foreign_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.foreign()
    }

    /// The places for change-feed replays from the stored history: one is held while a
    /// replay reads (`server.max_concurrent_replays`).
    pub fn replays(&self) -> Arc<tokio::sync::Semaphore> {
        self.replays.clone()
    }

    /// Every commit from now on, through a bounded buffer (see [`changes`]).
    pub fn subscribe_commits(
        &self,
    ) -> tokio::sync::broadcast::Receiver<Arc<chrono_storage::Commit>> {
        self.changes.subscribe()
    }

    /// The audit trail: reports, proofs, checkpoints. An error when the configuration
    /// turned it off.
    pub fn audit_trail(&self) -> Result<&AuditTrail> {
        self.audit.as_deref().ok_or_else(|| {
            Error::Config("the audit trail is turned off (features.audit.enabled)".into())
        })
    }

    /// The audit trail, shared (for work on another thread, such as a progress line).
    pub fn audit_trail_shared(&self) -> Option<Arc<AuditTrail>> {
        self.audit.clone()
    }

    /// Recomputes the audit chain and log tree and cross-checks every row version:
    /// `verify_audit_integrity()`.
    pub fn verify_audit_integrity(&self) -> Result<VerifyReport> {
        let report = self.audit_trail()?.verify()?;
        *self.last_verification.lock() = Some((chrono_storage::Timestamp::now(), report.clone()));
        Ok(report)
    }

    /// When the audit trail was last verified through this handle, and what that found.
    pub fn last_verification(&self) -> Option<(chrono_storage::Timestamp, VerifyReport)> {
        self.last_verification.lock().clone()
    }

    /// The current definition of table `name` (case-insensitive); `NotFound` when there is
    /// none.
    pub fn table(&self, name: &str) -> Result<chrono_sql::catalog::TableDef> {
        self.db
            .tables()?
            .into_iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| chrono_sql::Error::NotFound(format!("no such table: {name}")).into())
    }

    /// A session: keeps a transaction open across calls (`BEGIN` … `COMMIT`).
    pub fn session(&self) -> Session {
        self.db.session()
    }

    /// Runs one or more statements, each in its own transaction.
    pub fn execute(&self, sql: &str) -> Result<Vec<Outcome>> {
        Ok(self.db.execute(sql)?)
    }

    /// Runs statements with positional parameters (`?` or `$1`, `$2`…).
    pub fn execute_with_params(&self, sql: &str, params: &[Value]) -> Result<Vec<Outcome>> {
        Ok(self.db.session().execute_with_params(sql, params)?)
    }

    /// Every version of one row (by primary key), oldest first: the documented
    /// `get_change_history(table, id)`.
    pub fn get_change_history(&self, table: &str, primary_key: &[Value]) -> Result<ChangeHistory> {
        let (columns, versions) = self.db.change_history(table, primary_key)?;
        Ok(ChangeHistory { columns, versions })
    }
}
