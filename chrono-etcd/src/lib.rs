//! ChronoDB's versioned store on a replicated [etcd](https://etcd.io) cluster: an
//! [`Engine`] for `chrono-storage`, so the MVCC store, the SQL engine and the audit trail run
//! unchanged on a Raft-replicated, linearizable key-value store that survives the loss of a
//! minority of its members.
//!
//! ```text
//! etcd key = prefix ‖ family tag ‖ ChronoDB key     (tags: m meta, v versions, l latest, a audit)
//! ```
//!
//! - **Reads** are linearizable range requests. A [`Cursor`] reads pages of
//!   [`EtcdOptions::page_size`] keys, every page at the revision of its first one, so a scan
//!   sees one consistent snapshot; the ordered key encoding is unchanged, so `AS OF` stays
//!   one seek.
//! - **A commit's write batch is one etcd transaction**, guarded by this server's lock
//!   (below). etcd bounds a transaction (`--max-txn-ops`, 128 by default, and
//!   `--max-request-bytes`, 1.5 MiB): a batch over [`EtcdOptions::max_txn_ops`] or
//!   [`EtcdOptions::max_txn_bytes`] is refused with an error naming the key, before anything
//!   is sent. Splitting a batch into intents flipped visible by a second transaction would
//!   make every read of every engine resolve intents; a database that needs commits larger
//!   than the cluster's request limit has outgrown etcd (its storage quota is a few GB) —
//!   that is TiKV's size, behind the same trait. Set the cluster's limits and these keys
//!   together (`scripts/etcd-cluster.sh` starts members with room for 10,000 operations and
//!   16 MiB per request).
//! - **One writer per database, fenced.** At open the engine takes an etcd lock
//!   (`prefix ‖ "!lock"`) under a lease it keeps alive; every write transaction compares the
//!   lock key's create revision, so a server whose lease expired (partitioned, paused) can
//!   no longer write, even if it does not know yet. Another server opening the same prefix
//!   waits for the lock ([`EtcdOptions::lock_wait_ms`]) and takes over when the first one
//!   stops or its lease expires: a standby.
//! - **Or several writers** ([`EtcdOptions::concurrent_servers`]): no lock; the engine is
//!   [`Engine::shared`] and the store orders commits with [`Engine::write_if`] on the
//!   stored newest commit (a compare on the key's value in the same etcd transaction).
//! - **Retention** ([`Engine::compact`]) deletes the versions the GC horizons let go, in
//!   transactions of at most `max_txn_ops` deletes; etcd's own history of revisions is
//!   compacted by the cluster (`--auto-compaction-retention`).
//!
//! Calls are blocking for the store and run on a small runtime the engine owns, so they may
//! come from any thread, inside a Tokio runtime or not.

pub mod cluster;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono_storage::{
    BatchOp, ColumnFamily, Cursor, Engine, Error, FamilyState, Horizons, Result, VersionGc,
    WriteBatch,
};
use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, KeyValue, Txn, TxnOp};
use parking_lot::RwLock;

/// How the engine reaches its cluster (`database.etcd` in `config.yaml`).
#[derive(Debug, Clone, PartialEq)]
pub struct EtcdOptions {
    /// Client URLs of the cluster's members (`http://127.0.0.1:2379`, …).
    pub endpoints: Vec<String>,
    /// Prefix of every key the database writes: several databases share a cluster under
    /// different prefixes.
    pub prefix: String,
    /// Time one request may take, retries included, in milliseconds.
    pub request_timeout_ms: u64,
    /// Time to connect to the cluster, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Most operations in one commit (the cluster's `--max-txn-ops` or less).
    pub max_txn_ops: usize,
    /// Most bytes of keys and values in one commit (below the cluster's
    /// `--max-request-bytes`).
    pub max_txn_bytes: usize,
    /// Keys per page of a scan.
    pub page_size: i64,
    /// Seconds the writer's lease lives without a keep-alive: how long a standby waits
    /// after the writer vanished.
    pub lock_ttl_secs: i64,
    /// How long opening waits for another server's lock, in milliseconds.
    pub lock_wait_ms: u64,
    /// User name and password, when the cluster has authentication on.
    pub user: Option<(String, String)>,
    /// PEM files for TLS: the cluster's CA, and this client's certificate and key (both or
    /// neither).
    pub tls: Option<TlsFiles>,
    /// Several servers write the database at the same time (no writer lock): commits are
    /// ordered by a compare-and-set on the stored newest commit, see the module docs.
    pub concurrent_servers: bool,
}

