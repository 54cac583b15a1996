//! GraphQL over HTTP end to end: the documented query from Python, relations both ways and in
//! batches, `asOf` on a whole tree, limits and errors.

use chrono_server::config::ServerConfig;
use serde_json::{Value as Json, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;

use support::written_at;

use support::InProcess as Server;

/// A graphql-transport-ws connection to `url`, its `connection_init` sent.
async fn graphql_ws(
    url: String,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    ws.send(Message::Text(
        json!({"type": "connection_init"}).to_string().into(),
    ))
    .await
    .unwrap();
    ws
}

async fn start(config: ServerConfig) -> Server {
    Server::start(
        config,
        &[
            "CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL, email TEXT)",
            "CREATE TABLE orders (id BIGINT PRIMARY KEY, user_id BIGINT REFERENCES users(id), \
             total DOUBLE, status TEXT)",
            "INSERT INTO users VALUES (1, 'Alice', 'alice@example.com'), \
             (2, 'Bob', 'bob@example.com'), (3, 'Carol', NULL)",
            "INSERT INTO orders VALUES (10, 1, 99.5, 'shipped'), (11, 1, 15.0, 'pending'), \
             (12, 2, 7.25, 'shipped')",
        ],
    )
    .await
}

/// POSTs `body` to `/graphql` (HTTP/1.1, by hand: no client library needed); the status
/// and the body.
async fn post(server: &Server, body: &Json, token: Option<&str>) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(&server.http).await.unwrap();
    let body = body.to_string();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n{auth}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        server.http,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

async fn graphql(server: &Server, query: &str) -> Json {
    let (status, body) = post(server, &json!({ "query": query }), None).await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_query_from_python_returns_alice_and_her_orders() {
    let server = start(ServerConfig::default()).await;
    let out = support::python("graphql_query.py", vec![format!("http://{}", server.http)]).await;
    let response: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        response,
        json!({"data": {"users": [{
            "name": "Alice",
            "email": "alice@example.com",
            "orders": [{"total": 99.5, "status": "shipped"}, {"total": 15.0, "status": "pending"}]
        }]}})
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relations_both_ways_in_one_query_per_level_and_filters() {
    let server = start(ServerConfig::default()).await;
    server.db.database().statement_stats().reset();
    let r = graphql(
        &server,
        "{ users(orderBy: \"id DESC\") { name orders { id user { name } } } }",
    )
    .await;
    assert_eq!(
        r["data"]["users"],
        json!([
            {"name": "Carol", "orders": []},
            {"name": "Bob", "orders": [{"id": 12, "user": {"name": "Bob"}}]},
            {"name": "Alice", "orders": [
                {"id": 10, "user": {"name": "Alice"}},
                {"id": 11, "user": {"name": "Alice"}}
            ]}
        ]),
        "{r}"
    );
    // Three users, three orders: one query for the users, one for all their orders, one for
    // all the orders' users — never one per row.
    let calls: u64 = server
        .db
        .database()
        .statement_stats()
        .summaries()
        .iter()
        .filter(|s| s.statement.to_ascii_lowercase().starts_with("select"))
        .map(|s| s.calls)
        .sum();
    assert_eq!(calls, 3);

    let r = graphql(
        &server,
        "{ orders(status: \"shipped\", limit: 1, offset: 1, orderBy: \"total\") { id total } }",
    )
    .await;
    assert_eq!(
        r["data"]["orders"],
        json!([{"id": 10, "total": 99.5}]),
        "{r}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_of_reads_the_whole_tree_at_one_time() {
    let server = start(ServerConfig::default()).await;
    let before = chrono_storage::Timestamp::now();
    std::thread::sleep(std::time::Duration::from_millis(5));
    server
        .db
        .execute("UPDATE users SET email = 'alice@new.example' WHERE id = 1")
        .unwrap();
    server
        .db
        .execute("UPDATE orders SET status = 'shipped' WHERE id = 11")
        .unwrap();
    let now = graphql(&server, "{ users(id: 1) { email orders { status } } }").await;
    assert_eq!(
        now["data"]["users"][0],
        json!({"email": "alice@new.example", "orders": [{"status": "shipped"}, {"status": "shipped"}]})
    );
    for as_of in [
        format!("\"{}\"", before.seconds()),
        before.seconds(),
        format!("\"{before}\""),
    ] {
        let then = graphql(
            &server,
            &format!("{{ users(id: 1, asOf: {as_of}) {{ email orders {{ status }} }} }}"),
        )
        .await;
        assert_eq!(
            then["data"]["users"][0],
            json!({"email": "alice@example.com", "orders": [{"status": "shipped"}, {"status": "pending"}]}),
            "asOf {as_of}: {then}"
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_follow_the_spec_and_limits_hold() {
    let mut config = ServerConfig {
        graphql_max_depth: 4,
        ..Default::default()
    };
    let token = "0123456789abcdef0123456789abcdef";
    config.auth_tokens.insert("alice".into(), token.into());
    let server = start(config).await;
    let (status, _) = post(&server, &json!({"query": "{ users { name } }"}), None).await;
    assert_eq!(status, 401);
    let ask = |q: &str| json!({ "query": q });
    let (status, body) = post(
        &server,
        &ask("{ users(orderBy: \"nope\") { name } }"),
        Some(token),
    )
    .await;
    assert_eq!(status, 200);
    let r: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(r["errors"][0]["extensions"]["kind"], "NotFound", "{r}");
    let (_, body) = post(
        &server,
        &ask("{ users(asOf: \"not a time\") { name } }"),
        Some(token),
    )
    .await;
    let r: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(r["errors"][0]["extensions"]["kind"], "InvalidInput", "{r}");
    let (_, body) = post(
        &server,
        &ask("{ users { orders { user { orders { user { name } } } } } }"),
        Some(token),
    )
    .await;
    let r: Json = serde_json::from_str(&body).unwrap();
    assert!(
        r["errors"][0]["message"].as_str().unwrap().contains("deep"),
        "{r}"
    );
    let (_, body) = post(&server, &ask("{ nosuchtable { x } }"), Some(token)).await;
    let r: Json = serde_json::from_str(&body).unwrap();
    assert!(r["errors"].is_array(), "{r}");
    // The schema follows the catalog.
    server
        .db
        .execute("CREATE TABLE notes (id BIGINT PRIMARY KEY, body TEXT)")
        .unwrap();
    server
        .db
        .execute("INSERT INTO notes VALUES (1, 'hello')")
        .unwrap();
    let (_, body) = post(&server, &ask("{ notes { body } }"), Some(token)).await;
    let r: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(r["data"]["notes"], json!([{"body": "hello"}]), "{r}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutations_return_their_commit_and_history_shows_every_version() {
    let token = "0123456789abcdef0123456789abcdef";
    let mut config = ServerConfig::default();
    config.auth_tokens.insert("carol".into(), token.into());
    let server = start(config).await;
    let mutate = |q: &str| json!({ "query": q });
    let (_, body) = post(&server,
            &mutate("mutation { insert_users(id: 4, name: \"Dan\", email: \"dan@example.com\") { affected commitTs commitTime } }"),
            Some(token),
        )
        .await;
    let r: Json = serde_json::from_str(&body).unwrap();
    let inserted = &r["data"]["insert_users"];
    assert_eq!(inserted["affected"], 1, "{r}");
    let t1: u64 = inserted["commitTs"].as_str().unwrap().parse().unwrap();
    let (_, body) = post(&server,
            &mutate("mutation { update_users(id: 4, set: {email: \"dan@new.example\"}) { affected commitTs rows { id name email } } }"),
            Some(token),
        )
        .await;
    let r: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(r["data"]["update_users"]["affected"], 1, "{r}");
    // The rows as written (RETURNING), with the commit's time all the same.
    assert_eq!(
        r["data"]["update_users"]["rows"],
        json!([{"id": 4, "name": "Dan", "email": "dan@new.example"}]),
        "{r}"
    );
    let t2: u64 = r["data"]["update_users"]["commitTs"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(t2 > t1);
    let (_, body) = post(
        &server,
        &mutate("{ usersHistory(id: 4) { email _systemFrom _systemTo _operation _principal } }"),
        Some(token),
    )
    .await;
    let r: Json = serde_json::from_str(&body).unwrap();
    let versions = r["data"]["usersHistory"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{r}");
    assert_eq!(versions[0]["email"], "dan@example.com");
    assert_eq!(
        versions[0]["_systemFrom"],
        chrono_storage::Timestamp::from_micros(t1).to_string()
    );
    assert_eq!(versions[0]["_systemTo"], versions[1]["_systemFrom"]);
    assert_eq!(versions[1]["_systemTo"], Json::Null);
    // What made each version and who: the token's name, from the audit trail.
    assert_eq!(versions[0]["_operation"], "INSERT");
    assert_eq!(versions[1]["_operation"], "UPDATE");
    assert_eq!(versions[0]["_principal"], "carol", "{r}");
    assert_eq!(versions[1]["_principal"], "carol");
    let (_, body) = post(
        &server,
        &mutate("mutation { delete_users(id: 4) { affected } }"),
        Some(token),
    )
    .await;
    let r: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(r["data"]["delete_users"]["affected"], 1, "{r}");
    // A constraint failure is a GraphQL error with the SQL error's kind.
    let (_, body) = post(
        &server,
        &mutate("mutation { insert_users(id: 1, name: \"Again\") { affected } }"),
        Some(token),
    )
    .await;
    let r: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(r["errors"][0]["extensions"]["kind"], "Constraint", "{r}");
    // The audit trail names who wrote.
    let report = server
        .db
        .audit_trail()
        .unwrap()
        .generate_audit_report("users", 0, u64::MAX)
        .unwrap();
    assert!(
        report
            .iter()
            .any(|e| e.principal.as_deref() == Some("carol")),
        "mutations are audited under the token's principal"
    );
    server.shutdown().await;
}

/// A graphql-transport-ws subscription (here with a Rust client; the Python one below):
/// from a commit timestamp, it receives every later change of its table, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graphql_transport_ws_subscription_follows_a_table() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let server = start(ServerConfig::default()).await;
    let t0 = written_at(
        &server
            .db
            .execute("UPDATE orders SET total = 1.0 WHERE id = 12")
            .unwrap(),
    );
    let mut ws = graphql_ws(format!("ws://{}/graphql", server.http)).await;
    let send = |m: Json| Message::Text(m.to_string().into());
    async fn next(
        ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
    ) -> Json {
        loop {
            let m = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
                .await
                .expect("a message within 10 s")
                .unwrap()
                .unwrap();
            if let Message::Text(t) = m {
                return serde_json::from_str(&t).unwrap();
            }
        }
    }
    assert_eq!(next(&mut ws).await["type"], "connection_ack");
    ws.send(send(json!({
        "id": "1",
        "type": "subscribe",
        "payload": {"query": format!(
            "subscription {{ orders(from: \"{t0}\") {{ operation before {{ status }} after {{ id status }} commitTs }} }}"
        )}
    })))
    .await
    .unwrap();
    let t1 = written_at(
        &server
            .db
            .execute("UPDATE orders SET status = 'returned' WHERE id = 10")
            .unwrap(),
    );
    let event = next(&mut ws).await;
    assert_eq!(event["type"], "next", "{event}");
    assert_eq!(
        event["payload"]["data"]["orders"],
        json!({
            "operation": "UPDATE",
            "before": {"status": "shipped"},
            "after": {"id": 10, "status": "returned"},
            "commitTs": t1.to_string()
        })
    );
    ws.send(send(json!({"id": "1", "type": "complete"})))
        .await
        .unwrap();
    drop(ws);
    server.shutdown().await;
}

/// The same subscription from Python (`websockets`, the protocol's messages by hand).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_graphql_transport_ws_client_receives_the_change() {
    let server = start(ServerConfig::default()).await;
    let t0 = written_at(
        &server
            .db
            .execute("UPDATE orders SET total = 2.0 WHERE id = 12")
            .unwrap(),
    );
    let t1 = written_at(
        &server
            .db
            .execute("INSERT INTO orders VALUES (13, 3, 5.0, 'pending')")
            .unwrap(),
    );
    let out = support::python(
        "graphql_subscription.py",
        vec![server.http.clone(), t0.to_string()],
    )
    .await;
    let payload: Json = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        payload["data"]["orders"],
        json!({"operation": "INSERT", "after": {"id": 13, "status": "pending"}, "commitTs": t1.to_string()})
    );
    server.shutdown().await;
}

/// A mutation sent over the GraphQL WebSocket runs as the token the upgrade carried: the
/// audit trail names its principal, as for one POSTed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutations_over_the_websocket_are_audited_under_the_tokens_principal() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let token = "0123456789abcdef0123456789abcdef";
    let mut config = ServerConfig::default();
    config.auth_tokens.insert("dora".into(), token.into());
    let server = start(config).await;
    let mut ws = graphql_ws(format!("ws://{}/graphql?token={token}", server.http)).await;
    let send = |m: Json| Message::Text(m.to_string().into());
    let mut replies = Vec::new();
    ws.send(send(json!({
        "id": "1",
        "type": "subscribe",
        "payload": {"query": "mutation { insert_users(id: 40, name: \"Over WS\") { affected } }"}
    })))
    .await
    .unwrap();
    while !replies.iter().any(|r: &Json| r["type"] == "next") {
        let m = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("a reply within 10 s")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = m {
            let r: Json = serde_json::from_str(&t).unwrap();
            assert_ne!(r["type"], "error", "{r}");
            replies.push(r);
        }
    }
    let next = replies.iter().find(|r| r["type"] == "next").unwrap();
    assert_eq!(
        next["payload"]["data"]["insert_users"]["affected"], 1,
        "{next}"
    );
    let report = server
        .db
        .audit_trail()
        .unwrap()
        .generate_audit_report("users", 0, u64::MAX)
        .unwrap();
    let written = report.last().expect("the insert is audited");
    assert_eq!(written.principal.as_deref(), Some("dora"));
    drop(ws);
    server.shutdown().await;
}

/// A view is a read-only root field of the columns its query gives, filtered, ordered,
/// paged and read `asOf` like a table's; it has no mutations or history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_are_read_only_root_fields() {
    let server = start(ServerConfig::default()).await;
    server
        .db
        .execute(
            "CREATE VIEW big_orders AS SELECT o.id, u.name, o.total FROM orders o \
             JOIN users u ON u.id = o.user_id WHERE o.total > 10",
        )
        .unwrap();
    let ask = |q: &str| json!({ "query": q });
    let (_, body) = post(
        &server,
        &ask("{ big_orders(orderBy: \"total DESC\") { id name total } }"),
        None,
    )
    .await;
    let r: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(
        r["data"]["big_orders"],
        json!([
            {"id": 10, "name": "Alice", "total": 99.5},
            {"id": 11, "name": "Alice", "total": 15.0}
        ]),
        "{r}"
    );
    // Filtered by a column, and as of a time before a change.
    let before = match server
        .db
        .execute("UPDATE orders SET total = 1 WHERE id = 10")
        .unwrap()
        .remove(0)
    {
        chrono_server::Outcome::Affected {
            commit_ts: Some(t), ..
        } => t - 1,
        other => panic!("{other:?}"),
    };
    let (_, body) = post(
        &server,
        &ask("{ big_orders(name: \"Alice\") { id } }"),
        None,
    )
    .await;
    let r: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(r["data"]["big_orders"], json!([{"id": 11}]), "{r}");
    let (_, body) = post(
        &server,
        &ask(&format!("{{ big_orders(asOf: \"{before}\") {{ id }} }}")),
        None,
    )
    .await;
    let r: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(
        r["data"]["big_orders"].as_array().map(|a| a.len()),
        Some(2),
        "{r}"
    );
    // No mutation or history for it.
    let (_, body) = post(
        &server,
        &ask("mutation { insert_big_orders(id: 1) { affected } }"),
        None,
    )
    .await;
    assert!(body.contains("errors"), "{body}");
    let (_, body) = post(&server, &ask("{ big_ordersHistory { id } }"), None).await;
    assert!(body.contains("errors"), "{body}");
    server.shutdown().await;
}
