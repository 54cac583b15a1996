//! PostgreSQL's wire protocol (`server.postgres`, `chronodb serve --pg ADDR`): psql,
//! psycopg, pgjdbc, node-postgres, pgbench and every other PostgreSQL client connect to
//! ChronoDB unchanged. The protocol itself — message codec, startup, SCRAM-SHA-256, the
//! extended query state machine, portals — is the `pgwire` crate's; this module gives it
//! ChronoDB's sessions ([`handler`]), types ([`types`]), SQLSTATEs ([`sqlstate`]) and
//! session parameters ([`settings`]).
//!
//! Beside gRPC and HTTP, with the same limits: statements run under
//! `server.statement_timeout_ms` and the engine's admission and memory limits; a
//! `CancelRequest` stops the running statement; at most `server.postgres_max_connections`
//! connections are open at once (more are refused with `53300`); a client must finish its
//! startup (TLS and authentication included) within `server.http_header_timeout_ms`; a
//! message longer than `server.postgres_max_message_bytes` closes its connection with
//! `54000`. With `server.tls`, `SSLRequest` is answered with the server's certificate.
//!
//! Authentication: with `server.auth_tokens`, SCRAM-SHA-256 with the token's name as user
//! name and the token as password (the password never crosses the wire); the user is the
//! principal the audit trail records. Without tokens anyone is let in (and unverified user
//! names are not recorded as principals), so, as for gRPC, the server then warns when it
//! listens beyond loopback.

pub mod copy;
pub mod handler;
pub mod settings;
pub mod sqlstate;
pub mod types;

use std::collections::HashMap;
use std::fmt::Debug;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use futures::{Sink, StreamExt};
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::sasl::scram::{ScramAuth, gen_salted_password};
use pgwire::api::auth::{
    AuthSource, LoginInfo, Password, ServerParameterProvider, StartupHandler,
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
};
use pgwire::api::cancel::DefaultCancelHandler;
use pgwire::api::{
    ClientInfo, ConnectionGuard, ConnectionHandle, ConnectionManager, PgWireConnectionState,
    PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{negotiate_tls, process_error, process_message};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Semaphore, watch};
use tokio_util::codec::{Framed, FramedParts};

use crate::ChronoDb;
use crate::config::ServerConfig;

/// What a connection is served with.
struct Served {
    db: Arc<ChronoDb>,
    timeout: Duration,
    tokens: HashMap<String, String>,
    manager: Arc<ConnectionManager>,
    startup_timeout: Duration,
    max_message_bytes: usize,
    message_timeout: Duration,
}

/// Serves PostgreSQL clients on `listener` until `stopping` turns true.
pub async fn serve(
    db: Arc<ChronoDb>,
    config: &ServerConfig,
    listener: tokio::net::TcpListener,
    mut stopping: watch::Receiver<bool>,
) -> crate::Result<()> {
    let tls = crate::listener::tls_acceptor_for(config, b"postgresql")?;
    let served = Arc::new(Served {
        db,
        timeout: Duration::from_millis(config.statement_timeout_ms),
        tokens: config.auth_tokens.clone(),
        manager: Arc::new(ConnectionManager::new()),
        startup_timeout: Duration::from_millis(config.http_header_timeout_ms.max(1)),
        max_message_bytes: config.postgres_max_message_bytes,
        message_timeout: Duration::from_millis(config.postgres_message_timeout_ms.max(1)),
    });
    let open = Arc::new(Semaphore::new(config.postgres_max_connections.max(1)));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopping.wait_for(|s| *s) => break,
        };
        let (tcp, _) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, most likely: wait instead of spinning.
                tracing::warn!(error = %e, "postgres: accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tokio::spawn(refuse(tcp));
            continue;
        };
        let (served, tls, stopping) = (served.clone(), tls.clone(), stopping.clone());
        connections.spawn(async move {
            if let Err(e) = connection(tcp, tls, served, stopping).await {
                tracing::debug!(error = %e, "postgres connection ended");
            }
            drop(permit);
        });
    }
    // Running statements finish; idle connections close.
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// Answers a connection past the limit with PostgreSQL's "too many connections" error.
async fn refuse(mut tcp: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let info = fatal(
        "53300",
        "sorry, too many clients already (limit: server.postgres_max_connections)",
    );
    let mut frame = bytes::BytesMut::new();
    if PgWireBackendMessage::ErrorResponse(info.into())
        .encode(&mut frame)
        .is_ok()
    {
        let _ = tokio::time::timeout(Duration::from_secs(1), tcp.write_all(&frame)).await;
    }
}

/// A FATAL error that ends a connection before it is served.
fn fatal(code: &str, message: &str) -> pgwire::error::ErrorInfo {
    let mut info = pgwire::error::ErrorInfo::new("FATAL".into(), code.into(), message.into());
    info.severity_nonlocalized = Some("FATAL".into());
    info
}

