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

use crate::config::{ServerConfig, match_token};
use crate::graphql::{GraphQl, Principal};
use crate::{ChronoDb, Error, Result};

#[derive(Clone)]
struct Http {
    db: Arc<ChronoDb>,
    graphql: Arc<GraphQl>,
    tokens: Arc<HashMap<String, String>>,
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
        graphql: Arc::new(GraphQl::new(
            db,
            config.graphql_max_depth,
            config.graphql_max_complexity,
            stopping.clone(),
        )),
        tokens: Arc::new(config.auth_tokens.clone()),
    };
    let app = axum::Router::new()
        .route("/graphql", post(graphql).get(subscriptions))
        .route("/", get(explorer))
        .route("/api/tables", get(tables))
        .route("/api/audit", get(audit))
        .route("/api/audit/verify", post(verify))
        .layer(DefaultBodyLimit::max(config.max_message_bytes))
        .with_state(state);
    serve_router(listener, app, stopping, "http server").await
}

/// Serves `app` on `listener` until `stopping` turns true, then lets running requests end.
pub(crate) async fn serve_router(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    mut stopping: watch::Receiver<bool>,
    what: &str,
) -> Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stopping.wait_for(|s| *s).await;
        })
        .await
        .map_err(|e| Error::Io(format!("{what}: {e}")))
}

async fn graphql(
    State(http): State<Http>,
    headers: HeaderMap,
    body: axum::Json<async_graphql::Request>,
) -> Response {
    let Ok(who) = principal(&http.tokens, &headers, None) else {
        return unauthorized();
    };
    let request = body.0.data(Principal(who));
    axum::Json(http.graphql.execute(request).await).into_response()
}

/// GraphQL subscriptions over a WebSocket (`graphql-transport-ws`, and the older
/// `graphql-ws`) at `/graphql`; with tokens, the upgrade carries one (header or `?token=`).
async fn subscriptions(
    State(http): State<Http>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    if principal(&http.tokens, &headers, query.get("token")).is_err() {
        return unauthorized();
    }
    let (schema, _) = match http.graphql.current().await {
        Ok(current) => current,
        Err(e) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, e.message).into_response();
        }
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |stream| GraphQLWebSocket::new(stream, schema, protocol).serve())
}

/// The request's principal, by its token (`Authorization: Bearer …`, or `?token=…` where
/// given): `Ok(None)` when no tokens are configured, `Err(())` when it has no known one.
pub(crate) fn principal(
    tokens: &HashMap<String, String>,
    headers: &HeaderMap,
    query_token: Option<&String>,
) -> Result<Option<String>, ()> {
    if tokens.is_empty() {
        return Ok(None);
    }
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
        .or_else(|| query_token.cloned());
    match given.and_then(|t| match_token(tokens, &t)) {
        Some(p) => Ok(Some(p)),
        None => Err(()),
    }
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        "missing or unknown token: send Authorization: Bearer <token>\n",
    )
        .into_response()
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
    if principal(&http.tokens, &headers, None).is_err() {
        return unauthorized();
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
    if principal(&http.tokens, &headers, None).is_err() {
        return unauthorized();
    }
    verification(http.db.last_verification())
}

/// Verifies the audit trail now.
async fn verify(State(http): State<Http>, headers: HeaderMap) -> Response {
    if principal(&http.tokens, &headers, None).is_err() {
        return unauthorized();
    }
    let db = http.db.clone();
    match tokio::task::spawn_blocking(move || db.verify_audit_integrity()).await {
        Ok(Ok(_)) => verification(http.db.last_verification()),
        Ok(Err(e)) => failure(e),
        Err(e) => failure(e),
    }
}
