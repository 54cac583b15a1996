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

/// The GraphQL console at GET `/graphql`: GraphiQL (schema docs, completion, history),
/// compiled into the binary with the React it runs on (`scripts/graphiql.sh` fetches them
/// from the npm registry; nothing is loaded from a CDN). With tokens, open it as
/// `/graphql?token=…`; the console sends the token as a bearer header.
mod console {
    use axum::extract::Path;
    use axum::http::{StatusCode, header};
    use axum::response::{Html, IntoResponse, Response};

    #[cfg(graphiql)]
    const FILES: [(&str, &str, &[u8]); 4] = [
        (
            "graphiql.min.js",
            "text/javascript",
            include_bytes!(concat!(env!("OUT_DIR"), "/graphiql.min.js")),
        ),
        (
            "graphiql.min.css",
            "text/css",
            include_bytes!(concat!(env!("OUT_DIR"), "/graphiql.min.css")),
        ),
        (
            "react.production.min.js",
            "text/javascript",
            include_bytes!(concat!(env!("OUT_DIR"), "/react.production.min.js")),
        ),
        (
            "react-dom.production.min.js",
            "text/javascript",
            include_bytes!(concat!(env!("OUT_DIR"), "/react-dom.production.min.js")),
        ),
    ];
    #[cfg(not(graphiql))]
    const FILES: [(&str, &str, &[u8]); 0] = [];

    const PAGE: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ChronoDB GraphQL console</title>
<link rel="stylesheet" href="/graphql/console/graphiql.min.css">
<style>body { margin: 0; height: 100vh; } #console { height: 100vh; }</style></head>
<body><div id="console">Loading the GraphQL console…</div>
<script src="/graphql/console/react.production.min.js"></script>
<script src="/graphql/console/react-dom.production.min.js"></script>
<script src="/graphql/console/graphiql.min.js"></script>
<script>
  const token = new URLSearchParams(location.search).get("token");
  const fetcher = GraphiQL.createFetcher({
    url: "/graphql",
    headers: token ? { Authorization: "Bearer " + token } : {},
  });
  const example = "# A field per table; asOf reads the past.\n" +
    "# Docs: top left. Ctrl-Space completes.\n{\n  _schemaWarnings\n}\n";
  ReactDOM.createRoot(document.getElementById("console")).render(
    React.createElement(GraphiQL, { fetcher, defaultQuery: example }));
</script></body></html>"##;

    const WITHOUT: &str = "<!doctype html><meta charset=utf-8><title>ChronoDB GraphQL</title>\
        <p>POST GraphQL to this address as JSON: <code>{\"query\": \"{ … }\"}</code>. \
        This build has no console (scripts/setup.sh fetches it before the build).";

    /// The console's page.
    pub fn page() -> Response {
        if FILES.is_empty() {
            return Html(WITHOUT).into_response();
        }
        Html(PAGE).into_response()
    }

