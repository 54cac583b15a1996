//! The gRPC server: `chronodb serve`. Services `chronodb.v1.Sql`, `chronodb.v1.TimeTravel`,
//! `chronodb.v1.Changes` (live change streams, see [`changes`]), `chronodb.v1.Audit` and
//! `chronodb.v1.Optimizer` (see [`audit`]), `chronodb.v1.Monitor` (the health report), the
//! standard `grpc.health.v1.Health`, and server reflection in v1 and v1alpha (so `grpcurl`
//! and Python clients list and call everything without the proto files).
//!
//! SQL runs on tokio's blocking pool (RocksDB calls block); each call is bounded by the
//! configured statement timeout (`DEADLINE_EXCEEDED`; the statement itself finishes in the
//! background and, in autocommit, commits or not as it would have). With `auth_tokens` set,
//! a call without `authorization: Bearer <token>` gets `UNAUTHENTICATED`, and the token's
//! name becomes the principal the audit trail records. Explicit transactions (Begin) are
//! rolled back after `transaction_idle_timeout_secs` without a call.

pub mod audit;
pub mod changes;
pub mod convert;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono_proto::v1 as pb;
use chrono_sql::{CancelToken, Outcome, Session};
use chrono_storage::Value;
use parking_lot::Mutex;
use tonic::{Request, Response, Status};

use crate::auth::{Authenticator, Presented};
use crate::config::ServerConfig;
use crate::{ChronoDb, Error, Result};

/// Logs a call's duration at debug level when dropped (so also on errors).
pub(crate) struct CallLog {
    method: &'static str,
    start: Instant,
}

impl CallLog {
    pub(crate) fn new(method: &'static str) -> Self {
        Self {
            method,
            start: Instant::now(),
        }
    }
}

impl Drop for CallLog {
    fn drop(&mut self) {
        tracing::debug!(
            method = self.method,
            elapsed_ms = self.start.elapsed().as_secs_f64() * 1e3,
            "call"
        );
    }
}

/// The authenticated caller, set by the auth interceptor.
#[derive(Debug, Clone)]
pub struct Principal(pub String);

struct OpenTxn {
    session: Arc<Mutex<Session>>,
    last_used: Instant,
    /// Who may use it: see [`caller`].
    caller: String,
}

/// State shared by the services.
#[derive(Clone)]
pub struct Shared {
    db: Arc<ChronoDb>,
    txns: Arc<Mutex<HashMap<String, OpenTxn>>>,
    timeout: Duration,
    /// Turns true when the server shuts down, ending change streams.
    stopping: tokio::sync::watch::Receiver<bool>,
}

/// A transaction id: 128 bits from the operating system's CSPRNG, so one caller cannot
/// guess another's.
fn random_id() -> Result<String, Status> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| Status::unavailable(format!("no randomness for a transaction id: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Who a transaction belongs to: the authenticated principal, or without authentication
/// the connection (the peer address) that began it.
fn caller<T>(req: &Request<T>) -> String {
    match principal(req) {
        Some(p) => format!("principal {p}"),
        None => format!(
            "peer {}",
            req.remote_addr().map(|a| a.to_string()).unwrap_or_default()
        ),
    }
}

fn principal<T>(req: &Request<T>) -> Option<String> {
    req.extensions().get::<Principal>().map(|p| p.0.clone())
}

/// The session a call's statements run in, their SQL text and parameters.
type StatementCall = (Arc<Mutex<Session>>, String, Vec<Value>);

/// Cancels a statement when the call that runs it ends early (timeout, or the client went
/// away and tonic dropped the call's future or its response stream).
pub(crate) struct CancelOnDrop(Option<CancelToken>);

impl CancelOnDrop {
    /// Cancels `token` when dropped, unless disarmed first.
    pub(crate) fn new(token: CancelToken) -> Self {
        Self(Some(token))
    }

    /// The work finished: nothing to cancel.
    pub(crate) fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.cancel();
        }
    }
}

/// A streamed response that cancels its statement when dropped: a client that goes away
/// stops the statement at once, even while it is not sending (building a sort, a hash
/// table).
pub struct CancellingStream<T> {
    inner: tokio_stream::wrappers::ReceiverStream<T>,
    _cancel: CancelOnDrop,
}

