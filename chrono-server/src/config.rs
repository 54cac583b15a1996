//! `config.yaml`: the configuration file, with defaults for every key.
//!
//! ```yaml
//! database:
//!   engine: rocksdb              # or etcd: the store on a replicated etcd cluster
//!   data_file: "chronodb.data"   # a directory (RocksDB); relative to the config file
//!   etcd:                        # for engine: etcd (see chrono_etcd::EtcdOptions)
//!     endpoints: ["http://127.0.0.1:2379"]
//!     prefix: "chronodb/"        # several databases share a cluster under prefixes
//!     request_timeout_ms: 10000
//!     max_txn_ops: 10000         # at most the cluster's --max-txn-ops
//!     max_txn_bytes: 12582912    # below the cluster's --max-request-bytes
//!     lock_ttl_secs: 10          # one writer per database; a standby waits this long
//!   wal_enabled: true            # write-ahead log: a returned commit survives a crash
//!   compression: true            # LZ4 block compression
//!   sync_writes: false           # fsync every commit (survives power loss too)
//!   block_cache_mb: 1536         # RocksDB block cache (default: 1/16 of memory, 64–2048)
//!   write_buffer_mb: 64          # memtable size of each column family before a flush
//!   bloom_bits_per_key: 10       # bloom filters on the current-state rows (0: none)
//!   idle_iterators: 4            # RocksDB iterators kept per column family for reuse
//! features:
//!   time_travel:
//!     enabled: true              # AS OF / FOR SYSTEM_TIME allowed
//!     retention_days: 365        # history older than this is collected (0: keep forever)
//!     gc_interval_secs: 3600     # `chronodb serve` collects every this many seconds
//!     table_retention_days: {}   # per table, overrides retention_days: {audit_log: 3650}
//!   ml_optimizer:
//!     enabled: true              # the learned cardinality estimator (chrono-ml)
//!     training_interval: 1000    # feedback records on a table between retrainings
//!     reanalyze_fraction: 0.2    # re-ANALYZE (and retrain) a table by itself once this
//!                                # fraction of its rows changed; 0 turns that off
//!     reanalyze_min_rows: 1000   # … plus this many rows (a small table is not analyzed
//!                                # again after every few writes)
//!     threads: 1                 # threads a training may use (libtorch's, process-wide)
//!     training_budget_ms: 10000  # longest one training runs (ANALYZE's too); 0: no limit
//!   audit:
//!     enabled: true
//!     signing_key_file: audit.key  # Ed25519 seed (hex) that signs checkpoints
//!     checkpoint_dir: checkpoints  # the running database writes signed checkpoints here
//!     checkpoint_every: 1000       # … every this many commits
//! limits:                        # per statement; the error for each names its key
//!   max_sql_bytes: 16777216      # SQL text of one call
//!   max_statement_tokens: 1000000
//!   max_statements: 10000        # statements in one call's text
//!   max_expression_depth: 1000    # nesting plus operator-chain length
//!   max_in_list: 100000          # items of one parenthesized list
//!   max_relations: 64            # tables, subqueries and joins of one statement
//!   statement_memory_mb: 256     # rows held by joins, aggregates, sorts, results
//!   max_value_bytes: 16777216    # one value built by a function or operator
//!   max_concurrent_statements: 16
//!   statement_queue: 256         # waiting statements; past it RESOURCE_EXHAUSTED
//!   parallel_scan_rows: 16384    # a whole-table scan splits after this many rows (0: never)
//!   max_recursion_depth: 1000000 # rounds of one WITH RECURSIVE query
//!   analyze_sample_rows: 300000  # rows ANALYZE keeps of a table (a uniform sample)
//! ```
//!
//! An unknown key or a value of the wrong type is an error that names it.
//!
//! Retention: `chronodb serve` calls `ChronoDb::collect_history` every `gc_interval_secs`
//! (the first time one interval after it starts); an embedder calls it when it likes. It
//! moves the GC horizon to now − `retention_days` (never past an open transaction or a
//! pinned reader) and compacts: versions no read at or after the horizon needs leave the
//! disk, and reads before the horizon are refused with an error naming it. A table named
//! in `table_retention_days` (case-insensitively) keeps its history that long instead,
//! longer or shorter than the rest; the catalog keeps its history as long as the longest, so
//! a table kept longer can still be read as it was. `DELETE HISTORY FROM t BEFORE
//! SYSTEM_TIME x` deletes a table's history before `x` at once, whatever the retention.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The shortest bearer token `server.auth_tokens` accepts.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Storage settings.
    pub database: DatabaseConfig,
    /// The gRPC server.
    pub server: ServerConfig,
    /// Feature switches.
    pub features: FeaturesConfig,
    /// What one statement may use (`limits:`); see [`chrono_sql::Limits`].
    pub limits: chrono_sql::Limits,
}

