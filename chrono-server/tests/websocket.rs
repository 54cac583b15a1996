//! The WebSocket change monitor end to end: the documented Python snippet, and a Rust client
//! for the protocol's edges (malformed messages, resumption, unsubscribing, tokens).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono_proto::v1 as pb;
use chrono_proto::v1::sql_client::SqlClient;
use chrono_server::config::ServerConfig;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value as Json, json};
use tokio_tungstenite::tungstenite::Message;

mod support;

use support::InProcess as Server;

async fn start(config: ServerConfig) -> Server {
    Server::start(
        config,
        &["CREATE TABLE orders (id BIGINT PRIMARY KEY, total DOUBLE, status TEXT)"],
    )
    .await
}

/// Runs `text` over gRPC; its commit timestamp, for a write.
async fn sql(server: &Server, text: &str) -> Option<u64> {
    let mut client = SqlClient::connect(server.grpc.clone()).await.unwrap();
    let resp = client
        .execute(pb::ExecuteRequest {
            sql: text.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    match resp.results.last().and_then(|r| r.result.as_ref()) {
        Some(pb::statement_result::Result::Write(w)) => w.commit_ts_micros.map(|t| t as u64),
        _ => None,
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str) -> Socket {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

async fn send(ws: &mut Socket, message: Json) {
    ws.send(Message::Text(message.to_string().into()))
        .await
        .unwrap();
}

async fn next(ws: &mut Socket) -> Json {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("the connection stays open")
            .unwrap();
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_get_errors_and_the_connection_stays() {
    let server = start(ServerConfig::default()).await;
    let mut ws = connect(&format!("ws://{}", server.ws)).await;
    for (bad, kind) in [
        (Message::Text("not json".into()), "InvalidInput"),
        (Message::Text("{\"type\": \"subscribe\"}".into()), "InvalidInput"),
        (Message::Text("{\"type\": \"dance\", \"table\": \"orders\"}".into()), "InvalidInput"),
        (Message::Text("{\"type\": \"subscribe\", \"table\": \"nope\"}".into()), "NotFound"),
        (
            Message::Text(
                "{\"type\": \"subscribe\", \"table\": \"orders\", \"where\": \"no_such_column = 1\"}"
                    .into(),
            ),
            "NotFound",
        ),
        (
            Message::Text("{\"type\": \"subscribe\", \"table\": \"orders\", \"from\": -5}".into()),
            "InvalidInput",
        ),
        (Message::Text("{\"type\": \"unsubscribe\", \"table\": \"orders\"}".into()), "NotFound"),
        (Message::Binary(vec![1, 2, 3].into()), "InvalidInput"),
    ] {
        ws.send(bad.clone()).await.unwrap();
        let reply = next(&mut ws).await;
        assert_eq!(reply["type"], "error", "{bad:?}: {reply}");
        assert_eq!(reply["kind"], kind, "{bad:?}: {reply}");
    }
    // Still usable.
    send(&mut ws, json!({"type": "subscribe", "table": "ORDERS"})).await;
    assert_eq!(next(&mut ws).await["type"], "subscribed");
    send(&mut ws, json!({"type": "subscribe", "table": "orders"})).await;
    assert_eq!(next(&mut ws).await["kind"], "AlreadyExists");
    drop(ws);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_arrive_in_order_and_resume_without_gap_or_repeat() {
    let server = start(ServerConfig::default()).await;
    let mut ws = connect(&format!("ws://{}", server.ws)).await;
    send(&mut ws, json!({"type": "subscribe", "table": "orders"})).await;
    assert_eq!(
        next(&mut ws).await,
        json!({"type": "subscribed", "table": "orders"})
    );
    let t1 = sql(
        &server,
        "INSERT INTO orders VALUES (1, 10.5, 'pending'), (2, 20.0, 'pending')",
    )
    .await
    .unwrap();
    let t2 = sql(&server, "UPDATE orders SET status = 'shipped' WHERE id = 1")
        .await
        .unwrap();
    let (a, b, c) = (
        next(&mut ws).await,
        next(&mut ws).await,
        next(&mut ws).await,
    );
    assert_eq!(a["operation"], "INSERT");
    assert_eq!(
        a["after"],
        json!({"id": 1, "total": 10.5, "status": "pending"})
    );
    assert_eq!(a["before"], Json::Null);
    assert_eq!(b["after"]["id"], 2);
    assert_eq!(a["commit_ts"], t1);
    assert_eq!(b["commit_ts"], t1);
    assert_eq!(c["operation"], "UPDATE");
    assert_eq!(c["before"]["status"], "pending");
    assert_eq!(c["after"]["status"], "shipped");
    assert_eq!(c["commit_ts"], t2);
    send(&mut ws, json!({"type": "unsubscribe", "table": "orders"})).await;
    assert_eq!(next(&mut ws).await["type"], "unsubscribed");

    // While away: two more commits. Resuming from the last commit_ts seen delivers exactly
    // them, then follows live; a filter keeps rows where it holds before or after.
    let t3 = sql(&server, "DELETE FROM orders WHERE id = 2")
        .await
        .unwrap();
    let t4 = sql(&server, "INSERT INTO orders VALUES (3, 99.0, 'pending')")
        .await
        .unwrap();
    send(
        &mut ws,
        json!({"type": "subscribe", "table": "orders", "from": t2}),
    )
    .await;
    assert_eq!(next(&mut ws).await["type"], "subscribed");
    let (d, e) = (next(&mut ws).await, next(&mut ws).await);
    assert_eq!(
        (d["operation"].clone(), d["commit_ts"].clone()),
        (json!("DELETE"), json!(t3))
    );
    assert_eq!(d["before"]["id"], 2);
    assert_eq!(
        (e["operation"].clone(), e["commit_ts"].clone()),
        (json!("INSERT"), json!(t4))
    );
    let t5 = sql(&server, "UPDATE orders SET total = 1.0 WHERE id = 3")
        .await
        .unwrap();
    let f = next(&mut ws).await;
    assert_eq!(f["commit_ts"], t5);

    let mut filtered = connect(&format!("ws://{}", server.ws)).await;
    send(
        &mut filtered,
        json!({"type": "subscribe", "table": "orders", "from": t1 - 1, "where": "status = 'shipped'"}),
    )
    .await;
    assert_eq!(next(&mut filtered).await["type"], "subscribed");
    let g = next(&mut filtered).await;
    assert_eq!(
        (g["operation"].clone(), g["commit_ts"].clone()),
        (json!("UPDATE"), json!(t2))
    );
    drop((ws, filtered));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_the_upgrade_needs_one() {
    let token = "0123456789abcdef0123456789abcdef";
    let mut config = ServerConfig::default();
    config.auth_tokens.insert("alice".into(), token.into());
    let server = start(config).await;
    let refused = tokio_tungstenite::connect_async(format!("ws://{}", server.ws)).await;
    assert!(refused.is_err(), "no token, no connection");
    let wrong = tokio_tungstenite::connect_async(format!("ws://{}/?token=nope", server.ws)).await;
    assert!(wrong.is_err());
    let mut ws = connect(&format!("ws://{}/?token={token}", server.ws)).await;
    send(&mut ws, json!({"type": "subscribe", "table": "orders"})).await;
    assert_eq!(next(&mut ws).await["type"], "subscribed");
    drop(ws);
    server.shutdown().await;
}

/// The documented `monitor_changes()`, run by Python's `websockets`, receives a write made over
/// gRPC. The Python comes from `scripts/setup.sh` (`CHRONODB_PYTHON`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_monitor_snippet_receives_a_write_made_over_grpc() {
    let python = std::env::var("CHRONODB_PYTHON")
        .expect("CHRONODB_PYTHON is set by scripts/env.sh (a Python with websockets)");
    let server = start(ServerConfig::default()).await;
    let port = server.ws.rsplit(':').next().unwrap().to_string();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/monitor_changes.py");
    let mut child = Command::new(python)
        .arg("-u")
        .arg(script)
        .arg(&port)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python runs");
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    async fn line(lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
        tokio::time::timeout(Duration::from_secs(20), lines.recv())
            .await
            .expect("the snippet prints within 20 s")
            .expect("the snippet is running")
    }
    let subscribed = line(&mut lines).await;
    assert!(
        subscribed.starts_with("Update:") && subscribed.contains("subscribed"),
        "{subscribed}"
    );
    let ts = sql(&server, "INSERT INTO orders VALUES (7, 42.0, 'pending')")
        .await
        .unwrap();
    let update = line(&mut lines).await;
    let _ = child.kill();
    let _ = child.wait();
    let message: Json = serde_json::from_str(update.strip_prefix("Update: ").unwrap()).unwrap();
    assert_eq!(message["type"], "change");
    assert_eq!(message["table"], "orders");
    assert_eq!(message["operation"], "INSERT");
    assert_eq!(message["after"]["total"], 42.0);
    assert_eq!(message["commit_ts"], ts);
    server.shutdown().await;
}