impl<T> tokio_stream::Stream for CancellingStream<T> {
    type Item = T;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        std::pin::Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl Shared {
    /// Runs blocking work on the blocking pool, bounded by the statement timeout. The work
    /// gets a cancel token that fires when the call times out or is dropped, so a statement
    /// stops instead of running on unseen.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(CancelToken) -> Result<T> + Send + 'static,
    ) -> Result<T, Status> {
        let token = CancelToken::new();
        let on_drop = CancelOnDrop(Some(token.clone()));
        let task = tokio::task::spawn_blocking(move || f(token));
        let outcome = tokio::time::timeout(self.timeout, task).await;
        if outcome.is_ok() {
            on_drop.disarm();
        }
        match outcome {
            Err(_) => Err(Status::deadline_exceeded(format!(
                "the statement ran longer than the server's {} ms timeout (limit: server.statement_timeout_ms)",
                self.timeout.as_millis()
            ))),
            Ok(Err(join)) => Err(Status::internal(format!("the statement failed: {join}"))),
            Ok(Ok(r)) => r.map_err(|e| convert::status(&e)),
        }
    }

    fn txn(&self, id: &str, who: &str) -> Result<Arc<Mutex<Session>>, Status> {
        let mut txns = self.txns.lock();
        match txns.get_mut(id) {
            Some(t) if t.caller == who => {
                t.last_used = Instant::now();
                Ok(t.session.clone())
            }
            _ => Err(Status::not_found(format!(
                "no open transaction {id} (it may have timed out)"
            ))),
        }
    }

    /// The session an Execute request runs in (a new autocommit one, or its open
    /// transaction's), with its SQL and parameters.
    fn statement_session(&self, req: Request<pb::ExecuteRequest>) -> Result<StatementCall, Status> {
        let who = principal(&req);
        let bound_to = caller(&req);
        let pb::ExecuteRequest {
            sql,
            params: p,
            transaction_id,
        } = req.into_inner();
        let session = if transaction_id.is_empty() {
            let mut s = self.db.session();
            s.set_principal(who);
            Arc::new(Mutex::new(s))
        } else {
            self.txn(&transaction_id, &bound_to)?
        };
        Ok((session, sql, params(p)))
    }

    /// Makes `session`'s next statements stop at the server's timeout or on `cancel`.
    fn arm(&self, session: &mut Session, cancel: CancelToken) {
        session.set_cancel_token(cancel);
        session.set_statement_timeout(Some(self.timeout));
    }

    /// Rolls back transactions idle for longer than `idle`.
    fn expire(&self, idle: Duration) {
        let now = Instant::now();
        self.txns.lock().retain(|id, t| {
            let keep = now.duration_since(t.last_used) < idle;
            if !keep {
                tracing::info!(transaction = %id, "rolled back an idle transaction");
            }
            keep
        });
    }
}

/// Batches of a streamed result the server holds ahead of a slow client.
const STREAM_BATCHES_BUFFERED: usize = 4;
/// Rows per streamed batch, at most.
const STREAM_BATCH_ROWS: usize = 1000;
/// Bytes per streamed batch, about (a batch is sent once it passes this).
const STREAM_BATCH_BYTES: usize = 1 << 20;

/// Sends a streamed query's rows in batches as they are produced.
struct BatchSink {
    tx: tokio::sync::mpsc::Sender<Result<pb::RowBatch, Status>>,
    columns: Option<Vec<String>>,
    batch: Vec<pb::Row>,
    bytes: usize,
    sent_any: bool,
}

impl BatchSink {
    /// Sends what is batched (with `last`, also an empty batch when nothing was sent, so the
    /// client gets the columns).
    fn flush(&mut self, last: bool) -> chrono_sql::Result<()> {
        let owes_columns = last && !self.sent_any;
        if self.batch.is_empty() && !owes_columns {
            return Ok(());
        }
        let msg = pb::RowBatch {
            columns: if self.sent_any {
                Vec::new()
            } else {
                self.columns.clone().unwrap_or_default()
            },
            rows: std::mem::take(&mut self.batch),
        };
        self.bytes = 0;
        self.sent_any = true;
        self.tx.blocking_send(Ok(msg)).map_err(|_| {
            chrono_sql::Error::Cancelled("the client stopped reading the stream".into())
        })
    }
}