/// Where the versioned store lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// RocksDB in `data_file` (one machine).
    #[default]
    Rocksdb,
    /// A replicated etcd cluster (`database.etcd`); `data_file` keeps only local files
    /// (the estimator's reports).
    Etcd,
}

/// `database.etcd:` — see `chrono_etcd::EtcdOptions` for what each key does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EtcdConfig {
    /// Client URLs of the members.
    pub endpoints: Vec<String>,
    /// Prefix of every key of this database.
    pub prefix: String,
    /// Time for one request, retries included (ms).
    pub request_timeout_ms: u64,
    /// Time to connect (ms).
    pub connect_timeout_ms: u64,
    /// Most operations in one commit (at most the cluster's `--max-txn-ops`).
    pub max_txn_ops: usize,
    /// Most bytes in one commit (below the cluster's `--max-request-bytes`).
    pub max_txn_bytes: usize,
    /// Keys per page of a scan.
    pub page_size: i64,
    /// Lifetime of the writer's lease without keep-alives (s).
    pub lock_ttl_secs: i64,
    /// How long opening waits for another server's lock (ms).
    pub lock_wait_ms: u64,
    /// User name, when the cluster has authentication on.
    pub user: Option<String>,
    /// Its password.
    pub password: Option<String>,
    /// The CA of the members' certificates, PEM (relative to the config file): TLS on.
    pub ca_file: Option<PathBuf>,
    /// This client's certificate, PEM, for clusters that check clients.
    pub cert_file: Option<PathBuf>,
    /// Its key, PEM.
    pub key_file: Option<PathBuf>,
    /// Several servers write this database at the same time (no writer lock; commits are
    /// ordered by a compare-and-set on the newest commit).
    pub concurrent_servers: bool,
    /// With concurrent servers: how often a server looks for the others' commits, so its
    /// change streams deliver them (ms).
    pub poll_ms: u64,
}

impl Default for EtcdConfig {
    fn default() -> Self {
        Self {
            endpoints: vec!["http://127.0.0.1:2379".into()],
            prefix: "chronodb/".into(),
            request_timeout_ms: 10_000,
            connect_timeout_ms: 5_000,
            max_txn_ops: 10_000,
            max_txn_bytes: 12 << 20,
            page_size: 1_000,
            lock_ttl_secs: 10,
            lock_wait_ms: 30_000,
            user: None,
            password: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            concurrent_servers: false,
            poll_ms: 50,
        }
    }
}

/// `database:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `rocksdb` (the default) or `etcd`.
    pub engine: EngineKind,
    /// The cluster, for `engine: etcd`.
    pub etcd: EtcdConfig,
    /// The database directory.
    pub data_file: PathBuf,
    /// Write through the write-ahead log.
    pub wal_enabled: bool,
    /// LZ4-compress data blocks.
    pub compression: bool,
    /// `fsync` at every commit.
    pub sync_writes: bool,
    /// RocksDB's block cache, shared by every column family, in MiB. Default: a sixteenth of
    /// the machine's memory, at least 64 and at most 2048 (see [`default_block_cache_mb`]).
    pub block_cache_mb: usize,
    /// Each column family's memtable size before a flush, in MiB.
    pub write_buffer_mb: usize,
    /// Bloom filter bits per key for point reads of the current state (0: no filters).
    pub bloom_bits_per_key: u32,
    /// RocksDB iterators kept idle per column family for the next read (0: none kept).
    pub idle_iterators: usize,
}