    /// One of its files.
    pub async fn asset(Path(file): Path<String>) -> Response {
        match FILES.iter().find(|(name, _, _)| *name == file) {
            Some((_, kind, bytes)) => (
                [
                    (header::CONTENT_TYPE, *kind),
                    (header::CACHE_CONTROL, "public, max-age=86400"),
                ],
                *bytes,
            )
                .into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        }
    }
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
    // Every route that reads or writes the database needs credentials (checked once, here);
    // the pages and the console's files do not, and the WebSocket checks its upgrade.
    let authenticated = axum::middleware::from_fn_with_state(state.auth.clone(), authenticated);
    let app = axum::Router::new()
        .route("/api/tables", get(tables))
        .route("/api/audit", get(audit))
        .route("/api/audit/verify", post(verify))
        .route("/api/time", get(time))
        .route("/api/commits", get(commits))
        .route("/api/diff", get(diff))
        .route("/graphql", post(graphql))
        .route_layer(authenticated)
        .route("/graphql", get(subscriptions))
        .route("/", get(explorer))
        .route("/graphql/console/{file}", get(console::asset))
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

/// Checks a request's credentials ([`crate::auth`]) and hands its principal on to the
/// route; refuses it with 401 otherwise.
async fn authenticated(
    State(auth): State<Arc<Authenticator>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match auth.check_headers(request.headers(), None) {
        Ok(who) => {
            request.extensions_mut().insert(Principal(who));
            next.run(request).await
        }
        Err(e) => unauthorized(&e),
    }
}

async fn graphql(
    State(http): State<Http>,
    axum::Extension(who): axum::Extension<Principal>,
    body: axum::Json<async_graphql::Request>,
) -> Response {
    let request = body.0.data(who);
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
    protocol: Result<GraphQLProtocol, axum::http::StatusCode>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    // A plain GET (a browser): the GraphQL console.
    let (Ok(protocol), Ok(upgrade)) = (protocol, upgrade) else {
        return console::page();
    };
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

/// Most change times `/api/commits` returns.
const MAX_COMMITS: usize = 10_000;

/// `/api/commits?table=…`: the times the table changed (microseconds, oldest first, at most
/// 10,000), read from the audit trail's (table, time) index: one entry per commit, however
/// large the table. `{"micros": null}` when the audit trail is off (the explorer then reads
/// the table's history).
async fn commits(
    State(http): State<Http>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let table = query.get("table").cloned().unwrap_or_default();
    let db = http.db.clone();
    blocking_json(move || -> Result<serde_json::Value> {
        let Ok(trail) = db.audit_trail() else {
            return Ok(serde_json::json!({ "micros": null }));
        };
        let mut times: Vec<u64> = trail
            .table_commits_after(&table, (0, 0), u64::MAX, MAX_COMMITS)?
            .into_iter()
            .map(|(ts, _)| ts)
            .collect();
        times.dedup();
        Ok(serde_json::json!({ "micros": times }))
    })
    .await
}

/// Most rows `/api/diff` returns.
const MAX_DIFF_ROWS: usize = 1_000;

/// `/api/diff?table=…&from=…&to=…`: the rows that differ between two times (each in any
/// form an interface prints; `to` defaults to now): `inserted`, `deleted` or `changed`, with
/// the row at both times, at most 1,000 (`more` says there are others). Read from the
/// commits in between (the audit trail's (table, time) index) and the rows' versions at
/// both ends, so it costs what changed, not the table's size.
async fn diff(State(http): State<Http>, Query(query): Query<HashMap<String, String>>) -> Response {
    let time = |name: &str| -> std::result::Result<Option<u64>, String> {
        match query.get(name).map(String::as_str) {
            None | Some("") => Ok(None),
            Some(t) => chrono_storage::Timestamp::parse(t)
                .map(|t| Some(t.as_micros()))
                .map_err(|e| format!("{name}: {e}")),
        }
    };
    let bad = |error: String| {
        (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({ "error": error })),
        )
            .into_response()
    };
    let (from, to) = match (time("from"), time("to")) {
        (Ok(Some(from)), Ok(to)) => (from, to),
        (Ok(None), _) => return bad("from: give the earlier time".into()),
        (Err(e), _) | (_, Err(e)) => return bad(e),
    };
    let table = query.get("table").cloned().unwrap_or_default();
    let db = http.db.clone();
    blocking_json(move || -> Result<serde_json::Value> {
        let def = db.table(&table)?;
        let trail = db.audit_trail()?;
        let store = db.database().store();
        let to = to.unwrap_or_else(|| store.current_ts());
        let (from, to) = (from.min(to), from.max(to));
        // The keys changed in (from, to], in the order first changed.
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut position = (from, u64::MAX);
        let mut more = false;
        'commits: loop {
            let batch = trail.table_commits_after(&def.name, position, to, 256)?;
            let Some(last) = batch.last().copied() else {
                break;
            };
            for (_, seq) in &batch {
                let tx = trail.transaction(*seq)?;
                for entry in trail.entries_of(&tx) {
                    let entry = entry?;
                    if entry.keyspace == def.keyspace && seen.insert(entry.key.clone()) {
                        if keys.len() == MAX_DIFF_ROWS {
                            more = true;
                            break 'commits;
                        }
                        keys.push(entry.key);
                    }
                }
            }
            position = last;
        }
        let row = |key: &[u8], at: u64| -> Result<Option<serde_json::Value>> {
            Ok(match store.get_at(def.keyspace, key, at)? {
                Some((_, raw)) => Some(serde_json::Value::Object(
                    def.columns
                        .iter()
                        .zip(def.decode_row(&raw)?)
                        .map(|(c, v)| (c.name.clone(), crate::output::json_value(&v)))
                        .collect(),
                )),
                None => None,
            })
        };
        let mut rows = Vec::new();
        for key in &keys {
            let (before, after) = (row(key, from)?, row(key, to)?);
            let change = match (&before, &after) {
                (None, None) => continue,
                (None, Some(_)) => "inserted",
                (Some(_), None) => "deleted",
                (Some(b), Some(a)) if b == a => continue,
                _ => "changed",
            };
            rows.push(serde_json::json!({"change": change, "before": before, "after": after}));
        }
        Ok(serde_json::json!({
            "columns": def.columns.iter().map(|c| &c.name).collect::<Vec<_>>(),
            "from": chrono_storage::Timestamp::from_micros(from).iso(),
            "to": chrono_storage::Timestamp::from_micros(to).iso(),
            "rows": rows,
            "more": more,
        }))
    })
    .await
}

/// `/api/time?at=…`: a time in any form an interface prints (Unix seconds, commit
/// microseconds, ISO-8601) as microseconds and as the ISO-8601 form the server prints.
async fn time(Query(query): Query<HashMap<String, String>>) -> Response {
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

/// Runs `work` on a blocking thread; its answer as JSON, or its error as a 500 with JSON.
async fn blocking_json(
    work: impl FnOnce() -> Result<serde_json::Value> + Send + 'static,
) -> Response {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(answer)) => axum::Json(answer).into_response(),
        Ok(Err(e)) => failure(e),
        Err(e) => failure(e),
    }
}

fn failure(e: impl std::fmt::Display) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        axum::Json(serde_json::json!({"error": e.to_string()})),
    )
        .into_response()
}

/// The tables: name, columns, primary key columns.
async fn tables(State(http): State<Http>) -> Response {
    let db = http.db.clone();
    blocking_json(move || {
        let defs = db.database().tables()?;
        Ok(serde_json::Value::Array(
            defs.iter()
                .map(|t| {
                    serde_json::json!({
                        "name": t.name,
                        "columns": t.columns.iter().map(|c| &c.name).collect::<Vec<_>>(),
                        "types": t.columns.iter().map(|c| c.data_type.name()).collect::<Vec<_>>(),
                        "primary_key": t.primary_key.iter().map(|&i| &t.columns[i].name).collect::<Vec<_>>(),
                    })
                })
                .collect(),
        ))
    })
    .await
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
async fn audit(State(http): State<Http>) -> Response {
    verification(http.db.last_verification())
}

/// Verifies the audit trail now.
async fn verify(State(http): State<Http>) -> Response {
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