/// PEM files for a TLS connection to the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    /// The CA that signed the members' certificates.
    pub ca_file: std::path::PathBuf,
    /// This client's certificate, for clusters that check clients.
    pub cert_file: Option<std::path::PathBuf>,
    /// Its key.
    pub key_file: Option<std::path::PathBuf>,
}

impl Default for EtcdOptions {
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
            tls: None,
            concurrent_servers: false,
        }
    }
}

fn tag(cf: ColumnFamily) -> u8 {
    match cf {
        ColumnFamily::Meta => b'm',
        ColumnFamily::Versions => b'v',
        ColumnFamily::Latest => b'l',
        ColumnFamily::Audit => b'a',
    }
}

/// What the engine and its cursors share.
struct Shared {
    client: Client,
    runtime: tokio::runtime::Handle,
    options: EtcdOptions,
    /// The lock key this server holds, and its create revision (the fence); `None` with
    /// concurrent servers.
    fence: Option<(Vec<u8>, i64)>,
    /// Requests sent to the cluster (retries not counted), for measurements.
    requests: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn family_prefix(&self, cf: ColumnFamily) -> Vec<u8> {
        let mut k = Vec::with_capacity(self.options.prefix.len() + 1);
        k.extend_from_slice(self.options.prefix.as_bytes());
        k.push(tag(cf));
        k
    }

    fn full_key(&self, cf: ColumnFamily, key: &[u8]) -> Vec<u8> {
        let mut k = self.family_prefix(cf);
        k.extend_from_slice(key);
        k
    }

    /// The first key after every key of `cf`.
    fn family_end(&self, cf: ColumnFamily) -> Vec<u8> {
        let mut k = self.family_prefix(cf);
        if let Some(last) = k.last_mut() {
            *last += 1;
        }
        k
    }