/// One client connection, from its TLS negotiation to its end.
async fn connection(
    tcp: tokio::net::TcpStream,
    tls: Option<tokio_rustls::TlsAcceptor>,
    served: Arc<Served>,
    mut stopping: watch::Receiver<bool>,
) -> io::Result<()> {
    let deadline = tokio::time::Instant::now() + served.startup_timeout;
    let tls_required = tls.is_some();
    let negotiated =
        tokio::time::timeout_at(deadline, negotiate_tls::<handler::Statement>(tcp, tls))
            .await
            .map_err(|_| {
                io::Error::new(io::ErrorKind::TimedOut, "TLS negotiation took too long")
            })??;
    let Some(mut socket) = negotiated else {
        return Ok(());
    };
    // With a certificate configured, as gRPC and HTTP, only TLS connections are served.
    if tls_required && matches!(socket.get_ref(), pgwire::tokio::server::MaybeTls::Plain(_)) {
        let refusal = PgWireBackendMessage::ErrorResponse(
            fatal(
                "28000",
                "this server takes TLS connections only (server.tls is set): connect with \
                 sslmode=require",
            )
            .into(),
        );
        let _ =
            tokio::time::timeout_at(deadline, futures::SinkExt::send(&mut socket, refusal)).await;
        return Ok(());
    }
    // Reads go through a meter that refuses a message longer than the limit before it is
    // buffered whole.
    let parts = socket.into_parts();
    let metered = Metered {
        inner: parts.io,
        since_message: 0,
        limit: served.max_message_bytes,
        corked: true,
        pending: Vec::new(),
    };
    let mut new_parts = FramedParts::new(metered, parts.codec);
    new_parts.read_buf = parts.read_buf;
    new_parts.write_buf = parts.write_buf;
    let mut socket = Framed::from_parts(new_parts);

    let authenticated = !served.tokens.is_empty();
    let backend = Arc::new(handler::Backend::new(
        served.db.clone(),
        served.timeout,
        authenticated,
    ));
    let startup = Arc::new(Startup {
        manager: served.manager.clone(),
        scram: authenticated.then(|| {
            SASLAuthStartupHandler::new(Arc::new(Parameters))
                .with_scram(ScramAuth::new(Arc::new(Tokens(served.tokens.clone()))))
                .with_connection_manager(served.manager.clone())
        }),
    });
    let cancel = Arc::new(DefaultCancelHandler::new(served.manager.clone()));
    // One timer for the connection's life (one per wait would cost a timer-wheel insert and
    // removal per message).
    let check =
        (served.message_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(check);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let starting = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        );
        // Replies wait in the write buffer while more of the client's messages are already
        // here (a Parse/Bind/Execute/Sync pipeline answers in one write, as PostgreSQL
        // does); before waiting for the client, everything is sent.
        if starting || !has_whole_message(socket.read_buffer()) {
            send_pending(&mut socket).await?;
        }
        // Waiting for the next message: it is looked at every `check` (reading is
        // cancel-safe: what arrived stays buffered), and a message begun longer than
        // `server.postgres_message_timeout_ms` ago closes the connection.
        let mut begun: Option<tokio::time::Instant> = None;
        let next = loop {
            tokio::select! {
                m = socket.next() => break m,
                _ = tokio::time::sleep_until(deadline), if starting => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "startup took too long"));
                }
                _ = stopping.wait_for(|s| *s), if !starting && is_idle(&socket) => break None,
                _ = ticker.tick(), if !starting => {
                    if socket.read_buffer().is_empty() && socket.get_ref().since_message == 0 {
                        begun = None;
                        continue;
                    }
                    let since = *begun.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() + check > served.message_timeout {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!(
                                "a message not finished in {} ms (server.postgres_message_timeout_ms)",
                                served.message_timeout.as_millis()
                            ),
                        ));
                    }
                }
            }
        };
        let Some(message) = next else { break };
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                let _ = process_error(&mut socket, e, false).await;
                break;
            }
        };
        socket.get_mut().since_message = 0;
        if matches!(message, PgWireFrontendMessage::Terminate(_)) {
            break;
        }
        let extended = match socket.state() {
            PgWireConnectionState::CopyInProgress(e) => e,
            _ => message.is_extended_query(),
        };
        let is_cancel = matches!(message, PgWireFrontendMessage::CancelRequest(_));
        if let Err(e) = process_message(
            message,
            &mut socket,
            startup.clone(),
            backend.clone(),
            backend.clone(),
            backend.clone(),
            cancel.clone(),
        )
        .await
        {
            let fatal = e.is_fatal();
            process_error(&mut socket, e, extended).await?;
            if fatal {
                break;
            }
        }
        if is_cancel {
            break;
        }
    }
    // A last error (a fatal one, the refusal of an oversized message) goes out before the
    // connection closes.
    let _ = send_pending(&mut socket).await;
    Ok(())
}

/// Sends what the corked connection holds (see [`Metered`]).
async fn send_pending<S, C>(socket: &mut Framed<Metered<S>, C>) -> io::Result<()>
where
    S: AsyncWrite + Unpin,
    Framed<Metered<S>, C>: Sink<PgWireBackendMessage, Error = io::Error> + Unpin,
{
    socket.get_mut().corked = false;
    let flushed = futures::SinkExt::flush(socket).await;
    socket.get_mut().corked = true;
    flushed
}