/// The block cache a database gets when its configuration names none: a sixteenth of the
/// machine's memory (`MemTotal` of `/proc/meminfo`), at least 64 MiB and at most 2 GiB, so
/// the index and filter blocks of a table of millions of rows stay cached. RocksDB takes
/// the memory only as blocks are read.
pub fn default_block_cache_mb() -> usize {
    let total_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        })
        .map(|kb| kb / 1024);
    total_mb.map_or(64, |mb| (mb / 16).clamp(64, 2048))
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            engine: EngineKind::Rocksdb,
            etcd: EtcdConfig::default(),
            data_file: PathBuf::from("chronodb.data"),
            wal_enabled: true,
            compression: true,
            sync_writes: false,
            block_cache_mb: default_block_cache_mb(),
            write_buffer_mb: 64,
            bloom_bits_per_key: 10,
            idle_iterators: 4,
        }
    }
}

/// `server:` — `chronodb serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on (loopback by default).
    pub listen: String,
    /// Bearer tokens by principal name; empty: no authentication.
    pub auth_tokens: std::collections::HashMap<String, String>,
    /// Largest request or response message, in bytes.
    pub max_message_bytes: usize,
    /// Longest a call may run, in milliseconds.
    pub statement_timeout_ms: u64,
    /// Concurrent streams per connection.
    pub max_concurrent_streams: u32,
    /// Seconds after which an explicit transaction with no calls is rolled back.
    pub transaction_idle_timeout_secs: u64,
    /// Serve TLS with this certificate chain and key (PEM files); absent: plain text.
    pub tls: Option<TlsConfig>,
    /// Also serve the WebSocket change monitor on this address (e.g. `127.0.0.1:8765`);
    /// absent: not served. Same tokens and message size limit as gRPC.
    pub websocket: Option<String>,
    /// Also serve HTTP (GraphQL at `/graphql`) on this address (e.g. `127.0.0.1:8080`);
    /// absent: not served.
    pub http: Option<String>,
    /// Also serve PostgreSQL's wire protocol on this address (e.g. `127.0.0.1:5432`);
    /// absent: not served. Same tokens (SCRAM-SHA-256: user = token name, password =
    /// token), TLS and statement timeout as gRPC.
    pub postgres: Option<String>,
    /// Most PostgreSQL connections open at once; more are refused (SQLSTATE 53300).
    pub postgres_max_connections: usize,
    /// Longest PostgreSQL protocol message a client may send, in bytes; a longer one
    /// closes its connection.
    pub postgres_max_message_bytes: usize,
    /// Longest a PostgreSQL client may take to send one message once it has begun it, in
    /// milliseconds; slower, its connection closes (a client that trickles bytes cannot
    /// hold a connection slot). A connection with no message begun may stay idle.
    pub postgres_message_timeout_ms: u64,
    /// Deepest GraphQL query accepted (nesting of fields).
    pub graphql_max_depth: usize,
    /// Largest GraphQL query accepted, by async-graphql's complexity (one per field).
    pub graphql_max_complexity: usize,
    /// Longest GraphQL query text accepted, in bytes.
    pub graphql_max_query_bytes: usize,
    /// Deepest nesting of brackets (lists, input objects, arguments, selections) in a
    /// GraphQL query text; checked before parsing.
    pub graphql_max_nesting: usize,
    /// Most fields one GraphQL query selects, aliases and expanded fragments included.
    pub graphql_max_selections: usize,
    /// Most values (rows × fields selected) one GraphQL answer holds.
    pub graphql_max_result_values: usize,
    /// Rows a GraphQL list field returns when the query gives no `limit`.
    pub graphql_default_limit: u64,
    /// Largest `limit` a GraphQL list field takes.
    pub graphql_max_limit: u64,
    /// Origins (`scheme://host[:port]`) whose pages may open WebSockets and send requests
    /// that change state; a page of the server's own origin always may. `"*"`: any.
    pub allowed_origins: Vec<String>,
    /// Host names the HTTP and WebSocket servers answer to besides IP addresses and
    /// `localhost` (DNS rebinding protection). `"*"`: any.
    pub allowed_hosts: Vec<String>,
    /// Most HTTP and WebSocket connections open at once, per listener; more are closed
    /// at once. Kept below the process's open-file limit.
    pub http_max_connections: usize,
    /// Longest an HTTP client may take to send a request's headers, in milliseconds.
    pub http_header_timeout_ms: u64,
    /// An HTTP or WebSocket connection that sends and receives nothing for this many
    /// seconds is closed (WebSocket connections are pinged well before).
    pub http_idle_timeout_secs: u64,
    /// Most subscriptions one WebSocket connection holds at once (monitor and GraphQL).
    pub ws_max_subscriptions: usize,
    /// Most reads of the stored history for change-feed replays at once, server-wide;
    /// more wait their turn.
    pub max_concurrent_replays: usize,
    /// With the audit trail off (a replay then scans the versions and holds what it
    /// found): most row changes one replay holds; a subscription from further back is
    /// refused with an error naming this key (resume from a later time). With the audit
    /// trail on, replays stream a batch at a time and have no such limit.
    pub max_replay_changes: usize,
}