    /// Runs `call` on the engine's runtime and waits for it, retrying failed attempts
    /// (a member down, a leader election) until `request_timeout_ms` has passed. Every call
    /// made through here is idempotent: reads, and write transactions whose puts and
    /// deletes give the same state when applied twice.
    fn call<T, F, Fut>(&self, what: &str, call: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(Client) -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<T, etcd_client::Error>> + Send,
    {
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let client = self.client.clone();
        let timeout = Duration::from_millis(self.options.request_timeout_ms);
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.runtime.spawn(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            let mut pause = Duration::from_millis(20);
            let result = loop {
                let attempt = tokio::time::timeout_at(deadline, call(client.clone())).await;
                match attempt {
                    Ok(Ok(v)) => break Ok(v),
                    Ok(Err(e))
                        if transient(&e) && tokio::time::Instant::now() + pause < deadline =>
                    {
                        tracing::debug!(error = %e, "etcd request failed; retrying");
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(Duration::from_millis(500));
                    }
                    Ok(Err(e)) => break Err(e.to_string()),
                    Err(_) => break Err("no answer in time".to_string()),
                }
            };
            let _ = tx.send(result);
        });
        match rx.recv() {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Error::Engine(format!(
                "etcd {what} failed within database.etcd.request_timeout_ms ({} ms): {e}",
                self.options.request_timeout_ms
            ))),
            Err(_) => Err(Error::Engine(format!("etcd {what}: the engine is closed"))),
        }
    }

    /// Reads up to `page_size` keys of `[from, end)` at `revision` (0: the newest).
    fn page(
        &self,
        from: Vec<u8>,
        end: Vec<u8>,
        revision: i64,
    ) -> Result<(Vec<KeyValue>, bool, i64)> {
        let limit = self.options.page_size;
        self.call("range read", move |mut c| {
            let (from, end) = (from.clone(), end.clone());
            async move {
                let mut options = GetOptions::new().with_range(end).with_limit(limit);
                if revision > 0 {
                    options = options.with_revision(revision);
                }
                let mut r = c.get(from, Some(options)).await?;
                let rev = r.header().map_or(0, |h| h.revision());
                let more = r.more();
                Ok((r.take_kvs(), more, rev))
            }
        })
    }

    /// Applies `ops` in one transaction if `when` holds (and the fence, if this server
    /// holds the writer lock); false when `when` did not hold.
    fn apply(&self, ops: Vec<TxnOp>, when: Vec<Compare>) -> Result<bool> {
        let mut compares = when.clone();
        let fenced = self.fence.clone();
        if let Some((lock, rev)) = &fenced {
            compares.push(Compare::create_revision(
                lock.clone(),
                CompareOp::Equal,
                *rev,
            ));
        }
        let (ok, fence_held) = self.call("write", move |mut c| {
            let txn = Txn::new()
                .when(compares.clone())
                .and_then(ops.clone())
                // When the transaction does not apply, tell the fence from `when`.
                .or_else(match &fenced {
                    Some((lock, _)) => vec![TxnOp::get(lock.clone(), None)],
                    None => vec![],
                });
            let fenced = fenced.clone();
            async move {
                let r = c.txn(txn).await?;
                if r.succeeded() {
                    return Ok((true, true));
                }
                let held = match &fenced {
                    None => true,
                    Some((_, rev)) => r.op_responses().into_iter().any(|op| match op {
                        etcd_client::TxnOpResponse::Get(g) => g
                            .kvs()
                            .first()
                            .is_some_and(|kv| kv.create_revision() == *rev),
                        _ => false,
                    }),
                };
                Ok((false, held))
            }
        })?;
        if !fence_held {
            return Err(Error::Engine(format!(
                "this server no longer holds the database's etcd lock (prefix {:?}; its lease \
                 expired, or another server took over): nothing was written",
                self.options.prefix
            )));
        }
        Ok(ok)
    }
}

/// Whether a failed request may succeed when sent again: the cluster or a member was
/// unreachable or busy (an election, a restart), not a refusal of the request itself.
fn transient(e: &etcd_client::Error) -> bool {
    use tonic::Code;
    match e {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        // A member that goes away mid-request closes its connection, which the client
        // reports as a cancelled call: as transient as the member being unavailable.
        etcd_client::Error::GRpcStatus(s) => matches!(
            s.code(),
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::Unknown
                | Code::Aborted
                | Code::Cancelled
        ),
        _ => false,
    }
}

/// A ChronoDB [`Engine`] on an etcd cluster. See the module documentation.
pub struct EtcdEngine {
    shared: Arc<Shared>,
    horizons: RwLock<Arc<Horizons>>,
    /// Owns the runtime the calls run on (shut down without waiting when dropped).
    runtime: Option<tokio::runtime::Runtime>,
    /// The writer lock's lease (none with concurrent servers).
    lease: Option<i64>,
}

