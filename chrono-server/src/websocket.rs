//! The WebSocket change monitor (`server.websocket`, `chronodb serve --websocket ADDR`, e.g.
//! `ws://localhost:8765`): JSON messages over one connection, on any path.
//!
//! ```text
//! → {"type": "subscribe", "table": "orders"}                      follow a table from now
//! → {"type": "subscribe", "table": "orders", "from": 1764738000123456, "where": "total > 100"}
//!                                   from after a commit timestamp (µs), rows where a condition
//!                                   holds before or after the change
//! ← {"type": "subscribed", "table": "orders"}
//! ← {"type": "change", "table": "orders", "operation": "UPDATE",
//!    "before": {"id": 1, "total": 99.5, …}, "after": {"id": 1, "total": 120.0, …},
//!    "commit_ts": 1764738000123456, "commit_time": "2026-12-03 05:00:00.123456"}
//! → {"type": "unsubscribe", "table": "orders"}
//! ← {"type": "unsubscribed", "table": "orders"}
//! ← {"type": "error", "kind": "InvalidInput", "message": "…"}      for a message it cannot take
//! ```
//!
//! One message per changed row, commits in order; a subscription resumed with `"from"` set
//! to the last `commit_ts` received misses and repeats nothing (the change feed's guarantee,
//! [`crate::changes::follow`]). A malformed message is answered with an error message; the
//! connection stays. With `server.auth_tokens` set, the upgrade request must carry one
//! (`Authorization: Bearer …`, or `?token=…` for browsers, which cannot set headers on a
//! WebSocket). Messages are at most `server.max_message_bytes`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use tokio::sync::{mpsc, watch};

use crate::auth::Authenticator;
use crate::changes::{CommitChanges, follow};
use crate::config::ServerConfig;
use crate::output::json_value;
use crate::{ChronoDb, Error, Result};

#[derive(Clone)]
struct Ws {
    db: Arc<ChronoDb>,
    auth: Arc<Authenticator>,
    max_message_bytes: usize,
    max_subscriptions: usize,
    /// How often the server pings an otherwise quiet connection.
    ping_every: Duration,
    stopping: watch::Receiver<bool>,
}

/// Serves the WebSocket monitor on `listener` until `stopping` turns true.
pub async fn serve(
    db: Arc<ChronoDb>,
    config: &ServerConfig,
    listener: tokio::net::TcpListener,
    stopping: watch::Receiver<bool>,
) -> Result<()> {
    let state = Ws {
        db,
        auth: Arc::new(Authenticator::new(config.auth_tokens.clone())),
        max_message_bytes: config.max_message_bytes,
        max_subscriptions: config.ws_max_subscriptions,
        ping_every: Duration::from_secs((config.http_idle_timeout_secs / 3).clamp(1, 30)),
        stopping: stopping.clone(),
    };
    let app = axum::Router::new().fallback(upgrade).with_state(state);
    crate::http::serve_router(listener, app, config, stopping, "websocket server").await
}

async fn upgrade(
    State(ws): State<Ws>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Ok(upgrade) = upgrade else {
        return (
            StatusCode::UPGRADE_REQUIRED,
            "ChronoDB's change monitor speaks WebSocket: connect with ws://\n",
        )
            .into_response();
    };
    if let Err(e) = ws
        .auth
        .check_headers(&headers, query.get("token").map(String::as_str))
    {
        return (
            StatusCode::UNAUTHORIZED,
            format!("{e} (or ?token=<token>)\n"),
        )
            .into_response();
    }
    upgrade
        .max_message_size(ws.max_message_bytes)
        .max_frame_size(ws.max_message_bytes)
        .on_upgrade(move |socket| connection(socket, ws))
}

fn error(kind: &str, message: impl Into<String>) -> Json {
    json!({"type": "error", "kind": kind, "message": message.into()})
}

fn error_of(e: &Error) -> Json {
    error(&format!("{:?}", e.kind()), e.to_string())
}

fn row_json(columns: &[String], row: Option<&Vec<chrono_storage::Value>>) -> Json {
    match row {
        None => Json::Null,
        Some(values) => Json::Object(
            columns
                .iter()
                .zip(values)
                .map(|(c, v)| (c.clone(), json_value(v)))
                .collect(),
        ),
    }
}

/// The messages of one commit: one per changed row, each made as it is sent.
fn messages(c: &CommitChanges) -> impl Iterator<Item = Json> + '_ {
    let time = chrono_storage::Timestamp::from_micros(c.commit_ts).to_string();
    c.changes.iter().map(move |r| {
        json!({
            "type": "change",
            "table": r.table,
            "operation": r.op.as_str(),
            "before": row_json(&r.columns, r.before.as_ref()),
            "after": row_json(&r.columns, r.after.as_ref()),
            "commit_ts": c.commit_ts,
            "commit_time": time,
        })
    })
}

