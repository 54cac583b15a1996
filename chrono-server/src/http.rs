//! The HTTP server beside gRPC (`server.http`, `chronodb serve --http ADDR`): GraphQL at
//! `/graphql` (POST a JSON `{"query", "variables", "operationName"}`, or a WebSocket for
//! subscriptions; see [`crate::graphql`]); the time-travel explorer page at `/`, with the
//! small JSON API it reads: `/api/tables`, `/api/audit` (the last verification) and `POST
//! /api/audit/verify`. Same bearer tokens as gRPC (`Authorization: Bearer …`), requests of
//! at most `server.max_message_bytes`; it stops with the server.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::sync::watch;

use crate::auth::Authenticator;
use crate::browser::BrowserPolicy;
use crate::config::ServerConfig;
use crate::graphql::{GraphQl, Principal};
use crate::listener::ConnectionLimits;
use crate::{ChronoDb, Result};

#[derive(Clone)]
struct Http {
    db: Arc<ChronoDb>,
    graphql: Arc<GraphQl>,
    auth: Arc<Authenticator>,
    /// Held while an audit verification runs: one at a time, the others wait for it and
    /// answer with its result.
    verifying: Arc<tokio::sync::Mutex<()>>,
    max_subscriptions: usize,
}

/// The time-travel explorer: one page, compiled into the binary (it works offline).
const EXPLORER: &str = include_str!("../assets/explorer.html");

/// Serves HTTP on `listener` until `stopping` turns true.
pub async fn serve(
    db: Arc<ChronoDb>,
    config: &ServerConfig,
    listener: tokio::net::TcpListener,
    stopping: watch::Receiver<bool>,
) -> Result<()> {
    let state = Http {
        db: db.clone(),
        graphql: Arc::new(GraphQl::new(db, config, stopping.clone())),
        auth: Arc::new(Authenticator::new(config.auth_tokens.clone())),
        verifying: Arc::new(tokio::sync::Mutex::new(())),
        max_subscriptions: config.ws_max_subscriptions,
    };
    let app = axum::Router::new()
        .route("/graphql", post(graphql).get(subscriptions))
        .route("/", get(explorer))
        .route("/api/tables", get(tables))
        .route("/api/audit", get(audit))
        .route("/api/audit/verify", post(verify))
        .route("/api/time", get(time))
        .layer(DefaultBodyLimit::max(config.max_message_bytes))
        .with_state(state);
    serve_router(listener, app, config, stopping, "http server").await
}

/// Serves `app` on `listener` until `stopping` turns true, then lets running requests end:
/// behind the browser policy ([`crate::browser`]) and within the connection limits
/// ([`crate::listener`]).
pub(crate) async fn serve_router(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    config: &ServerConfig,
    stopping: watch::Receiver<bool>,
    what: &'static str,
) -> Result<()> {
    let policy = Arc::new(BrowserPolicy::of(config));
    let app = app.layer(axum::middleware::from_fn_with_state(
        policy,
        crate::browser::guard,
    ));
    let tls = crate::listener::tls_acceptor(config)?;
    crate::listener::serve(
        listener,
        app,
        ConnectionLimits::of(config),
        tls,
        stopping,
        what,
    )
    .await
}

async fn graphql(
    State(http): State<Http>,
    headers: HeaderMap,
    body: axum::Json<async_graphql::Request>,
) -> Response {
    let who = match http.auth.check_headers(&headers, None) {
        Ok(who) => who,
        Err(e) => return unauthorized(&e),
    };
    let request = body.0.data(Principal(who));
    axum::Json(http.graphql.execute(request).await).into_response()
}

