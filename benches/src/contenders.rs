//! The contenders of the comparison benches, behind one small trait so every workload runs
//! the same statements on each: ChronoDB embedded and SQLite (rusqlite, bundled, WAL mode,
//! `synchronous = NORMAL` — like ChronoDB's default, which writes through the WAL without
//! an fsync per commit — with prepared statements cached by text on both sides).

use chrono_server::{ChronoDb, Outcome};
use chrono_storage::Value;

/// A database a workload runs on.
pub trait Contender {
    /// Its name in reports.
    fn name(&self) -> &'static str;
    /// Runs statements that return nothing of interest (DDL, bulk inserts).
    fn run(&mut self, sql: &str);
    /// Runs a query with integer parameters; returns the number of rows.
    fn rows(&mut self, sql: &str, params: &[i64]) -> usize;
    /// Another connection to the same database, for work on another thread.
    fn connection(&self) -> Box<dyn Contender + Send>;
    /// Brings the files to the state a database in use reaches after loading (ChronoDB:
    /// every column family compacted into large files, as RocksDB's background compactions
    /// leave them), so reads are measured on files of real sizes, not fresh small ones.
    fn settle(&mut self) {}
}

/// ChronoDB on RocksDB in a temporary directory (or on an etcd cluster).
pub struct Chrono {
    db: std::sync::Arc<ChronoDb>,
    session: chrono_sql::Session,
    name: &'static str,
    /// The directory of a database opened from a config (removed on drop; a connection made
    /// by [`Contender::connection`] does not hold it, and must not outlive the first).
    _dir: Option<tempfile::TempDir>,
}

impl Chrono {
    /// A fresh database, as shipped but for one setting: the learned estimator does not
    /// retrain from feedback (`training_interval` at its largest), so no training shares a
    /// timed window's CPU; it trains after each `ANALYZE`, which [`Contender::run`] waits for.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = chrono_server::Config::with_data_dir(dir.path());
        config.features.ml_optimizer.training_interval = u64::MAX;
        let db = ChronoDb::open_with_config(config).expect("open ChronoDB");
        Self::named(db, "ChronoDB", Some(dir))
    }

    fn named(db: ChronoDb, name: &'static str, dir: Option<tempfile::TempDir>) -> Self {
        let session = db.session();
        Self {
            db: std::sync::Arc::new(db),
            session,
            name,
            _dir: dir,
        }
    }

    /// A fresh database with the audit trail off (`features.audit.enabled: false`), the
    /// benches' second ChronoDB row where auditing makes a difference (writes).
    pub fn without_audit() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = chrono_server::Config::with_data_dir(dir.path());
        config.features.audit.enabled = false;
        config.features.ml_optimizer.training_interval = u64::MAX;
        let db = ChronoDb::open_with_config(config).expect("open ChronoDB");
        Self::named(db, "ChronoDB_audit_off", Some(dir))
    }

    /// The AS OF bench's table: `accounts` with 100 rows, each updated until it has
    /// `versions` versions; returns the time in the middle of that history.
    pub fn accounts_with_versions(&mut self, versions: i64) -> i64 {
        self.run("CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT)");
        let rows: Vec<String> = (0..100).map(|i| format!("({i}, 0)")).collect();
        self.run(&format!("INSERT INTO accounts VALUES {}", rows.join(",")));
        let mut stamps = vec![self.db().database().store().current_ts()];
        for _ in 1..versions {
            self.run("UPDATE accounts SET balance = balance + 1");
            stamps.push(self.db().database().store().current_ts());
        }
        stamps[stamps.len() / 2] as i64
    }

    /// A fresh database on the etcd cluster at `endpoints`, under `prefix`, its local
    /// files in `dir`.
    pub fn on_etcd(endpoints: Vec<String>, prefix: &str, dir: &std::path::Path) -> Self {
        let mut config = chrono_server::Config::default();
        config.database.engine = chrono_server::config::EngineKind::Etcd;
        config.database.data_file = dir.to_path_buf();
        config.database.etcd.endpoints = endpoints;
        config.database.etcd.prefix = prefix.into();
        let db = ChronoDb::open_with_config(config).expect("open ChronoDB on etcd");
        Self::named(db, "ChronoDB on etcd", None)
    }

    /// The database (for time-travel set-up).
    pub fn db(&self) -> &ChronoDb {
        &self.db
    }
}