impl chrono_sql::RowSink for BatchSink {
    fn columns(&mut self, columns: &[String]) -> chrono_sql::Result<()> {
        if self.columns.is_some() {
            return Err(chrono_sql::Error::InvalidInput(
                "ExecuteStream streams one query".into(),
            ));
        }
        self.columns = Some(columns.to_vec());
        Ok(())
    }

    fn row(&mut self, row: Vec<Value>) -> chrono_sql::Result<()> {
        let r = convert::row(&row);
        self.bytes += row
            .iter()
            .map(chrono_sql::limits::value_bytes)
            .sum::<usize>();
        self.batch.push(r);
        if self.batch.len() >= STREAM_BATCH_ROWS || self.bytes >= STREAM_BATCH_BYTES {
            self.flush(false)?;
        }
        Ok(())
    }
}

fn params(values: Vec<pb::Value>) -> Vec<Value> {
    values.into_iter().map(convert::from_value).collect()
}

/// `chronodb.v1.Sql`.
pub struct SqlService(Shared);

#[tonic::async_trait]
impl pb::sql_server::Sql for SqlService {
    async fn execute(
        &self,
        req: Request<pb::ExecuteRequest>,
    ) -> Result<Response<pb::ExecuteResponse>, Status> {
        let _log = CallLog::new("Sql/Execute");
        let autocommit = req.get_ref().transaction_id.is_empty();
        let (session, sql, values) = self.0.statement_session(req)?;
        // A point read by a kept plan costs a key lookup: it runs here, on the thread that
        // received it, rather than paying two thread hand-offs to the blocking pool. Only
        // the parse cache is asked: a text not parsed before is parsed on the pool.
        if autocommit {
            let db = self.0.db.database();
            if let Some(parsed) = db.parsed_before(&sql)
                && let [p] = parsed.as_slice()
                && db.is_kept_point_read(p)
            {
                let mut s = session.lock();
                self.0.arm(&mut s, CancelToken::new());
                let outcome = s.run(p, &values).map_err(|e| convert::sql_status(&e))?;
                return Ok(Response::new(pb::ExecuteResponse {
                    results: vec![convert::outcome(outcome)],
                }));
            }
        }
        let shared = self.0.clone();
        let outcomes = self
            .0
            .blocking(move |cancel| {
                let mut s = session.lock();
                shared.arm(&mut s, cancel);
                Ok(s.execute_with_params(&sql, &values)?)
            })
            .await?;
        Ok(Response::new(pb::ExecuteResponse {
            results: outcomes.into_iter().map(convert::outcome).collect(),
        }))
    }

    type ExecuteStreamStream = CancellingStream<Result<pb::RowBatch, Status>>;