impl EtcdEngine {
    /// Connects to the cluster and takes the database's writer lock.
    pub fn open(options: EtcdOptions) -> Result<EtcdEngine> {
        if options.endpoints.is_empty() {
            return Err(Error::InvalidInput(
                "database.etcd.endpoints is empty: name at least one member".into(),
            ));
        }
        if options.max_txn_ops == 0 || options.page_size <= 0 || options.lock_ttl_secs <= 0 {
            return Err(Error::InvalidInput(
                "database.etcd.max_txn_ops, page_size and lock_ttl_secs must be positive".into(),
            ));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("chronodb-etcd")
            .enable_all()
            .build()
            .map_err(|e| Error::Engine(format!("cannot start the etcd client's runtime: {e}")))?;
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(Duration::from_millis(options.connect_timeout_ms))
            .with_timeout(Duration::from_millis(options.request_timeout_ms))
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5));
        if let Some((user, password)) = &options.user {
            connect = connect.with_user(user.clone(), password.clone());
        }
        if let Some(tls) = &options.tls {
            connect = connect.with_tls(tls_options(tls)?);
        }
        let endpoints = options.endpoints.clone();
        let client = runtime
            .block_on(async {
                tokio::time::timeout(
                    Duration::from_millis(options.connect_timeout_ms),
                    Client::connect(endpoints, Some(connect)),
                )
                .await
            })
            .map_err(|_| {
                Error::Engine(format!(
                    "cannot reach etcd at {} within database.etcd.connect_timeout_ms",
                    options.endpoints.join(", ")
                ))
            })?
            .map_err(|e| {
                Error::Engine(format!(
                    "cannot connect to etcd at {}: {e}",
                    options.endpoints.join(", ")
                ))
            })?;
        let (lease, fence) = if options.concurrent_servers {
            (None, None)
        } else {
            let (lease, fence) = runtime.block_on(take_lock(client.clone(), &options))?;
            (Some(lease), Some(fence))
        };
        let shared = Arc::new(Shared {
            client,
            runtime: runtime.handle().clone(),
            options,
            fence,
            requests: std::sync::atomic::AtomicU64::new(0),
        });
        Ok(EtcdEngine {
            shared,
            horizons: RwLock::new(Arc::new(Horizons::default())),
            runtime: Some(runtime),
            lease,
        })
    }

    /// Requests sent to the cluster so far (each read, page, transaction; retries of one
    /// request not counted).
    pub fn requests(&self) -> u64 {
        self.shared
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The options it was opened with.
    pub fn options(&self) -> &EtcdOptions {
        &self.shared.options
    }

    /// The batch as etcd operations (the last change to a key only), within the size
    /// limits.
    fn ops(&self, batch: &WriteBatch) -> Result<Vec<TxnOp>> {
        let options = &self.shared.options;
        if batch.len() > options.max_txn_ops {
            return Err(Error::InvalidInput(format!(
                "a commit of {} operations is over database.etcd.max_txn_ops ({}): write fewer \
                 rows per transaction, or raise the cluster's --max-txn-ops and this key",
                batch.len(),
                options.max_txn_ops
            )));
        }
        // etcd refuses a transaction that names a key twice; the batch's last change to a
        // key is the one that counts.
        let mut last = std::collections::HashMap::with_capacity(batch.len());
        for (i, op) in batch.ops().iter().enumerate() {
            let (BatchOp::Put { cf, key, .. } | BatchOp::Delete { cf, key }) = op;
            last.insert((*cf, key.as_slice()), i);
        }
        let mut bytes = 0usize;
        let ops: Vec<TxnOp> = batch
            .ops()
            .iter()
            .enumerate()
            .filter(|(i, op)| {
                let (BatchOp::Put { cf, key, .. } | BatchOp::Delete { cf, key }) = op;
                last.get(&(*cf, key.as_slice())) == Some(i)
            })
            .map(|(_, op)| match op {
                BatchOp::Put { cf, key, value } => {
                    bytes += key.len() + value.len() + 8;
                    TxnOp::put(self.shared.full_key(*cf, key), value.clone(), None)
                }
                BatchOp::Delete { cf, key } => {
                    bytes += key.len() + 8;
                    TxnOp::delete(self.shared.full_key(*cf, key), None)
                }
            })
            .collect();
        if bytes > options.max_txn_bytes {
            return Err(Error::InvalidInput(format!(
                "a commit of {bytes} bytes is over database.etcd.max_txn_bytes ({}): write fewer \
                 rows per transaction, or raise the cluster's --max-request-bytes and this key",
                options.max_txn_bytes
            )));
        }
        Ok(ops)
    }

    /// Deletes the versions in `[start, end)` of the versions family that the GC horizons
    /// let go, in transactions of at most `max_txn_ops` deletes.
    fn collect(&self, start: &[u8], end: Option<&[u8]>) -> Result<()> {
        let mut gc = VersionGc::new(self.horizons.read().clone());
        let mut cursor = EtcdCursor::new(self.shared.clone(), ColumnFamily::Versions);
        if let Some(end) = end {
            cursor.end = self.shared.full_key(ColumnFamily::Versions, end);
        }
        cursor.seek(start);
        let mut doomed = Vec::new();
        while cursor.valid() {
            if !gc.keep(cursor.key()) {
                doomed.push(TxnOp::delete(
                    self.shared.full_key(ColumnFamily::Versions, cursor.key()),
                    None,
                ));
                if doomed.len() == self.shared.options.max_txn_ops {
                    self.shared.apply(std::mem::take(&mut doomed), vec![])?;
                }
            }
            cursor.next();
        }
        cursor.status()?;
        if !doomed.is_empty() {
            self.shared.apply(doomed, vec![])?;
        }
        Ok(())
    }
}