/// Nothing is running on the connection (shutdown closes it between statements).
fn is_idle<C: ClientInfo>(c: &C) -> bool {
    matches!(c.state(), PgWireConnectionState::ReadyForQuery)
}

/// Whether `buf` starts with a whole message (a type byte, then a length that counts itself).
fn has_whole_message(buf: &[u8]) -> bool {
    buf.len() >= 5 && buf.len() > u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize
}

/// A stream that counts the bytes read since the last whole message and fails a read
/// once they pass the limit: a message larger than `server.postgres_max_message_bytes`
/// (or a client that sends bytes that never make one) is refused before it is held.
///
/// While `corked`, writes collect in `pending` (up to [`CORK_BYTES`], then they go out) and
/// a flush sends nothing: the connection loop uncorks and flushes before it waits for the
/// client, so the replies to a pipeline of messages leave in one write instead of one per
/// message.
struct Metered<S> {
    inner: S,
    since_message: usize,
    limit: usize,
    corked: bool,
    pending: Vec<u8>,
}

/// The most a corked connection holds before writing it out.
const CORK_BYTES: usize = 64 << 10;

impl<S: AsyncWrite + Unpin> Metered<S> {
    /// Writes out what is pending.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            let n = std::task::ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.pending.drain(..n);
        }
        Poll::Ready(Ok(()))
    }
}

/// Read-ahead allowed beyond the limit: a read may hold the start of the next messages.
const READ_AHEAD: usize = 1 << 20;

impl<S: AsyncRead + Unpin> AsyncRead for Metered<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let got = buf.filled().len() - before;
        self.since_message += got;
        if self.since_message > self.limit.saturating_add(READ_AHEAD) {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "a message longer than {} bytes (limit: server.postgres_max_message_bytes)",
                    self.limit
                ),
            )));
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Metered<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.pending.len() + buf.len() > CORK_BYTES || !self.corked {
            std::task::ready!(self.poll_drain(cx))?;
        }
        if self.corked && buf.len() < CORK_BYTES {
            self.pending.extend_from_slice(buf);
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.corked {
            return Poll::Ready(Ok(()));
        }
        std::task::ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The parameters a client is told at connect.
#[derive(Debug)]
struct Parameters;

impl ServerParameterProvider for Parameters {
    fn server_parameters<C: ClientInfo>(&self, client: &C) -> Option<HashMap<String, String>> {
        // The values of the connection's session parameters, under the names libpq uses.
        let defaults = settings::defaults();
        let mut p: HashMap<String, String> = [
            ("server_version", "server_version"),
            ("server_encoding", "server_encoding"),
            ("client_encoding", "client_encoding"),
            ("DateStyle", "datestyle"),
            ("IntervalStyle", "intervalstyle"),
            ("TimeZone", "timezone"),
            ("integer_datetimes", "integer_datetimes"),
            ("standard_conforming_strings", "standard_conforming_strings"),
            ("is_superuser", "is_superuser"),
            (
                "default_transaction_read_only",
                "default_transaction_read_only",
            ),
            ("in_hot_standby", "in_hot_standby"),
        ]
        .into_iter()
        .map(|(reported, key)| (reported.to_string(), defaults[key].clone()))
        .collect();
        let meta = client.metadata();
        p.insert(
            "application_name".into(),
            meta.get("application_name").cloned().unwrap_or_default(),
        );
        if let Some(user) = meta.get(pgwire::api::METADATA_USER) {
            p.insert("session_authorization".into(), user.clone());
        }
        Some(p)
    }
}

/// `server.auth_tokens` as SCRAM credentials: the token's name is the user, the token the
/// password.
#[derive(Debug)]
struct Tokens(HashMap<String, String>);

#[async_trait]
impl AuthSource for Tokens {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let user = login.user().unwrap_or_default();
        let Some(token) = self.0.get(user) else {
            return Err(PgWireError::InvalidPassword(user.to_string()));
        };
        let mut salt = [0u8; 16];
        getrandom::getrandom(&mut salt)
            .map_err(|e| PgWireError::ApiError(Box::new(io::Error::other(e.to_string()))))?;
        Ok(Password::new(
            Some(salt.to_vec()),
            gen_salted_password(token, &salt, 4096),
        ))
    }
}

/// Startup: SCRAM-SHA-256 with tokens, else straight in.
struct Startup {
    manager: Arc<ConnectionManager>,
    scram: Option<SASLAuthStartupHandler<Parameters>>,
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some(scram) = &self.scram {
            return scram.on_startup(client, message).await;
        }
        if let PgWireFrontendMessage::Startup(ref startup) = message {
            protocol_negotiation(client, startup).await?;
            save_startup_parameters_to_metadata(client, startup);
            let (pid, secret) = RandomPidSecretKeyGenerator::default().generate(client);
            client.set_pid_and_secret_key(pid, secret.clone());
            let (handle, guard) = self.manager.register(pid, secret);
            client
                .session_extensions()
                .insert::<Arc<ConnectionHandle>>(handle);
            client.session_extensions().insert::<ConnectionGuard>(guard);
            finish_authentication(client, &Parameters).await?;
        }
        Ok(())
    }
}