impl Default for Chrono {
    fn default() -> Self {
        Self::new()
    }
}

impl Chrono {
    /// Runs a query with any parameter values (a TIMESTAMP for `AS OF ?`) through the
    /// session's statement cache, like [`Contender::rows`]; returns the number of rows.
    pub fn rows_with(&mut self, sql: &str, params: &[Value]) -> usize {
        match self
            .session
            .execute_with_params(sql, params)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .pop()
        {
            Some(Outcome::Rows { rows, .. }) => rows.len(),
            _ => 0,
        }
    }
}

impl Contender for Chrono {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run(&mut self, sql: &str) {
        self.session
            .execute(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        // ANALYZE leaves the learned estimator training in the background: the benches time
        // queries once it is done.
        if sql.trim_start().to_ascii_uppercase().starts_with("ANALYZE")
            && let Some(ml) = self.db.ml_optimizer()
        {
            ml.wait_idle();
        }
    }

    fn rows(&mut self, sql: &str, params: &[i64]) -> usize {
        let values: Vec<Value> = params.iter().map(|&p| Value::Int(p)).collect();
        self.rows_with(sql, &values)
    }

    fn connection(&self) -> Box<dyn Contender + Send> {
        Box::new(Chrono {
            db: self.db.clone(),
            session: self.db.session(),
            name: self.name,
            _dir: None,
        })
    }

    fn settle(&mut self) {
        self.db
            .database()
            .store()
            .engine()
            .compact()
            .expect("compact");
    }
}

/// SQLite in a temporary directory.
pub struct Sqlite {
    conn: rusqlite::Connection,
    /// Set for the connection that created the database file (removed on its drop).
    _dir: Option<tempfile::TempDir>,
}

impl Sqlite {
    /// A fresh database file.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        Self {
            conn: Self::open(&dir.path().join("bench.sqlite")),
            _dir: Some(dir),
        }
    }

    /// A connection to the database file at `path`, set up as every contender's is.
    fn open(path: &std::path::Path) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(path).expect("open SQLite");
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
            .expect("pragmas");
        // Writers take turns on SQLite's one write lock: wait for it rather than fail.
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .expect("busy timeout");
        conn.set_prepared_statement_cache_capacity(64);
        conn
    }
}

impl Default for Sqlite {
    fn default() -> Self {
        Self::new()
    }
}

