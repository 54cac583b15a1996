//! The HTTP server beside gRPC (`server.http`, `chronodb serve --http ADDR`): GraphQL at
//! `/graphql` (POST a JSON `{"query", "variables", "operationName"}`; see
//! [`crate::graphql`]). Same bearer tokens as gRPC (`Authorization: Bearer …`), requests of
//! at most `server.max_message_bytes`; it stops with the server.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::watch;

use crate::config::{ServerConfig, match_token};
use crate::graphql::{GraphQl, Principal};
use crate::{ChronoDb, Error, Result};

#[derive(Clone)]
struct Http {
    graphql: Arc<GraphQl>,
    tokens: Arc<HashMap<String, String>>,
}

/// Serves HTTP on `listener` until `stopping` turns true.
pub async fn serve(
    db: Arc<ChronoDb>,
    config: &ServerConfig,
    listener: tokio::net::TcpListener,
    stopping: watch::Receiver<bool>,
) -> Result<()> {
    let state = Http {
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
        .layer(DefaultBodyLimit::max(config.max_message_bytes))
        .with_state(state);
    let mut stop = stopping;
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
        .map_err(|e| Error::Io(format!("http server: {e}")))
}

async fn graphql(
    State(http): State<Http>,
    headers: HeaderMap,
    body: axum::Json<async_graphql::Request>,
) -> Response {
    let mut principal = None;
    if !http.tokens.is_empty() {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        principal = given.and_then(|t| match_token(&http.tokens, t));
        if principal.is_none() {
            return (
                StatusCode::UNAUTHORIZED,
                "missing or unknown token: send Authorization: Bearer <token>\n",
            )
                .into_response();
        }
    }
    let request = body.0.data(Principal(principal));
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
    if !http.tokens.is_empty() {
        let given = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string)
            .or_else(|| query.get("token").cloned());
        if given.and_then(|t| match_token(&http.tokens, &t)).is_none() {
            return (StatusCode::UNAUTHORIZED, "missing or unknown token\n").into_response();
        }
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