/// One connection: client messages are answered on the socket directly, in order; the
/// subscriptions' changes come through a bounded channel that this loop drains, so a
/// burst of messages never waits on its own replies. The server pings a quiet connection.
async fn connection(mut socket: WebSocket, ws: Ws) {
    let (out, mut outgoing) = mpsc::channel::<Json>(64);
    let mut subscriptions: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut stopping = ws.stopping.clone();
    let mut ping = tokio::time::interval(ws.ping_every);
    ping.reset();
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(Message::Text(text))) => {
                    subscriptions.retain(|_, task| !task.is_finished());
                    if let Some(reply) = handle(&text, &ws, &out, &mut subscriptions)
                        && socket.send(Message::Text(reply.to_string().into())).await.is_err()
                    {
                        break;
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let reply = error("InvalidInput", "send JSON text messages");
                    if socket.send(Message::Text(reply.to_string().into())).await.is_err() {
                        break;
                    }
                }
                Some(Ok(_)) => {}
            },
            Some(message) = outgoing.recv() => {
                if socket.send(Message::Text(message.to_string().into())).await.is_err() {
                    break;
                }
            }
            _ = ping.tick() => {
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break;
                }
            }
            _ = async { let _ = stopping.wait_for(|s| *s).await; } => {
                let _ = socket.send(Message::Close(None)).await;
                break;
            }
        }
    }
    for (_, task) in subscriptions {
        task.abort();
    }
}

/// A client message: exactly these keys, each at most once.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientMessage {
    #[serde(rename = "type")]
    kind: String,
    table: String,
    #[serde(default)]
    from: Option<Json>,
    #[serde(default, rename = "where")]
    condition: Option<Json>,
}

/// Takes one client message; returns the reply, if any (a subscription's confirmation and
/// changes follow through `out`).
fn handle(
    text: &str,
    ws: &Ws,
    out: &mpsc::Sender<Json>,
    subscriptions: &mut HashMap<String, tokio::task::JoinHandle<()>>,
) -> Option<Json> {
    let message: ClientMessage = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            return Some(error(
                "InvalidInput",
                format!(
                    "a message is one JSON object with \"type\" (subscribe, unsubscribe), \"table\" \
                     and, to subscribe, optional \"from\" and \"where\", each once: {e}"
                ),
            ));
        }
    };
    let table = message.table;
    let key = table.to_ascii_lowercase();
    match message.kind.as_str() {
        "subscribe" => {
            if subscriptions.contains_key(&key) {
                return Some(error(
                    "AlreadyExists",
                    format!("already subscribed to {table}"),
                ));
            }
            if subscriptions.len() >= ws.max_subscriptions {
                return Some(error(
                    "ResourceExhausted",
                    format!(
                        "this connection holds {} subscriptions already (limit: server.ws_max_subscriptions)",
                        ws.max_subscriptions
                    ),
                ));
            }
            // Any form of a time: commit_ts (microseconds), commit_time (ISO-8601), Unix
            // seconds (a number or a string).
            let from = match message.from {
                None | Some(Json::Null) => None,
                Some(f) => {
                    let text = match &f {
                        Json::String(s) => s.clone(),
                        Json::Number(n) => n.to_string(),
                        _ => String::new(),
                    };
                    match chrono_storage::Timestamp::parse(&text) {
                        Ok(t) => Some(t.as_micros()),
                        Err(e) => {
                            return Some(error(
                                "InvalidInput",
                                format!("\"from\": {e} (commit_ts and commit_time are both taken)"),
                            ));
                        }
                    }
                }
            };
            let predicate = match message.condition {
                None | Some(Json::Null) => None,
                Some(Json::String(w)) => Some(w),
                Some(_) => {
                    return Some(error(
                        "InvalidInput",
                        "\"where\" is a SQL condition in a string",
                    ));
                }
            };
            let (db, stopping, out) = (ws.db.clone(), ws.stopping.clone(), out.clone());
            let task = tokio::spawn(async move {
                let feed = follow(
                    db,
                    std::slice::from_ref(&table),
                    predicate.as_deref(),
                    from,
                    stopping,
                )
                .await;
                let mut feed = match feed {
                    Ok(f) => f,
                    Err(e) => {
                        let _ = out.send(error_of(&e)).await;
                        return;
                    }
                };
                if out
                    .send(json!({"type": "subscribed", "table": table}))
                    .await
                    .is_err()
                {
                    return;
                }
                while let Some(next) = feed.recv().await {
                    match next {
                        Ok(commit) => {
                            for m in messages(&commit) {
                                if out.send(m).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Err(e) => {
                            let _ = out.send(error_of(&e)).await;
                            return;
                        }
                    }
                }
            });
            subscriptions.insert(key, task);
            None
        }
        "unsubscribe" => match subscriptions.remove(&key) {
            Some(task) => {
                task.abort();
                Some(json!({"type": "unsubscribed", "table": table}))
            }
            None => Some(error("NotFound", format!("not subscribed to {table}"))),
        },
        _ => Some(error(
            "InvalidInput",
            "\"type\" is subscribe or unsubscribe",
        )),
    }
}
