//! What the HTTP and WebSocket servers allow a web browser, applied to every request before
//! it is routed.
//!
//! - **Host** (DNS rebinding): a request's `Host` must be an IP address, `localhost` (or a
//!   name under `.localhost`), or one of `server.allowed_hosts` (`"*"` allows any). A page
//!   of `evil.example` that rebinds its name to 127.0.0.1 sends `Host: evil.example` and is
//!   refused (`421`).
//! - **Origin** (cross-site requests): a WebSocket upgrade, and any request other than GET,
//!   HEAD and OPTIONS, that carries an `Origin` must come from the server's own origin (the
//!   origin's host and port are the request's `Host`) or one of `server.allowed_origins`
//!   (`"*"` allows any); others are refused (`403`). Clients that are not browsers send no
//!   `Origin` and are not affected.
//! - No CORS headers are sent, so browsers keep other origins from reading any answer.
//!
//! Nothing changes state over GET: GraphQL mutations are POSTed, or sent over a WebSocket
//! whose upgrade passed the Origin check.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::ServerConfig;

/// The allowed hosts and origins of one server.
#[derive(Debug, Clone, Default)]
pub struct BrowserPolicy {
    hosts: Vec<String>,
    origins: Vec<String>,
}

impl BrowserPolicy {
    /// The policy `config` sets (`server.allowed_hosts`, `server.allowed_origins`).
    pub fn of(config: &ServerConfig) -> Self {
        Self {
            hosts: config
                .allowed_hosts
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            origins: config
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether a request with these headers may go on; the refusal otherwise.
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), (StatusCode, String)> {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_ascii_lowercase);
        if let Some(host) = &host
            && !self.host_allowed(host)
        {
            return Err((
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "this server does not answer to the host name {:?}; add it to server.allowed_hosts\n",
                    hostname(host)
                ),
            ));
        }
        let upgrade = headers.contains_key(header::UPGRADE);
        let changes_state = !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if (upgrade || changes_state)
            && let Some(origin) = headers.get(header::ORIGIN)
        {
            let origin = origin.to_str().unwrap_or("null").to_ascii_lowercase();
            if !self.origin_allowed(&origin, host.as_deref()) {
                return Err((
                    StatusCode::FORBIDDEN,
                    format!(
                        "pages of {origin} may not use this server; add the origin to server.allowed_origins\n"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = hostname(host);
        name.parse::<std::net::IpAddr>().is_ok()
            || name == "localhost"
            || name.ends_with(".localhost")
            || self.hosts.iter().any(|h| h == "*" || h == name)
    }

    fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        if self.origins.iter().any(|o| o == "*" || o == origin) {
            return true;
        }
        // Same origin: the origin's authority is the request's Host (default ports aside).
        let Some(authority) = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
        else {
            return false;
        };
        let default_port = if origin.starts_with("https://") {
            ":443"
        } else {
            ":80"
        };
        host.is_some_and(|h| {
            h == authority
                || h.strip_suffix(default_port) == Some(authority)
                || authority.strip_suffix(default_port) == Some(h)
        })
    }
}

/// The host name of a `Host` value, without its port (an IPv6 literal without brackets).
fn hostname(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// The middleware: applies the policy to every request.
pub async fn guard(
    State(policy): State<Arc<BrowserPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    match policy.check(request.method(), request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn hosts_and_origins() {
        let p = BrowserPolicy::default();
        let ok = |m: Method, h: &[(&'static str, &str)]| p.check(&m, &headers(h)).is_ok();
        assert!(ok(Method::GET, &[("host", "127.0.0.1:8080")]));
        assert!(ok(Method::GET, &[("host", "localhost:8080")]));
        assert!(ok(Method::GET, &[("host", "[::1]:8080")]));
        assert!(ok(Method::GET, &[]));
        assert!(!ok(Method::GET, &[("host", "evil.example:8080")]));
        assert!(!ok(Method::GET, &[("host", "localhost.evil.example")]));
        // Same origin, no origin, other origins.
        let post = |origin: &str| {
            ok(
                Method::POST,
                &[("host", "127.0.0.1:8080"), ("origin", origin)],
            )
        };
        assert!(post("http://127.0.0.1:8080"));
        assert!(ok(Method::POST, &[("host", "127.0.0.1:8080")]));
        assert!(!post("http://evil.example"));
        assert!(!post("null"));
        assert!(!post("http://127.0.0.1:9999"));
        assert!(!post("file://"));
        // A WebSocket upgrade is checked even as a GET; a plain GET is not.
        assert!(!ok(
            Method::GET,
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://evil.example"),
                ("upgrade", "websocket")
            ]
        ));
        assert!(ok(
            Method::GET,
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://evil.example")
            ]
        ));
        let allowing = BrowserPolicy {
            hosts: vec!["db.internal".into()],
            origins: vec!["https://app.example".into()],
        };
        assert!(
            allowing
                .check(&Method::GET, &headers(&[("host", "db.internal:8080")]))
                .is_ok()
        );
        assert!(
            allowing
                .check(
                    &Method::POST,
                    &headers(&[
                        ("host", "db.internal:8080"),
                        ("origin", "https://app.example")
                    ])
                )
                .is_ok()
        );
    }
}