impl Contender for Sqlite {
    fn name(&self) -> &'static str {
        "SQLite"
    }

    fn run(&mut self, sql: &str) {
        self.conn
            .execute_batch(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn rows(&mut self, sql: &str, params: &[i64]) -> usize {
        let mut stmt = self
            .conn
            .prepare_cached(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let mut rows = stmt
            .query(rusqlite::params_from_iter(params.iter()))
            .expect("query");
        let mut n = 0;
        while rows.next().expect("row").is_some() {
            n += 1;
        }
        n
    }

    fn connection(&self) -> Box<dyn Contender + Send> {
        let path = self.conn.path().expect("a database file");
        Box::new(Sqlite {
            conn: Self::open(std::path::Path::new(path)),
            _dir: None,
        })
    }
}

/// Loads `users(id, name, created_at)` and `orders(id, user_id, total, status)` with an
/// index on `orders(user_id)`, in batches of 1,000 rows per INSERT.
pub fn load_users_orders(c: &mut dyn Contender, users: i64, orders: i64) {
    c.run("CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT, created_at BIGINT)");
    c.run("CREATE TABLE orders (id BIGINT PRIMARY KEY, user_id BIGINT, total DOUBLE, status TEXT)");
    c.run("CREATE INDEX orders_user ON orders (user_id)");
    let mut batch = |table: &str, rows: Vec<String>| {
        for chunk in rows.chunks(1000) {
            c.run(&format!("INSERT INTO {table} VALUES {}", chunk.join(",")));
        }
    };
    batch(
        "users",
        (0..users)
            .map(|i| {
                format!(
                    "({i}, 'user {i}', {})",
                    1_600_000_000 + (i * 7919) % 60_000_000
                )
            })
            .collect(),
    );
    batch(
        "orders",
        (0..orders)
            .map(|i| {
                let status = ["shipped", "pending", "cancelled"][(i % 3) as usize];
                format!(
                    "({i}, {}, {}.5, '{status}')",
                    (i * 104_729) % users,
                    i % 500
                )
            })
            .collect(),
    );
}

/// The floor: RocksDB itself (same crate, same build, LZ4) with the rows under plain
/// big-endian keys and ChronoDB's row encoding as values; no MVCC, no SQL. What a
/// RocksDB-backed engine cannot beat.
pub struct RawRocks {
    db: rocksdb::DB,
    _dir: tempfile::TempDir,
}

const USERS_PREFIX: u8 = b'u';
const ORDERS_PREFIX: u8 = b'o';

fn raw_key(prefix: u8, id: i64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = prefix;
    k[1..].copy_from_slice(&(id as u64).to_be_bytes());
    k
}

impl RawRocks {
    /// A fresh database.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let db = rocksdb::DB::open(&opts, dir.path()).expect("open RocksDB");
        Self { db, _dir: dir }
    }

    /// Name in reports.
    pub fn name(&self) -> &'static str {
        "RocksDB_raw"
    }

    /// The rows of [`load_users_orders`], written in batches of 1,000.
    pub fn load_users_orders(&self, users: i64, orders: i64) {
        let mut batch = rocksdb::WriteBatch::default();
        let flush = |batch: &mut rocksdb::WriteBatch, force: bool| {
            if force || batch.len() >= 1000 {
                self.db.write(std::mem::take(batch)).expect("write");
            }
        };
        for i in 0..users {
            let row = [
                Value::Text(format!("user {i}")),
                Value::Int(1_600_000_000 + (i * 7919) % 60_000_000),
            ];
            batch.put(
                raw_key(USERS_PREFIX, i),
                chrono_storage::encoding::encode_row(&row),
            );
            flush(&mut batch, false);
        }
        for i in 0..orders {
            let status = ["shipped", "pending", "cancelled"][(i % 3) as usize];
            let row = [
                Value::Int((i * 104_729) % users),
                Value::Float((i % 500) as f64 + 0.5),
                Value::Text(status.into()),
            ];
            batch.put(
                raw_key(ORDERS_PREFIX, i),
                chrono_storage::encoding::encode_row(&row),
            );
            flush(&mut batch, false);
        }
        flush(&mut batch, true);
    }

    /// A user's name by id.
    pub fn get_user(&self, id: i64) -> Option<String> {
        let raw = self
            .db
            .get_pinned(raw_key(USERS_PREFIX, id))
            .expect("get")?;
        match chrono_storage::encoding::decode_row(&raw)
            .expect("row")
            .swap_remove(0)
        {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    /// Orders with `total > min_total AND status = 'shipped'`, decoding every row.
    pub fn scan_orders(&self, min_total: f64) -> usize {
        let mut it = self.db.raw_iterator();
        it.seek([ORDERS_PREFIX]);
        let mut n = 0;
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if k[0] != ORDERS_PREFIX {
                break;
            }
            let row = chrono_storage::encoding::decode_row(v).expect("row");
            if matches!(row[1], Value::Float(t) if t > min_total)
                && matches!(&row[2], Value::Text(s) if s == "shipped")
            {
                n += 1;
            }
            it.next();
        }
        n
    }

    /// Writes `rows` users from `first` in one batch.
    pub fn insert_users(&self, first: i64, rows: i64) {
        let mut batch = rocksdb::WriteBatch::default();
        for i in first..first + rows {
            let row = [Value::Text(format!("user {i}")), Value::Int(i)];
            batch.put(
                raw_key(USERS_PREFIX, i),
                chrono_storage::encoding::encode_row(&row),
            );
        }
        self.db.write(batch).expect("write");
    }
}

impl Default for RawRocks {
    fn default() -> Self {
        Self::new()
    }
}