/// GraphQL subscriptions (and queries and mutations) over a WebSocket
/// (`graphql-transport-ws`, and the older `graphql-ws`) at `/graphql`; with tokens, the
/// upgrade carries one (header or `?token=`). The connection's operations run as its
/// principal; it holds at most `server.ws_max_subscriptions` subscriptions.
async fn subscriptions(
    State(http): State<Http>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let who = match http
        .auth
        .check_headers(&headers, query.get("token").map(String::as_str))
    {
        Ok(who) => who,
        Err(e) => return unauthorized(&e),
    };
    let (schema, loader) = match http.graphql.current().await {
        Ok(current) => current,
        Err(e) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, e.message).into_response();
        }
    };
    let mut data = async_graphql::Data::default();
    data.insert(Principal(who));
    data.insert(loader);
    data.insert(crate::graphql::SubscriptionSlots::new(
        http.max_subscriptions,
    ));
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |stream| {
            GraphQLWebSocket::new(stream, schema, protocol)
                .with_data(data)
                .serve()
        })
}

/// `/api/time?at=…`: a time in any form an interface prints (Unix seconds, commit
/// microseconds, ISO-8601) as microseconds and as the ISO-8601 form the server prints.
async fn time(
    State(http): State<Http>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Err(e) = http.auth.check_headers(&headers, None) {
        return unauthorized(&e);
    }
    let at = query.get("at").map(String::as_str).unwrap_or("");
    match chrono_storage::Timestamp::parse(at) {
        Ok(t) => {
            axum::Json(serde_json::json!({"micros": t.as_micros(), "iso": t.iso()})).into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

fn unauthorized(e: &crate::auth::AuthError) -> Response {
    (StatusCode::UNAUTHORIZED, format!("{e}\n")).into_response()
}

async fn explorer() -> axum::response::Html<&'static str> {
    axum::response::Html(EXPLORER)
}

fn failure(e: impl std::fmt::Display) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(serde_json::json!({"error": e.to_string()})),
    )
        .into_response()
}

/// The tables: name, columns, primary key columns.
async fn tables(State(http): State<Http>, headers: HeaderMap) -> Response {
    if let Err(e) = http.auth.check_headers(&headers, None) {
        return unauthorized(&e);
    }
    let db = http.db.clone();
    match tokio::task::spawn_blocking(move || db.database().tables()).await {
        Ok(Ok(defs)) => axum::Json(
            defs.iter()
                .map(|t| {
                    serde_json::json!({
                        "name": t.name,
                        "columns": t.columns.iter().map(|c| &c.name).collect::<Vec<_>>(),
                        "primary_key": t.primary_key.iter().map(|&i| &t.columns[i].name).collect::<Vec<_>>(),
                    })
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Ok(Err(e)) => failure(e),
        Err(e) => failure(e),
    }
}

fn verification(
    found: Option<(chrono_storage::Timestamp, chrono_audit::VerifyReport)>,
) -> Response {
    axum::Json(match found {
        None => serde_json::json!({"verified_at": null, "ok": null, "summary": null}),
        Some((at, report)) => serde_json::json!({
            "verified_at": at.to_string(),
            "ok": report.is_ok(),
            "summary": match &report.failure {
                None => format!(
                    "{} transactions, {} entries, {} versions cross-checked",
                    report.transactions, report.entries, report.versions
                ),
                Some(f) => format!("{:?} at {}", f.kind, f.position),
            },
        }),
    })
    .into_response()
}

/// The last verification of the audit trail through this server.
async fn audit(State(http): State<Http>, headers: HeaderMap) -> Response {
    if let Err(e) = http.auth.check_headers(&headers, None) {
        return unauthorized(&e);
    }
    verification(http.db.last_verification())
}

/// Verifies the audit trail now.
async fn verify(State(http): State<Http>, headers: HeaderMap) -> Response {
    if let Err(e) = http.auth.check_headers(&headers, None) {
        return unauthorized(&e);
    }
    // One verification at a time: a request that arrives while one runs waits for it and
    // answers with its result instead of starting another.
    let asked = std::time::SystemTime::now();
    let _running = http.verifying.lock().await;
    if let Some((at, _)) = http.db.last_verification()
        && std::time::UNIX_EPOCH + std::time::Duration::from_micros(at.as_micros()) >= asked
    {
        return verification(http.db.last_verification());
    }
    let db = http.db.clone();
    match tokio::task::spawn_blocking(move || db.verify_audit_integrity()).await {
        Ok(Ok(_)) => verification(http.db.last_verification()),
        Ok(Err(e)) => failure(e),
        Err(e) => failure(e),
    }
}