/// The principal whose token is `given`, comparing every token in constant time (how long
/// the check takes says nothing about how much of a token was right, or which matched).
pub fn match_token(
    tokens: &std::collections::HashMap<String, String>,
    given: &str,
) -> Option<String> {
    let mut matched: Option<&String> = None;
    for (name, t) in tokens {
        if bool::from(subtle::ConstantTimeEq::ct_eq(
            t.as_bytes(),
            given.as_bytes(),
        )) {
            matched = Some(name);
        }
    }
    matched.cloned()
}

/// `server.tls:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM (relative to the config file).
    pub cert_file: PathBuf,
    /// The private key, PEM (relative to the config file).
    pub key_file: PathBuf,
}

impl ServerConfig {
    /// Refuses tokens too short to resist guessing (an empty one included).
    pub fn check_tokens(&self) -> Result<()> {
        for (principal, token) in &self.auth_tokens {
            if token.chars().count() < MIN_TOKEN_CHARS {
                return Err(Error::Config(format!(
                    "server.auth_tokens: the token of {principal} has {} characters; a token \
                     needs at least {MIN_TOKEN_CHARS} (e.g. 32 random hex digits)",
                    token.chars().count()
                )));
            }
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:50051".into(),
            auth_tokens: std::collections::HashMap::new(),
            max_message_bytes: 64 << 20,
            statement_timeout_ms: 30_000,
            max_concurrent_streams: 256,
            transaction_idle_timeout_secs: 60,
            tls: None,
            websocket: None,
            http: None,
            postgres: None,
            postgres_max_connections: 256,
            postgres_max_message_bytes: 64 << 20,
            postgres_message_timeout_ms: 60_000,
            graphql_max_depth: 16,
            graphql_max_complexity: 1000,
            graphql_max_query_bytes: 100_000,
            graphql_max_nesting: 64,
            graphql_max_selections: 2_000,
            graphql_max_result_values: 200_000,
            graphql_default_limit: 1_000,
            graphql_max_limit: 10_000,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            http_max_connections: 512,
            http_header_timeout_ms: 10_000,
            http_idle_timeout_secs: 300,
            ws_max_subscriptions: 64,
            max_concurrent_replays: 4,
            max_replay_changes: 100_000,
        }
    }
}

/// `features:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FeaturesConfig {
    /// `time_travel:`
    pub time_travel: TimeTravelConfig,
    /// `ml_optimizer:`
    pub ml_optimizer: MlOptimizerConfig,
    /// `audit:`
    pub audit: AuditConfig,
}