    async fn execute_stream(
        &self,
        req: Request<pb::ExecuteRequest>,
    ) -> Result<Response<Self::ExecuteStreamStream>, Status> {
        let _log = CallLog::new("Sql/ExecuteStream");
        let (session, sql, values) = self.0.statement_session(req)?;
        // One result set per stream: a text with two queries is refused before anything of
        // it runs (not after the first query's rows went out).
        let parsed = self
            .0
            .db
            .database()
            .parse_cached(&sql)
            .map_err(|e| convert::sql_status(&e))?;
        if parsed.iter().filter(|p| p.is_query()).count() > 1 {
            return Err(Status::invalid_argument(
                "ExecuteStream streams one query; send the others in their own calls",
            ));
        }
        // Batches go out as the executor produces them; the channel holds a few, so a
        // client that reads slowly slows the statement instead of growing the server.
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_BATCHES_BUFFERED);
        let cancel = CancelToken::new();
        let stream = CancellingStream {
            inner: tokio_stream::wrappers::ReceiverStream::new(rx),
            _cancel: CancelOnDrop(Some(cancel.clone())),
        };
        let shared = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut sink = BatchSink {
                tx,
                columns: None,
                batch: Vec::new(),
                bytes: 0,
                sent_any: false,
            };
            let mut s = session.lock();
            shared.arm(&mut s, cancel);
            let result: chrono_sql::Result<Vec<Outcome>> = parsed
                .iter()
                .map(|p| s.run_streaming(p, &values, &mut sink))
                .collect();
            drop(s);
            let result = result.map_err(Error::from).and_then(|outcomes| {
                if !outcomes.iter().any(|o| matches!(o, Outcome::Rows { .. })) {
                    return Err(Error::InvalidInput("ExecuteStream needs a query".into()));
                }
                Ok(sink.flush(true)?)
            });
            if let Err(e) = result {
                let _ = sink.tx.blocking_send(Err(convert::status(&e)));
            }
        });
        Ok(Response::new(stream))
    }

    async fn begin(
        &self,
        req: Request<pb::BeginRequest>,
    ) -> Result<Response<pb::BeginResponse>, Status> {
        let _log = CallLog::new("Sql/Begin");
        let who = principal(&req);
        let bound_to = caller(&req);
        let mut session = self.0.db.session();
        session.set_principal(who);
        session
            .execute("BEGIN")
            .map_err(|e| convert::sql_status(&e))?;
        let id = random_id()?;
        self.0.txns.lock().insert(
            id.clone(),
            OpenTxn {
                session: Arc::new(Mutex::new(session)),
                last_used: Instant::now(),
                caller: bound_to,
            },
        );
        Ok(Response::new(pb::BeginResponse { transaction_id: id }))
    }

    async fn commit(
        &self,
        req: Request<pb::TransactionRef>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        let _log = CallLog::new("Sql/Commit");
        let who = caller(&req);
        let id = req.into_inner().transaction_id;
        let session = self.0.txn(&id, &who)?;
        self.0.txns.lock().remove(&id);
        let out = self
            .0
            .blocking(move |_| Ok(session.lock().execute("COMMIT")?))
            .await?;
        let commit_ts = match out.first() {
            Some(Outcome::Done { commit_ts, .. }) => commit_ts.map(|t| t as i64),
            _ => None,
        };
        Ok(Response::new(pb::CommitResponse {
            commit_ts_micros: commit_ts,
        }))
    }

    async fn rollback(
        &self,
        req: Request<pb::TransactionRef>,
    ) -> Result<Response<pb::RollbackResponse>, Status> {
        let _log = CallLog::new("Sql/Rollback");
        let who = caller(&req);
        let id = req.into_inner().transaction_id;
        self.0.txn(&id, &who)?;
        self.0.txns.lock().remove(&id);
        Ok(Response::new(pb::RollbackResponse {}))
    }

    async fn tables(
        &self,
        _req: Request<pb::TablesRequest>,
    ) -> Result<Response<pb::TablesResponse>, Status> {
        let _log = CallLog::new("Sql/Tables");
        let db = self.0.db.clone();
        let defs = self
            .0
            .blocking(move |_| Ok(db.database().tables()?))
            .await?;
        Ok(Response::new(pb::TablesResponse {
            tables: defs
                .iter()
                .map(|t| pb::TableInfo {
                    name: t.name.clone(),
                    columns: t.columns.iter().map(|c| c.name.clone()).collect(),
                    create_sql: crate::cli::shell::schema_sql(t),
                })
                .collect(),
        }))
    }
}

/// `chronodb.v1.Monitor`.
pub struct MonitorService(Shared);

#[tonic::async_trait]
impl pb::monitor_server::Monitor for MonitorService {
    async fn health_report(
        &self,
        _req: Request<pb::HealthReportRequest>,
    ) -> Result<Response<pb::HealthReportResponse>, Status> {
        let _log = CallLog::new("Monitor/HealthReport");
        let db = self.0.db.clone();
        let report = self.0.blocking(move |_| db.get_health_report()).await?;
        use crate::health::Severity;
        let findings = report
            .findings
            .iter()
            .map(|f| pb::Finding {
                severity: match f.severity {
                    Severity::Info => pb::Severity::Info,
                    Severity::Warning => pb::Severity::Warning,
                    Severity::Critical => pb::Severity::Critical,
                } as i32,
                area: f.area.to_string(),
                title: f.title.clone(),
                detail: f.detail.clone(),
                recommendation: f.recommendation.clone(),
            })
            .collect();
        Ok(Response::new(pb::HealthReportResponse {
            findings,
            json: report.to_json(),
            text: report.to_text(),
        }))
    }
}

/// `chronodb.v1.TimeTravel`.
pub struct TimeTravelService(Shared);

/// A table name as a quoted SQL identifier.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn query_rows(outcomes: Vec<Outcome>) -> (Vec<String>, Vec<Vec<Value>>) {
    match outcomes.into_iter().last() {
        Some(Outcome::Rows { columns, rows, .. }) => (columns, rows),
        _ => (Vec::new(), Vec::new()),
    }
}

