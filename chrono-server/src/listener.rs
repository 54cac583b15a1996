//! The HTTP and WebSocket listeners' connections, bounded: at most
//! `server.http_max_connections` open at once per listener (a connection past it is
//! answered `503` and closed at once, so it never holds a file descriptor for long), headers
//! within `server.http_header_timeout_ms`, and a connection that sends and receives nothing
//! for `server.http_idle_timeout_secs` closed — until it becomes a WebSocket, whose liveness
//! its own protocol keeps (the monitor pings; a dead peer fails a write). When accepting
//! fails (out of file descriptors), the listener waits a little instead of spinning.
//!
//! Each connection is served by hyper's HTTP/1.1 with upgrades (WebSocket), over TLS when
//! `server.tls` is set (the same certificate and key as gRPC; the handshake must finish
//! within the header timeout). On shutdown the listener stops accepting and asks every
//! connection to finish its request and close.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::{Instant, Sleep};

use crate::config::ServerConfig;

/// TLS for an HTTP listener: `server.tls`'s certificate chain and key.
pub fn tls_acceptor(config: &ServerConfig) -> crate::Result<Option<tokio_rustls::TlsAcceptor>> {
    tls_acceptor_for(config, b"http/1.1")
}

/// TLS with `server.tls`'s certificate chain and key for a listener of protocol `alpn`.
pub fn tls_acceptor_for(
    config: &ServerConfig,
    alpn: &[u8],
) -> crate::Result<Option<tokio_rustls::TlsAcceptor>> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;

    let Some(tls) = &config.tls else {
        return Ok(None);
    };
    let bad = |what: &std::path::Path, e: &dyn std::fmt::Display| {
        crate::Error::Config(format!("server.tls: cannot read {}: {e}", what.display()))
    };
    let certs = CertificateDer::pem_file_iter(&tls.cert_file)
        .map_err(|e| bad(&tls.cert_file, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&tls.cert_file, &e))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file).map_err(|e| bad(&tls.key_file, &e))?;
    let mut rustls_config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| crate::Error::Config(format!("server.tls: {e}")))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| crate::Error::Config(format!("server.tls: {e}")))?;
    rustls_config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Some(tokio_rustls::TlsAcceptor::from(Arc::new(
        rustls_config,
    ))))
}

/// The connection limits of a listener (from `server.*`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// `server.http_max_connections`, at most what the open-file limit leaves room for.
    pub max_connections: usize,
    /// `server.http_header_timeout_ms`.
    pub header_timeout: Duration,
    /// `server.http_idle_timeout_secs`.
    pub idle_timeout: Duration,
}

impl ConnectionLimits {
    /// The limits `config` sets, the connection count kept below the open-file limit (a
    /// quarter of it each, so gRPC, RocksDB and the other listener keep room).
    pub fn of(config: &ServerConfig) -> Self {
        let mut max = config.http_max_connections.max(1);
        if let Some(fds) = open_file_limit() {
            let room = (fds / 4).max(16);
            if max > room {
                tracing::warn!(
                    "server.http_max_connections {max} lowered to {room}: the open-file limit is {fds}"
                );
                max = room;
            }
        }
        Self {
            max_connections: max,
            header_timeout: Duration::from_millis(config.http_header_timeout_ms.max(1)),
            idle_timeout: Duration::from_secs(config.http_idle_timeout_secs.max(1)),
        }
    }
}

fn open_file_limit() -> Option<usize> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given and nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur as usize)
}

/// Serves `app` on `listener` within `limits` until `stopping` turns true; then lets
/// running requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: ConnectionLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut stopping: watch::Receiver<bool>,
    what: &'static str,
) -> crate::Result<()> {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopping.wait_for(|s| *s) => break,
        };
        // Reap finished connection tasks so the set does not grow.
        while connections.try_join_next().is_some() {}
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors or a connection reset before it was accepted:
                // wait a little rather than spin on the same error.
                tracing::warn!("{what}: accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            connections.spawn(refuse(stream, limits.max_connections));
            continue;
        };
        let _ = stream.set_nodelay(true);
        connections.spawn(connection(
            stream,
            permit,
            app.clone(),
            limits,
            tls.clone(),
            stopping.clone(),
        ));
    }
    // Shutdown: connections were told through `stopping`; wait for them a while.
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    Ok(())
}

/// Answers a connection past the limit and closes it.
async fn refuse(mut stream: TcpStream, max: usize) {
    let body =
        format!("too many connections: {max} are open (limit: server.http_max_connections)\n");
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nretry-after: 1\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        stream.write_all(response.as_bytes()),
    )
    .await;
}

async fn connection(
    stream: TcpStream,
    permit: OwnedSemaphorePermit,
    app: axum::Router,
    limits: ConnectionLimits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    stopping: watch::Receiver<bool>,
) {
    let upgraded = Arc::new(AtomicBool::new(false));
    let io = IdleIo::new(stream, permit, limits.idle_timeout, upgraded.clone());
    match tls {
        None => http1(io, app, limits, stopping).await,
        Some(acceptor) => {
            match tokio::time::timeout(limits.header_timeout, acceptor.accept(io)).await {
                Ok(Ok(stream)) => http1(stream, app, limits, stopping).await,
                Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
        }
    }
    // The connection became a WebSocket (its IO lives on in the upgrade) or ended.
    upgraded.store(true, Ordering::Relaxed);
}

/// Serves HTTP/1.1 (with upgrades) on one connection until it ends or is upgraded.
async fn http1<S>(
    io: S,
    app: axum::Router,
    limits: ConnectionLimits,
    mut stopping: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let conn = builder
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(app))
        .with_upgrades();
    tokio::pin!(conn);
    let stop = async move {
        let _ = stopping.wait_for(|s| *s).await;
    };
    let stopped = tokio::select! {
        _ = conn.as_mut() => false,
        _ = stop => true,
    };
    if stopped {
        conn.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(Duration::from_secs(10), conn.as_mut()).await;
    }
}

/// A connection's socket that fails its reads once nothing was read or written for the
/// idle timeout (until it is upgraded), and holds its place in the connection limit until
/// it is dropped.
struct IdleIo {
    inner: TcpStream,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    upgraded: Arc<AtomicBool>,
    _permit: OwnedSemaphorePermit,
}

impl IdleIo {
    fn new(
        inner: TcpStream,
        permit: OwnedSemaphorePermit,
        idle: Duration,
        upgraded: Arc<AtomicBool>,
    ) -> Self {
        Self {
            inner,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            upgraded,
            _permit: permit,
        }
    }

    fn active(&mut self) {
        let at = Instant::now() + self.idle;
        self.deadline.as_mut().reset(at);
    }
}

impl AsyncRead for IdleIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before {
                    self.active();
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                if !self.upgraded.load(Ordering::Relaxed)
                    && self.deadline.as_mut().poll(cx).is_ready()
                {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "idle connection closed (limit: server.http_idle_timeout_secs)",
                    )));
                }
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for IdleIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.active();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.active();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