/// Grants the writer's lease, keeps it alive in the background, and takes the lock.
async fn take_lock(mut client: Client, options: &EtcdOptions) -> Result<(i64, (Vec<u8>, i64))> {
    let engine = |e: etcd_client::Error| Error::Engine(format!("etcd lock: {e}"));
    let lease = client
        .lease_grant(options.lock_ttl_secs, None)
        .await
        .map_err(engine)?
        .id();
    let (mut keeper, mut answers) = client.lease_keep_alive(lease).await.map_err(engine)?;
    let every = Duration::from_millis((options.lock_ttl_secs as u64 * 1000 / 3).max(100));
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if keeper.keep_alive().await.is_err() {
                tracing::warn!("the etcd lease of this server could not be renewed");
            }
            match answers.message().await {
                Ok(Some(_)) => {}
                // The stream ended (the engine is closing, or the lease is gone): stop.
                _ => break,
            }
        }
    });
    // `!` is no family's tag: the lock's keys never show up in a family's range.
    let name = format!("{}!lock", options.prefix).into_bytes();
    let wait = Duration::from_millis(options.lock_wait_ms);
    let holder_key = format!("{}!holder", options.prefix).into_bytes();
    let locked = tokio::time::timeout(
        wait,
        client.lock(
            name,
            Some(etcd_client::LockOptions::new().with_lease(lease)),
        ),
    )
    .await;
    let locked = match locked {
        Ok(Ok(locked)) => locked,
        // Waited out, here or by the cluster's own deadline: somebody holds it.
        Ok(Err(_)) | Err(_) => {
            let holder = client
                .get(holder_key.clone(), None)
                .await
                .ok()
                .and_then(|r| {
                    r.kvs()
                        .first()
                        .map(|kv| kv.value_str().unwrap_or("").to_string())
                })
                .filter(|h| !h.is_empty())
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            return Err(Error::Engine(format!(
                "another ChronoDB server{holder} holds the database at etcd prefix {:?} \
                 (waited database.etcd.lock_wait_ms, {} ms): stop it, reach the database \
                 through it (chronodb sql --connect HOST:PORT), or let several servers write \
                 at once with database.etcd.concurrent_servers: true",
                options.prefix, options.lock_wait_ms
            )));
        }
    };
    // Who holds it, for the error the next server gets; gone with the lease.
    let holder = format!(
        "pid {} on {}: {}",
        std::process::id(),
        std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "this host".into()),
        std::env::args().collect::<Vec<_>>().join(" ")
    );
    client
        .put(
            holder_key,
            holder,
            Some(etcd_client::PutOptions::new().with_lease(lease)),
        )
        .await
        .map_err(engine)?;
    let key = locked.key().to_vec();
    let r = client.get(key.clone(), None).await.map_err(engine)?;
    let rev = r
        .kvs()
        .first()
        .map(|kv| kv.create_revision())
        .ok_or_else(|| Error::Engine("etcd lock: the lock key is gone".into()))?;
    Ok((lease, (key, rev)))
}