/// `features.audit:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Keep the audit trail (default on). Off, commits are not audited and the audit
    /// commands refuse to run; a trail started later covers only what follows.
    pub enabled: bool,
    /// A file holding the hex Ed25519 seed that signs checkpoints (relative to the config
    /// file); `chronodb audit keygen --out FILE` makes one.
    pub signing_key_file: Option<PathBuf>,
    /// Where the running database writes signed checkpoints (relative to the config file;
    /// none: it writes none). Needs `signing_key_file`.
    pub checkpoint_dir: Option<PathBuf>,
    /// A checkpoint every this many commits.
    pub checkpoint_every: u64,
}

/// `features.time_travel:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeTravelConfig {
    /// Allow `AS OF` and `FOR SYSTEM_TIME`.
    pub enabled: bool,
    /// How long history is kept, in days (0: forever); see the module docs.
    pub retention_days: u32,
    /// Seconds between two collections by `chronodb serve` (at least 1).
    pub gc_interval_secs: u64,
    /// Per table (by name, case-insensitively): how long its history is kept, in days (0:
    /// forever), instead of `retention_days`.
    pub table_retention_days: std::collections::BTreeMap<String, u32>,
}

impl Default for TimeTravelConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            retention_days: 365,
            gc_interval_secs: 3600,
            table_retention_days: std::collections::BTreeMap::new(),
        }
    }
}

/// `features.ml_optimizer:`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MlOptimizerConfig {
    /// Use the learned estimator (when it is better than the statistics baseline).
    pub enabled: bool,
    /// Feedback records on a table between retrainings.
    pub training_interval: u64,
    /// The fraction of a table's analyzed rows that, once inserted, updated or deleted,
    /// makes the table be analyzed (and its model retrained) again; 0: never.
    pub reanalyze_fraction: f64,
    /// Rows changed on top of `reanalyze_fraction` before a table is analyzed again (so a
    /// small table updated by every transaction is not analyzed again and again).
    pub reanalyze_min_rows: u64,
    /// Threads a training may use (libtorch's, process-wide); at least 1.
    pub threads: usize,
    /// Longest one training may run, in milliseconds (the training inside `ANALYZE`
    /// included: it then returns within about this long); 0: no limit.
    pub training_budget_ms: u64,
}

impl Default for MlOptimizerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            training_interval: 1000,
            reanalyze_fraction: 0.2,
            reanalyze_min_rows: 1000,
            threads: 1,
            training_budget_ms: 10_000,
        }
    }
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            signing_key_file: None,
            checkpoint_dir: None,
            checkpoint_every: 1000,
        }
    }
}

impl Config {
    /// The defaults, with the database in `dir`.
    pub fn with_data_dir(dir: impl Into<PathBuf>) -> Self {
        let mut c = Config::default();
        c.database.data_file = dir.into();
        c
    }

