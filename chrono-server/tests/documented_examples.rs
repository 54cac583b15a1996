//! The documented GraphQL query and its WebSocket `monitor_changes()` snippet, run from Python
//! against the real `chronodb serve --http … --websocket …` process; the write the monitor
//! receives is made over gRPC.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono_proto::v1 as pb;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_graphql_and_websocket_examples_work_against_chronodb_serve() {
    let python =
        std::env::var("CHRONODB_PYTHON").expect("CHRONODB_PYTHON is set by scripts/env.sh");
    let bin = env!("CARGO_BIN_EXE_chronodb");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().to_str().unwrap().to_string();
    let setup = Command::new(bin)
        .args(["sql", "--db", &db, "-e"])
        .arg(
            "CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT, email TEXT); \
             CREATE TABLE orders (id BIGINT PRIMARY KEY, user_id BIGINT REFERENCES users(id), \
             total DOUBLE, status TEXT); \
             INSERT INTO users VALUES (1, 'Alice', 'alice@example.com'); \
             INSERT INTO orders VALUES (1, 1, 99.99, 'shipped')",
        )
        .output()
        .unwrap();
    assert!(
        setup.status.success(),
        "{}",
        String::from_utf8_lossy(&setup.stderr)
    );

    let mut server = Command::new(bin)
        .args(["serve", "--db", &db, "--listen", "127.0.0.1:0"])
        .args(["--websocket", "127.0.0.1:0", "--http", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    let (mut grpc, mut ws, mut http) = (None, None, None);
    while grpc.is_none() || ws.is_none() || http.is_none() {
        let line = lines
            .next()
            .expect("the server prints its addresses")
            .unwrap();
        if let Some(a) = line.strip_prefix("chronodb serving gRPC on ") {
            grpc = Some(format!("http://{a}"));
        } else if let Some(a) =
            line.strip_prefix("chronodb serving the WebSocket change monitor on ws://")
        {
            ws = Some(a.to_string());
        } else if let Some(a) = line.strip_prefix("chronodb serving GraphQL on ") {
            http = Some(a.trim_end_matches("/graphql").to_string());
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python");

    // GraphQL: the documented query, verbatim.
    let out = Command::new(&python)
        .arg(root.join("graphql_query.py"))
        .arg(http.unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let response: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        response,
        serde_json::json!({"data": {"users": [{
            "name": "Alice", "email": "alice@example.com",
            "orders": [{"total": 99.99, "status": "shipped"}]
        }]}})
    );

    // WebSocket: the documented monitor, verbatim apart from the port.
    let port = ws.unwrap().rsplit(':').next().unwrap().to_string();
    let mut monitor = Command::new(&python)
        .arg("-u")
        .arg(root.join("monitor_changes.py"))
        .arg(&port)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let stdout = monitor.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
        tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("the monitor prints within 20 s")
            .expect("it runs")
    }
    assert!(next(&mut rx).await.contains("subscribed"));
    let mut sql = pb::sql_client::SqlClient::connect(grpc.unwrap())
        .await
        .unwrap();
    sql.execute(pb::ExecuteRequest {
        sql: "UPDATE orders SET status = 'delivered' WHERE id = 1".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let update = next(&mut rx).await;
    let _ = monitor.kill();
    let _ = monitor.wait();
    let message: serde_json::Value =
        serde_json::from_str(update.strip_prefix("Update: ").unwrap()).unwrap();
    assert_eq!(message["operation"], "UPDATE");
    assert_eq!(message["before"]["status"], "shipped");
    assert_eq!(message["after"]["status"], "delivered");

    let _ = Command::new("kill").arg(server.id().to_string()).status();
    assert!(server.wait().unwrap().success(), "stops cleanly on SIGTERM");
}
