//! One time, every form: a commit's time as each interface prints it — gRPC's and GraphQL's
//! and the WebSocket monitor's microseconds, GraphQL's `commitTime`, the monitor's
//! `commit_time`, a version's `_systemFrom`, the shell's seconds with six decimals and its
//! `… UTC` — read back through every interface that takes a time: SQL `AS OF` over gRPC (as
//! text, as a number, as a parameter), GraphQL `asOf`, the WebSocket monitor's `from` and the
//! explorer's `/api/time`. Each reads the same state.

mod support;

use std::time::Duration;

use chrono_proto::v1 as pb;
use chrono_server::config::ServerConfig;
use chrono_storage::Timestamp;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value as Json, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

async fn http(addr: &str, method: &str, path: &str, body: &str) -> Json {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (_, body) = response.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

async fn graphql(addr: &str, query: &str) -> Json {
    http(
        addr,
        "POST",
        "/graphql",
        &json!({ "query": query }).to_string(),
    )
    .await
}

fn text_of(v: &pb::Value) -> String {
    match &v.kind {
        Some(pb::value::Kind::String(s)) => s.clone(),
        other => panic!("{other:?}"),
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A monitor connection subscribed to `t` from `from`.
async fn monitor_from(ws_addr: &str, from: Json) -> Socket {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{ws_addr}/"))
        .await
        .unwrap();
    ws.send(Message::Text(
        json!({"type": "subscribe", "table": "t", "from": from})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    ws
}

/// The next change message (an error message fails the test).
async fn next_change(ws: &mut Socket) -> Json {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m {
            let m: Json = serde_json::from_str(&t).unwrap();
            assert_ne!(m["type"], "error", "{m}");
            if m["type"] == "change" {
                return m;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_time_from_any_interface_reads_the_same_state_through_every_other() {
    let server = support::InProcess::start(
        ServerConfig::default(),
        &["CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)"],
    )
    .await;
    let mut sql = pb::sql_client::SqlClient::connect(server.grpc.clone())
        .await
        .unwrap();
    let execute = |text: &str, params: Vec<pb::Value>| pb::ExecuteRequest {
        sql: text.to_string(),
        params,
        transaction_id: String::new(),
    };
    let write = |answer: pb::ExecuteResponse| match answer.results[0].result.clone() {
        Some(pb::statement_result::Result::Write(w)) => w.commit_ts_micros.unwrap() as u64,
        other => panic!("{other:?}"),
    };

    // Three commits: over gRPC, over GraphQL, over gRPC.
    let first = write(
        sql.execute(execute("INSERT INTO t VALUES (1, 'a')", vec![]))
            .await
            .unwrap()
            .into_inner(),
    );
    let m = graphql(
        &server.http,
        r#"mutation { update_t(id: 1, set: {v: "b"}) { commitTs commitTime } }"#,
    )
    .await;
    let commit_ts = m["data"]["update_t"]["commitTs"]
        .as_str()
        .unwrap()
        .to_string();
    let commit_time = m["data"]["update_t"]["commitTime"]
        .as_str()
        .unwrap()
        .to_string();
    let second: u64 = commit_ts.parse().unwrap();
    assert!(second > first);
    tokio::time::sleep(Duration::from_millis(2)).await;
    sql.execute(execute("UPDATE t SET v = 'c' WHERE id = 1", vec![]))
        .await
        .unwrap();

    // The second commit's time as the other interfaces print it.
    let h = graphql(&server.http, "{ tHistory(id: 1) { v _systemFrom } }").await;
    let system_from = h["data"]["tHistory"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["v"] == "b")
        .unwrap()["_systemFrom"]
        .as_str()
        .unwrap()
        .to_string();
    let mut ws = monitor_from(&server.ws, json!(first)).await;
    let mut monitor = None;
    while monitor.is_none() {
        let m = next_change(&mut ws).await;
        if m["after"]["v"] == "b" {
            monitor = Some((
                m["commit_ts"].as_u64().unwrap(),
                m["commit_time"].as_str().unwrap().to_string(),
            ));
        }
    }
    let (monitor_ts, monitor_time) = monitor.unwrap();
    assert_eq!(monitor_ts, second);
    let at = Timestamp::from_micros(second);
    let forms = vec![
        (
            "gRPC / GraphQL commitTs / monitor commit_ts",
            second.to_string(),
        ),
        ("GraphQL commitTime", commit_time),
        ("monitor commit_time", monitor_time),
        ("_systemFrom", system_from),
        ("the shell's seconds", at.seconds()),
        ("the shell's UTC time", format!("{} UTC", at.iso())),
    ];

    for (name, form) in &forms {
        // SQL AS OF over gRPC: as text, and as a parameter.
        let answer = sql
            .execute(execute(
                &format!("SELECT v FROM t AS OF TIMESTAMP '{form}'"),
                vec![],
            ))
            .await
            .unwrap_or_else(|e| panic!("{name} {form}: {e}"))
            .into_inner();
        let rows = match &answer.results[0].result {
            Some(pb::statement_result::Result::Query(q)) => q.rows.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            text_of(&rows[0].values[0]),
            "b",
            "SQL AS OF '{form}' ({name})"
        );
        let answer = sql
            .execute(execute(
                "SELECT v FROM t AS OF TIMESTAMP ?",
                vec![pb::Value {
                    kind: Some(pb::value::Kind::String(form.clone())),
                }],
            ))
            .await
            .unwrap()
            .into_inner();
        let Some(pb::statement_result::Result::Query(q)) = &answer.results[0].result else {
            panic!()
        };
        assert_eq!(
            text_of(&q.rows[0].values[0]),
            "b",
            "SQL AS OF ? = {form} ({name})"
        );
        // As a number where it is one.
        if form.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            let answer = sql
                .execute(execute(
                    &format!("SELECT v FROM t AS OF TIMESTAMP {form}"),
                    vec![],
                ))
                .await
                .unwrap()
                .into_inner();
            let Some(pb::statement_result::Result::Query(q)) = &answer.results[0].result else {
                panic!()
            };
            assert_eq!(
                text_of(&q.rows[0].values[0]),
                "b",
                "SQL AS OF {form} ({name})"
            );
        }

        // GraphQL asOf.
        let g = graphql(&server.http, &format!("{{ t(asOf: \"{form}\") {{ v }} }}")).await;
        assert_eq!(
            g["data"]["t"][0]["v"], "b",
            "GraphQL asOf {form} ({name}): {g}"
        );

        // The explorer's reading of ?at=.
        let path = format!("/api/time?at={}", form.replace(' ', "%20"));
        let t = http(&server.http, "GET", &path, "").await;
        assert_eq!(t["micros"], json!(second), "/api/time {form} ({name}): {t}");

        // The monitor from that time: the next change is the third commit.
        let from: Json = match form.parse::<u64>() {
            Ok(n) => json!(n),
            Err(_) => json!(form),
        };
        let mut ws = monitor_from(&server.ws, from).await;
        let change = next_change(&mut ws).await;
        assert_eq!(
            change["after"]["v"], "c",
            "monitor from {form} ({name}): {change}"
        );
    }
    server.shutdown().await;
}