#[tonic::async_trait]
impl pb::time_travel_server::TimeTravel for TimeTravelService {
    async fn change_history(
        &self,
        req: Request<pb::ChangeHistoryRequest>,
    ) -> Result<Response<pb::ChangeHistoryResponse>, Status> {
        let _log = CallLog::new("TimeTravel/ChangeHistory");
        let pb::ChangeHistoryRequest { table, primary_key } = req.into_inner();
        let key = params(primary_key);
        let db = self.0.db.clone();
        let h = self
            .0
            .blocking(move |_| db.get_change_history(&table, &key))
            .await?;
        Ok(Response::new(pb::ChangeHistoryResponse {
            columns: h.columns,
            versions: h
                .versions
                .iter()
                .map(|v| pb::RowVersion {
                    commit_ts_micros: v.commit_ts as i64,
                    operation: convert::operation(v.op) as i32,
                    row: v.row.as_deref().map(convert::row),
                })
                .collect(),
        }))
    }

    async fn versions(
        &self,
        req: Request<pb::VersionsRequest>,
    ) -> Result<Response<pb::VersionsResponse>, Status> {
        let _log = CallLog::new("TimeTravel/Versions");
        let pb::VersionsRequest {
            table,
            from_micros,
            to_micros,
        } = req.into_inner();
        let db = self.0.db.clone();
        let (mut columns, rows) = self
            .0
            .blocking(move |_| {
                let sql = format!(
                    "SELECT * FROM {} FOR SYSTEM_TIME BETWEEN ? AND ?",
                    quoted(&table)
                );
                Ok(query_rows(db.execute_with_params(
                    &sql,
                    &[Value::Timestamp(from_micros), Value::Timestamp(to_micros)],
                )?))
            })
            .await?;
        columns.truncate(columns.len().saturating_sub(2));
        let versions = rows
            .into_iter()
            .map(|mut r| {
                let to = r.pop();
                let from = r.pop();
                let ts = |v: Option<Value>| match v {
                    Some(Value::Timestamp(t)) => Some(t),
                    _ => None,
                };
                pb::VersionedRow {
                    row: Some(convert::row(&r)),
                    system_from_micros: ts(from).unwrap_or(0),
                    system_to_micros: ts(to),
                }
            })
            .collect();
        Ok(Response::new(pb::VersionsResponse { columns, versions }))
    }

    async fn diff(
        &self,
        req: Request<pb::DiffRequest>,
    ) -> Result<Response<pb::DiffResponse>, Status> {
        let _log = CallLog::new("TimeTravel/Diff");
        let pb::DiffRequest {
            table,
            from_micros,
            to_micros,
        } = req.into_inner();
        let db = self.0.db.clone();
        let (columns, changes) = self
            .0
            .blocking(move |_| {
                let def = db.table(&table)?;
                let sql = format!("SELECT * FROM {} AS OF TIMESTAMP ?", quoted(&def.name));
                let at = |t: i64| -> Result<(Vec<String>, Vec<Vec<Value>>)> {
                    Ok(query_rows(
                        db.execute_with_params(&sql, &[Value::Timestamp(t)])?,
                    ))
                };
                let (columns, before) = at(from_micros)?;
                let (_, after) = at(to_micros)?;
                let key_of = |r: &Vec<Value>| -> Vec<u8> {
                    let key: Vec<Value> = if def.primary_key.is_empty() {
                        r.clone()
                    } else {
                        def.primary_key.iter().map(|&i| r[i].clone()).collect()
                    };
                    chrono_storage::encoding::encode_key(&key)
                };
                let old: std::collections::BTreeMap<Vec<u8>, Vec<Value>> =
                    before.into_iter().map(|r| (key_of(&r), r)).collect();
                let mut new: std::collections::BTreeMap<Vec<u8>, Vec<Value>> =
                    after.into_iter().map(|r| (key_of(&r), r)).collect();
                let mut changes = Vec::new();
                for (k, b) in old {
                    match new.remove(&k) {
                        None => changes.push((k, pb::ChangeKind::Deleted, Some(b), None)),
                        Some(a) if a != b => {
                            changes.push((k, pb::ChangeKind::Changed, Some(b), Some(a)))
                        }
                        Some(_) => {}
                    }
                }
                changes.extend(
                    new.into_iter()
                        .map(|(k, a)| (k, pb::ChangeKind::Inserted, None, Some(a))),
                );
                changes.sort_by(|a, b| a.0.cmp(&b.0));
                Ok((columns, changes))
            })
            .await?;
        Ok(Response::new(pb::DiffResponse {
            columns,
            changes: changes
                .into_iter()
                .map(|(_, kind, before, after)| pb::RowChange {
                    kind: kind as i32,
                    before: before.as_deref().map(convert::row),
                    after: after.as_deref().map(convert::row),
                })
                .collect(),
        }))
    }
}