fn tls_options(tls: &TlsFiles) -> Result<etcd_client::TlsOptions> {
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| {
            Error::InvalidInput(format!(
                "database.etcd.tls: cannot read {}: {e}",
                p.display()
            ))
        })
    };
    let mut options = etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(read(&tls.ca_file)?));
    match (&tls.cert_file, &tls.key_file) {
        (Some(c), Some(k)) => {
            options = options.identity(etcd_client::Identity::from_pem(read(c)?, read(k)?));
        }
        (None, None) => {}
        _ => {
            return Err(Error::InvalidInput(
                "database.etcd.tls: give both cert_file and key_file, or neither".into(),
            ));
        }
    }
    Ok(options)
}

impl Drop for EtcdEngine {
    fn drop(&mut self) {
        // Give the lock back at once, so a standby need not wait for the lease to expire.
        if let Some(lease) = self.lease {
            let _ = self.shared.call("lease revoke", move |mut c| async move {
                c.lease_revoke(lease).await.map(|_| ())
            });
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Engine for EtcdEngine {
    fn get(&self, cf: ColumnFamily, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let key = self.shared.full_key(cf, key);
        self.shared.call("read", move |mut c| {
            let key = key.clone();
            async move {
                let mut r = c.get(key, None).await?;
                Ok(r.take_kvs().pop().map(|kv| kv.into_key_value().1))
            }
        })
    }

    fn multi_get(&self, cf: ColumnFamily, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(keys.len());
        // One transaction of range reads per `max_txn_ops` keys: one round trip, one
        // revision.
        for chunk in keys.chunks(self.shared.options.max_txn_ops.max(1)) {
            let full: Vec<Vec<u8>> = chunk.iter().map(|k| self.shared.full_key(cf, k)).collect();
            let values = self.shared.call("read", move |mut c| {
                let txn = Txn::new().and_then(
                    full.iter()
                        .map(|k| TxnOp::get(k.clone(), None))
                        .collect::<Vec<_>>(),
                );
                async move {
                    let r = c.txn(txn).await?;
                    Ok(r.op_responses()
                        .into_iter()
                        .map(|op| match op {
                            etcd_client::TxnOpResponse::Get(mut g) => {
                                g.take_kvs().pop().map(|kv| kv.into_key_value().1)
                            }
                            _ => None,
                        })
                        .collect::<Vec<_>>())
                }
            })?;
            if values.len() != chunk.len() {
                return Err(Error::Engine(format!(
                    "etcd answered {} reads for {}",
                    values.len(),
                    chunk.len()
                )));
            }
            out.extend(values);
        }
        Ok(out)
    }

    fn cursor(&self, cf: ColumnFamily) -> Result<Box<dyn Cursor>> {
        Ok(Box::new(EtcdCursor::new(self.shared.clone(), cf)))
    }

    fn write(&self, batch: WriteBatch) -> Result<()> {
        let ops = self.ops(&batch)?;
        if ops.is_empty() {
            return Ok(());
        }
        self.shared.apply(ops, vec![]).map(|_| ())
    }

    fn shared(&self) -> bool {
        self.shared.options.concurrent_servers
    }

    fn write_if(
        &self,
        batch: WriteBatch,
        cf: ColumnFamily,
        key: &[u8],
        expected: Option<&[u8]>,
    ) -> Result<bool> {
        let ops = self.ops(&batch)?;
        let key = self.shared.full_key(cf, key);
        let when = match expected {
            Some(v) => Compare::value(key, CompareOp::Equal, v.to_vec()),
            // A key that was never written has version 0.
            None => Compare::version(key, CompareOp::Equal, 0),
        };
        self.shared.apply(ops, vec![when])
    }

    fn flush(&self) -> Result<()> {
        // An acknowledged etcd transaction is already on a quorum's disks.
        Ok(())
    }

    fn compact(&self) -> Result<()> {
        self.collect(&[], None)
    }

    fn compact_range(&self, cf: ColumnFamily, start: &[u8], end: &[u8]) -> Result<()> {
        if cf != ColumnFamily::Versions {
            return Ok(());
        }
        self.collect(start, Some(end))
    }

    fn state(&self) -> Vec<FamilyState> {
        ColumnFamily::ALL
            .iter()
            .filter_map(|&cf| {
                let (from, end) = (self.shared.family_prefix(cf), self.shared.family_end(cf));
                let keys = self
                    .shared
                    .call("count", move |mut c| {
                        let (from, end) = (from.clone(), end.clone());
                        async move {
                            let r = c
                                .get(
                                    from,
                                    Some(GetOptions::new().with_range(end).with_count_only()),
                                )
                                .await?;
                            Ok(r.count())
                        }
                    })
                    .ok()?;
                Some(FamilyState {
                    name: cf.name(),
                    keys: keys.max(0) as u64,
                    ..FamilyState::default()
                })
            })
            .collect()
    }

    fn set_gc_horizons(&self, horizons: Arc<Horizons>) {
        *self.horizons.write() = horizons;
    }
}

/// A cursor over one family: pages of keys, all read at the revision of the first page.
struct EtcdCursor {
    shared: Arc<Shared>,
    cf: ColumnFamily,
    strip: usize,
    end: Vec<u8>,
    revision: i64,
    page: Vec<KeyValue>,
    pos: usize,
    more: bool,
    /// What ended the scan early (kept as text: errors are not `Clone`).
    error: Option<String>,
}

impl EtcdCursor {
    fn new(shared: Arc<Shared>, cf: ColumnFamily) -> EtcdCursor {
        EtcdCursor {
            strip: shared.options.prefix.len() + 1,
            end: shared.family_end(cf),
            shared,
            cf,
            revision: 0,
            page: Vec::new(),
            pos: 0,
            more: false,
            error: None,
        }
    }

    fn fetch(&mut self, from: Vec<u8>) {
        match self.shared.page(from, self.end.clone(), self.revision) {
            Ok((page, more, revision)) => {
                if self.revision == 0 {
                    self.revision = revision;
                }
                self.page = page;
                self.more = more;
                self.pos = 0;
            }
            Err(e) => {
                self.page.clear();
                self.more = false;
                self.error = Some(match e {
                    Error::Engine(m) => m,
                    other => other.to_string(),
                });
            }
        }
    }
}

impl Cursor for EtcdCursor {
    fn seek(&mut self, key: &[u8]) {
        self.error = None;
        let from = self.shared.full_key(self.cf, key);
        self.fetch(from);
    }

    fn next(&mut self) {
        self.pos += 1;
        if self.pos >= self.page.len() && self.more {
            let mut from = self
                .page
                .last()
                .map(|kv| kv.key().to_vec())
                .unwrap_or_default();
            from.push(0);
            self.fetch(from);
        }
    }

    fn valid(&self) -> bool {
        self.pos < self.page.len()
    }

    fn key(&self) -> &[u8] {
        &self.page[self.pos].key()[self.strip..]
    }

    fn value(&self) -> &[u8] {
        self.page[self.pos].value()
    }

    fn status(&self) -> Result<()> {
        match &self.error {
            Some(e) => Err(Error::Engine(e.clone())),
            None => Ok(()),
        }
    }
}