    /// Parses YAML text. Relative paths stay relative.
    pub fn from_yaml(text: &str) -> Result<Config> {
        let config: Config =
            serde_yaml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads a file; a relative `data_file` is taken relative to the file's folder.
    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        let mut config = Config::from_yaml(&text).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", path.display())),
            other => other,
        })?;
        if let Some(parent) = path.parent() {
            if config.database.data_file.is_relative() {
                config.database.data_file = parent.join(&config.database.data_file);
            }
            let audit = &mut config.features.audit;
            for file in [&mut audit.signing_key_file, &mut audit.checkpoint_dir]
                .into_iter()
                .flatten()
            {
                if file.is_relative() {
                    *file = parent.join(&*file);
                }
            }
            let etcd = &mut config.database.etcd;
            for file in [&mut etcd.ca_file, &mut etcd.cert_file, &mut etcd.key_file]
                .into_iter()
                .flatten()
            {
                if file.is_relative() {
                    *file = parent.join(&*file);
                }
            }
            if let Some(tls) = &mut config.server.tls {
                for file in [&mut tls.cert_file, &mut tls.key_file] {
                    if file.is_relative() {
                        *file = parent.join(&*file);
                    }
                }
            }
        }
        Ok(config)
    }

    /// True when the server would accept unauthenticated calls from other machines.
    pub fn open_to_the_network(&self) -> bool {
        self.server.auth_tokens.is_empty()
            && self
                .server
                .listen
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|a| !a.ip().is_loopback())
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<()> {
        self.limits
            .validate()
            .map_err(|e| Error::Config(e.to_string()))?;
        let db = &self.database;
        for (key, value, min, max) in [
            ("write_buffer_mb", db.write_buffer_mb, 1, 4096),
            ("block_cache_mb", db.block_cache_mb, 0, 1 << 20),
            ("bloom_bits_per_key", db.bloom_bits_per_key as usize, 0, 64),
            ("idle_iterators", db.idle_iterators, 0, 1024),
        ] {
            if !(min..=max).contains(&value) {
                return Err(Error::Config(format!(
                    "database.{key} must be between {min} and {max}, not {value}"
                )));
            }
        }
        if self.database.data_file.as_os_str().is_empty() {
            return Err(Error::Config("database.data_file must not be empty".into()));
        }
        if self.server.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(Error::Config(format!(
                "server.listen must be an address like 127.0.0.1:50051, not {}",
                self.server.listen
            )));
        }
        self.server.check_tokens()?;
        let etcd = &self.database.etcd;
        if self.database.engine == EngineKind::Etcd {
            if etcd.endpoints.is_empty() {
                return Err(Error::Config(
                    "database.etcd.endpoints is empty: name at least one member".into(),
                ));
            }
            if etcd.max_txn_ops == 0 || etcd.page_size <= 0 || etcd.lock_ttl_secs <= 0 {
                return Err(Error::Config(
                    "database.etcd.max_txn_ops, page_size and lock_ttl_secs must be at least 1"
                        .into(),
                ));
            }
            if etcd.user.is_some() != etcd.password.is_some() {
                return Err(Error::Config(
                    "database.etcd.user and database.etcd.password go together".into(),
                ));
            }
            if etcd.cert_file.is_some() != etcd.key_file.is_some() {
                return Err(Error::Config(
                    "database.etcd.cert_file and database.etcd.key_file go together".into(),
                ));
            }
            if etcd.cert_file.is_some() && etcd.ca_file.is_none() {
                return Err(Error::Config(
                    "database.etcd.cert_file needs database.etcd.ca_file (TLS)".into(),
                ));
            }
        }
        let audit = &self.features.audit;
        if audit.checkpoint_dir.is_some() && audit.signing_key_file.is_none() {
            return Err(Error::Config(
                "features.audit.checkpoint_dir needs features.audit.signing_key_file (chronodb audit keygen makes one)".into(),
            ));
        }
        if audit.checkpoint_every == 0 {
            return Err(Error::Config(
                "features.audit.checkpoint_every must be at least 1".into(),
            ));
        }
        let server = &self.server;
        for (key, value) in [
            (
                "graphql_max_query_bytes",
                server.graphql_max_query_bytes as u64,
            ),
            ("graphql_max_nesting", server.graphql_max_nesting as u64),
            (
                "graphql_max_selections",
                server.graphql_max_selections as u64,
            ),
            (
                "graphql_max_result_values",
                server.graphql_max_result_values as u64,
            ),
            ("graphql_default_limit", server.graphql_default_limit),
            ("graphql_max_limit", server.graphql_max_limit),
            ("http_max_connections", server.http_max_connections as u64),
            (
                "postgres_max_connections",
                server.postgres_max_connections as u64,
            ),
            (
                "postgres_max_message_bytes",
                server.postgres_max_message_bytes as u64,
            ),
            (
                "postgres_message_timeout_ms",
                server.postgres_message_timeout_ms,
            ),
            ("http_header_timeout_ms", server.http_header_timeout_ms),
            ("http_idle_timeout_secs", server.http_idle_timeout_secs),
            ("ws_max_subscriptions", server.ws_max_subscriptions as u64),
            (
                "max_concurrent_replays",
                server.max_concurrent_replays as u64,
            ),
            ("max_replay_changes", server.max_replay_changes as u64),
        ] {
            if value == 0 {
                return Err(Error::Config(format!("server.{key} must be at least 1")));
            }
        }
        if server.graphql_default_limit > server.graphql_max_limit {
            return Err(Error::Config(format!(
                "server.graphql_default_limit ({}) is above server.graphql_max_limit ({})",
                server.graphql_default_limit, server.graphql_max_limit
            )));
        }
        if self.server.statement_timeout_ms == 0 || self.server.transaction_idle_timeout_secs == 0 {
            return Err(Error::Config(
                "server.statement_timeout_ms and server.transaction_idle_timeout_secs must be at least 1".into(),
            ));
        }
        let fraction = self.features.ml_optimizer.reanalyze_fraction;
        if !(0.0..=100.0).contains(&fraction) {
            return Err(Error::Config(format!(
                "features.ml_optimizer.reanalyze_fraction must be between 0 and 100, not {fraction}"
            )));
        }
        if self.features.ml_optimizer.training_interval == 0 {
            return Err(Error::Config(
                "features.ml_optimizer.training_interval must be at least 1".into(),
            ));
        }
        if self.features.ml_optimizer.threads == 0 {
            return Err(Error::Config(
                "features.ml_optimizer.threads must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

impl EtcdConfig {
    /// The engine's options.
    #[cfg(feature = "etcd")]
    pub fn options(&self) -> chrono_etcd::EtcdOptions {
        chrono_etcd::EtcdOptions {
            endpoints: self.endpoints.clone(),
            prefix: self.prefix.clone(),
            request_timeout_ms: self.request_timeout_ms,
            connect_timeout_ms: self.connect_timeout_ms,
            max_txn_ops: self.max_txn_ops,
            max_txn_bytes: self.max_txn_bytes,
            page_size: self.page_size,
            lock_ttl_secs: self.lock_ttl_secs,
            lock_wait_ms: self.lock_wait_ms,
            user: self.user.clone().zip(self.password.clone()),
            tls: self.ca_file.clone().map(|ca_file| chrono_etcd::TlsFiles {
                ca_file,
                cert_file: self.cert_file.clone(),
                key_file: self.key_file.clone(),
            }),
            concurrent_servers: self.concurrent_servers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_file_parses_and_missing_keys_take_defaults() {
        let c = Config::from_yaml(
            "database:\n  data_file: \"chronodb.data\"\n  wal_enabled: true\n  compression: true\n\
             features:\n  time_travel:\n    enabled: true\n    retention_days: 365\n  \
             ml_optimizer:\n    enabled: true\n    training_interval: 1000\n",
        )
        .unwrap();
        assert_eq!(c, Config::default());
        let c = Config::from_yaml("database:\n  compression: false\n").unwrap();
        assert!(!c.database.compression);
        assert!(c.database.wal_enabled);
    }

    #[test]
    fn storage_sizes_are_checked_and_named() {
        let c = Config::from_yaml(
            "database:\n  block_cache_mb: 8\n  write_buffer_mb: 16\n  bloom_bits_per_key: 0\n",
        )
        .unwrap();
        c.validate().unwrap();
        assert_eq!(
            (
                c.database.block_cache_mb,
                c.database.write_buffer_mb,
                c.database.bloom_bits_per_key
            ),
            (8, 16, 0)
        );
        for (yaml, key) in [
            ("write_buffer_mb: 0", "database.write_buffer_mb"),
            ("write_buffer_mb: 5000", "database.write_buffer_mb"),
            ("block_cache_mb: 2000000", "database.block_cache_mb"),
            ("bloom_bits_per_key: 100", "database.bloom_bits_per_key"),
            ("idle_iterators: 5000", "database.idle_iterators"),
        ] {
            let e = Config::from_yaml(&format!("database:\n  {yaml}\n"))
                .and_then(|c| c.validate())
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{yaml}: {e}");
        }
        // A database opens with the sizes it was given.
        let dir = tempfile::tempdir().unwrap();
        let mut c = Config::with_data_dir(dir.path());
        c.database.write_buffer_mb = 1;
        c.database.block_cache_mb = 1;
        c.database.bloom_bits_per_key = 0;
        let db = crate::ChronoDb::open_with_config(c).unwrap();
        let mut s = db.session();
        s.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)")
            .unwrap();
        s.execute("INSERT INTO t VALUES (1, 'one')").unwrap();
        assert!(matches!(
            s.execute("SELECT v FROM t WHERE id = 1").unwrap().pop(),
            Some(crate::Outcome::Rows { rows, .. }) if rows.len() == 1
        ));
    }

    #[test]
    fn short_or_empty_tokens_are_refused_and_open_servers_are_noticed() {
        for token in ["", "short", "fifteen-chars!!"] {
            let mut c = Config::default();
            c.server.auth_tokens.insert("alice".into(), token.into());
            let e = c.validate().unwrap_err().to_string();
            assert!(
                e.contains("server.auth_tokens") && e.contains("alice"),
                "{e}"
            );
        }
        let mut c = Config::default();
        c.server
            .auth_tokens
            .insert("alice".into(), "0123456789abcdef0123".into());
        c.validate().unwrap();
        assert!(
            !Config::default().open_to_the_network(),
            "loopback by default"
        );
        let mut open = Config::default();
        open.server.listen = "0.0.0.0:50051".into();
        assert!(open.open_to_the_network());
        open.server
            .auth_tokens
            .insert("alice".into(), "0123456789abcdef0123".into());
        assert!(!open.open_to_the_network());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = Config::from_yaml("database:\n  wal: true\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `wal`"), "{e}");
        let e = Config::from_yaml("features:\n  time_travel:\n    retention_days: soon\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("retention_days"), "{e}");
        let e = Config::from_yaml("features:\n  ml_optimizer:\n    training_interval: 0\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("training_interval"), "{e}");
    }

    /// Every configuration key the code's messages and the documentation name exists: a
    /// recommendation or an error that names a key names one a user can set.
    #[test]
    fn every_key_named_in_messages_and_docs_exists() {
        let schema = serde_json::to_value(Config::default()).unwrap();
        let exists = |path: &str| {
            let mut at = &schema;
            for part in path.split('.') {
                match at.get(part) {
                    Some(next) => at = next,
                    // Below a map the user fills (table_retention_days: {orders: 30}).
                    None => return at.is_object() && at.as_object().is_some_and(|m| m.is_empty()),
                }
            }
            true
        };
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut files = vec![root.join("README.md")];
        for dir in [
            "docs",
            "chrono-server/src",
            "chrono-server/src/cli",
            "chrono-server/src/grpc",
            "chrono-server/src/graphql",
        ] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "md" || e == "rs") {
                    files.push(path);
                }
            }
        }
        let mut checked = 0;
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for section in ["database.", "server.", "features.", "limits."] {
                for (at, _) in text.match_indices(section) {
                    let before = text[..at].chars().next_back();
                    if !matches!(before, Some(' ' | '`' | '(' | '"' | '\n' | '[') | None) {
                        continue;
                    }
                    // In code, only what a user reads: comments and string literals.
                    let line = &text[text[..at].rfind('\n').map_or(0, |i| i + 1)..at];
                    let code = file.extension().is_some_and(|e| e == "rs");
                    if code && !line.contains("//") && line.matches('"').count() % 2 == 0 {
                        continue;
                    }
                    let key: String = text[at..]
                        .chars()
                        .take_while(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '.'
                        })
                        .collect();
                    let key = key.trim_end_matches('.');
                    // A family of keys (`server.graphql_*`).
                    if text[at + key.len()..].starts_with('*') {
                        continue;
                    }
                    let file_name = [
                        ".rs", ".md", ".pem", ".key", ".yaml", ".json", ".html", ".png",
                    ]
                    .iter()
                    .any(|e| key.ends_with(e));
                    if key.len() <= section.len() || file_name {
                        continue;
                    }
                    checked += 1;
                    assert!(
                        exists(key),
                        "{} names {key}, which is no configuration key",
                        file.display()
                    );
                }
            }
        }
        assert!(checked > 50, "only {checked} keys found");
    }
}