/// The gRPC interceptor of every service: [`crate::auth`]'s one check of credentials.
fn check_auth(auth: &Authenticator, mut req: Request<()>) -> Result<Request<()>, Status> {
    let values: Vec<&[u8]> = req
        .metadata()
        .get_all("authorization")
        .iter()
        .map(|v| v.as_bytes())
        .collect();
    let checked = auth.check(Presented {
        authorization: &values,
        query_token: None,
    });
    match checked {
        Ok(Some(name)) => {
            req.extensions_mut().insert(Principal(name));
            Ok(req)
        }
        Ok(None) => Ok(req),
        Err(e) => Err(Status::unauthenticated(e.to_string())),
    }
}

/// Serves `db` on `listener` until `shutdown` resolves, then stops accepting, lets running
/// calls finish, and returns.
pub async fn serve(
    db: Arc<ChronoDb>,
    config: &ServerConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<()> {
    let beside = Beside::bind(config).await?;
    serve_with(db, config, listener, beside, shutdown).await
}

/// The listeners of the interfaces served beside gRPC, when configured.
#[derive(Default)]
pub struct Beside {
    /// The WebSocket change monitor (`server.websocket`).
    pub websocket: Option<tokio::net::TcpListener>,
    /// HTTP with GraphQL (`server.http`).
    pub http: Option<tokio::net::TcpListener>,
    /// PostgreSQL's wire protocol (`server.postgres`).
    pub postgres: Option<tokio::net::TcpListener>,
}

impl Beside {
    /// Binds the addresses `config` names.
    pub async fn bind(config: &ServerConfig) -> Result<Beside> {
        let mut beside = Beside::default();
        if let Some(addr) = &config.websocket {
            beside.websocket = Some(bind_key("server.websocket", addr).await?);
        }
        if let Some(addr) = &config.http {
            beside.http = Some(bind_key("server.http", addr).await?);
        }
        if let Some(addr) = &config.postgres {
            beside.postgres = Some(bind_key("server.postgres", addr).await?);
        }
        Ok(beside)
    }
}

/// Binds the address of config key `key`.
pub async fn bind_key(key: &str, addr: &str) -> Result<tokio::net::TcpListener> {
    let parsed: SocketAddr = addr
        .parse()
        .map_err(|_| Error::Config(format!("{key}: not an address: {addr}")))?;
    tokio::net::TcpListener::bind(parsed)
        .await
        .map_err(|e| Error::Io(format!("{key}: cannot listen on {addr}: {e}")))
}

/// [`serve`], with the interfaces beside gRPC on listeners the caller bound.
pub async fn serve_with(
    db: Arc<ChronoDb>,
    config: &ServerConfig,
    listener: tokio::net::TcpListener,
    beside: Beside,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<()> {
    config.check_tokens()?;
    let (stop, stopping) = tokio::sync::watch::channel(false);
    // The WebSocket monitor, when configured, runs beside gRPC and stops with it.
    let websocket = beside.websocket.map(|listener| {
        let (db, config, stopping) = (db.clone(), config.clone(), stopping.clone());
        tokio::spawn(async move { crate::websocket::serve(db, &config, listener, stopping).await })
    });
    let http = beside.http.map(|listener| {
        let (db, config, stopping) = (db.clone(), config.clone(), stopping.clone());
        tokio::spawn(async move { crate::http::serve(db, &config, listener, stopping).await })
    });
    let postgres = beside.postgres.map(|listener| {
        let (db, config, stopping) = (db.clone(), config.clone(), stopping.clone());
        tokio::spawn(async move { crate::pg::serve(db, &config, listener, stopping).await })
    });
    let shared = Shared {
        db,
        txns: Arc::new(Mutex::new(HashMap::new())),
        timeout: Duration::from_millis(config.statement_timeout_ms),
        stopping,
    };
    // Streams that never end on their own (subscriptions) end when shutdown begins, so the
    // graceful shutdown can finish.
    let shutdown = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    let idle = Duration::from_secs(config.transaction_idle_timeout_secs);
    let reaper = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1).min(idle));
            loop {
                tick.tick().await;
                shared.expire(idle);
            }
        })
    };
    // Retention: collect history every gc_interval_secs, the first time one interval
    // after start (see `ChronoDb::collect_history`); the task ends with the server.
    let gc = {
        let shared = shared.clone();
        let every = Duration::from_secs(
            shared
                .db
                .config()
                .features
                .time_travel
                .gc_interval_secs
                .max(1),
        );
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                let db = shared.db.clone();
                match tokio::task::spawn_blocking(move || db.collect_history()).await {
                    Ok(Ok(r)) if r.moved => {
                        tracing::info!(horizon = r.horizon, "history collected")
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "collecting history failed"),
                    Err(e) => tracing::warn!(error = %e, "the history collector stopped"),
                }
            }
        })
    };
    let authenticator = Arc::new(Authenticator::new(config.auth_tokens.clone()));
    let auth = move |req: Request<()>| check_auth(&authenticator, req);
    let max = config.max_message_bytes;
    let sql = pb::sql_server::SqlServer::new(SqlService(shared.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let tt = pb::time_travel_server::TimeTravelServer::new(TimeTravelService(shared.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let changes = pb::changes_server::ChangesServer::new(changes::ChangesService(shared.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let monitor = pb::monitor_server::MonitorServer::new(MonitorService(shared.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let audit_service = pb::audit_server::AuditServer::new(audit::AuditService(shared.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let optimizer =
        pb::optimizer_server::OptimizerServer::new(audit::OptimizerService(shared.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_serving::<pb::changes_server::ChangesServer<changes::ChangesService>>()
        .await;
    reporter
        .set_serving::<pb::sql_server::SqlServer<SqlService>>()
        .await;
    reporter
        .set_serving::<pb::monitor_server::MonitorServer<MonitorService>>()
        .await;
    reporter
        .set_serving::<pb::audit_server::AuditServer<audit::AuditService>>()
        .await;
    reporter
        .set_serving::<pb::optimizer_server::OptimizerServer<audit::OptimizerService>>()
        .await;
    reporter
        .set_serving::<pb::time_travel_server::TimeTravelServer<TimeTravelService>>()
        .await;
    // Reflection in both versions clients speak: v1 (grpcurl) and v1alpha (Python's
    // grpcio-reflection and several GUI clients).
    let reflection_builder = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(chrono_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection = reflection_builder()
        .build_v1()
        .map_err(|e| Error::Io(format!("reflection: {e}")))?;
    let reflection_alpha = reflection_builder()
        .build_v1alpha()
        .map_err(|e| Error::Io(format!("reflection: {e}")))?;
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &config.tls {
        let read = |p: &std::path::Path| {
            std::fs::read(p)
                .map_err(|e| Error::Config(format!("server.tls: cannot read {}: {e}", p.display())))
        };
        let identity =
            tonic::transport::Identity::from_pem(read(&tls.cert_file)?, read(&tls.key_file)?);
        builder = builder
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(|e| Error::Config(format!("server.tls: {e}")))?;
    }
    let result = builder
        .max_concurrent_streams(config.max_concurrent_streams)
        .add_service(tonic::service::interceptor::InterceptedService::new(
            sql,
            auth.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            tt,
            auth.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            changes,
            auth.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            monitor,
            auth.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            audit_service,
            auth.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(
            optimizer, auth,
        ))
        .add_service(health)
        .add_service(reflection)
        .add_service(reflection_alpha)
        .serve_with_incoming_shutdown(
            // No Nagle delay: small responses and stream messages go out at once.
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await;
    reaper.abort();
    gc.abort();
    for task in [websocket, http, postgres].into_iter().flatten() {
        if let Ok(Err(e)) = task.await {
            tracing::warn!(error = %e, "an interface beside gRPC failed");
        }
    }
    result.map_err(|e| Error::Io(format!("server: {e}")))
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: no new calls, finishing running ones");
}

/// Binds `addr` (for `chronodb serve`).
pub async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Io(format!("cannot listen on {addr}: {e}")))
}
