//! Hostile clients of the HTTP side — GraphQL, its WebSocket, the WebSocket monitor and the
//! explorer's routes — against a real `chronodb serve` process, as the gRPC side is tried
//! in `hostile.rs`: each request gets an error or a correct answer, the server stays up and
//! answers a probe promptly, its memory stays bounded, nothing leaks, and every interface
//! refuses every wrong credential.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value as Json, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// Most resident memory a server may reach in these tests, in MiB.
const MAX_RSS_MB: u64 = 2048;

struct Served {
    child: Child,
    grpc: String,
    http: String,
    ws: String,
    _dir: tempfile::TempDir,
}

impl Served {
    /// A server with tokens, HTTP and the WebSocket monitor, and `extra` lines under
    /// `server:` in its config.
    fn start(extra: &str) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "database:\n  data_file: data\nserver:\n  http: 127.0.0.1:0\n  websocket: 127.0.0.1:0\n  \
                 auth_tokens:\n    alice: {TOKEN}\n{extra}\
                 features:\n  ml_optimizer:\n    enabled: false\n"
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_chronodb"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(&config)
            .stderr(Stdio::piped())
            .spawn()
            .expect("server starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (mut grpc, mut http, mut ws) = (None, None, None);
        while grpc.is_none() || http.is_none() || ws.is_none() {
            let line = lines
                .next()
                .expect("the server prints its addresses")
                .unwrap();
            if let Some(a) = line.strip_prefix("chronodb serving gRPC on ") {
                grpc = Some(format!("http://{a}"));
            } else if let Some(a) = line.strip_prefix("chronodb serving GraphQL on http://") {
                http = Some(a.trim_end_matches("/graphql").to_string());
            } else if let Some(a) =
                line.strip_prefix("chronodb serving the WebSocket change monitor on ws://")
            {
                ws = Some(a.to_string());
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Served {
            child,
            grpc: grpc.unwrap(),
            http: http.unwrap(),
            ws: ws.unwrap(),
            _dir: dir,
        }
    }

    fn status_field(&self, field: &str) -> u64 {
        support::proc_status_kb(self.child.id(), field)
    }

    fn peak_rss_mb(&self) -> u64 {
        self.status_field("VmHWM:") / 1024
    }

    /// Open file descriptors of the server.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .unwrap()
            .count()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The server is up and answers a small GraphQL query within `within`.
    async fn responsive(&mut self, within: Duration) {
        assert!(self.alive(), "the server died");
        let probe = tokio::time::timeout(
            within,
            http(
                &self.http,
                "POST",
                "/graphql",
                &[auth()],
                r#"{"query":"{ t(id: 1) { id } }"}"#,
            ),
        )
        .await;
        let (status, body) = probe.expect("the server answers a probe in time");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"id\":1"), "{body}");
        assert!(
            self.peak_rss_mb() < MAX_RSS_MB,
            "peak RSS {} MiB",
            self.peak_rss_mb()
        );
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn auth() -> (&'static str, String) {
    ("Authorization", format!("Bearer {TOKEN}"))
}

/// One HTTP/1.1 request by hand (headers exactly as given, plus Host and Content-Length);
/// the status and the body.
async fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request += &format!("Host: {addr}\r\n");
    }
    for (k, v) in headers {
        request += &format!("{k}: {v}\r\n");
    }
    request += &format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // A server that refuses early may close before the body is sent: that is an answer.
    let _ = stream.write_all(request.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response).to_string();
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        return (0, response);
    };
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

async fn graphql(served: &Served, query: &str) -> (u16, String) {
    http(
        &served.http,
        "POST",
        "/graphql",
        &[auth()],
        &json!({ "query": query }).to_string(),
    )
    .await
}

/// The answer holds a GraphQL error whose message names `key`.
fn refused_naming(answer: &(u16, String), key: &str) {
    let (status, body) = answer;
    assert!(
        body.contains(key),
        "expected an error naming {key}, got {status}: {}",
        &body[..body.len().min(400)]
    );
}

/// Runs one statement over gRPC with the token.
async fn sql(served: &Served, statement: &str) {
    let mut client = chrono_proto::v1::sql_client::SqlClient::connect(served.grpc.clone())
        .await
        .unwrap();
    let mut req = tonic::Request::new(chrono_proto::v1::ExecuteRequest {
        sql: statement.to_string(),
        params: vec![],
        transaction_id: String::new(),
    });
    req.metadata_mut()
        .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
    client.execute(req).await.unwrap();
}

async fn setup(served: &Served) {
    sql(served, "CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)").await;
    sql(
        served,
        "CREATE TABLE u (id BIGINT PRIMARY KEY, t_id BIGINT REFERENCES t(id), w TEXT)",
    )
    .await;
    let rows: Vec<String> = (1..=1000).map(|i| format!("({i}, 'value {i}')")).collect();
    sql(served, &format!("INSERT INTO t VALUES {}", rows.join(", "))).await;
    let rows: Vec<String> = (1..=2000)
        .map(|i| format!("({i}, {}, 'w {i}')", 1 + i % 10))
        .collect();
    sql(served, &format!("INSERT INTO u VALUES {}", rows.join(", "))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphql_requests_that_recurse_multiply_or_flood_are_refused_and_the_server_stays_up() {
    let mut served = Served::start("");
    setup(&served).await;
    served.responsive(Duration::from_secs(30)).await;

    // Lists and input objects nested 10,000 deep: once these overflowed a worker's stack.
    let deep_list = format!(
        "{{ t(id: 1, v: {}\"x\"{}) {{ id }} }}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    refused_naming(
        &graphql(&served, &deep_list).await,
        "server.graphql_max_nesting",
    );
    let deep_object = format!(
        "mutation {{ update_t(id: 1, set: {}v: \"x\"{}) {{ affected }} }}",
        "{v: ".repeat(10_000),
        "}".repeat(10_000)
    );
    refused_naming(
        &graphql(&served, &deep_object).await,
        "server.graphql_max_nesting",
    );
    let deep_selection = format!("{{{}}}", "t { u { ".repeat(5_000));
    refused_naming(
        &graphql(&served, &deep_selection).await,
        "server.graphql_max_nesting",
    );
    // Variables nested past the JSON parser's limit: an error, never a crash.
    let deep_vars = format!(
        "{{\"query\":\"query($v: String) {{ t(v: $v) {{ id }} }}\",\"variables\":{{\"v\":{}1{}}}}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (status, _) = http(&served.http, "POST", "/graphql", &[auth()], &deep_vars).await;
    assert!((400..500).contains(&status), "status {status}");
    served.responsive(Duration::from_secs(30)).await;

    // A fragment bomb: 10^9 fields once expanded.
    let mut bomb = String::from("query { ...F0 }\n");
    for level in 0..9 {
        bomb += &format!("fragment F{level} on Query {{ ");
        for _ in 0..10 {
            bomb += &format!("...F{} ", level + 1);
        }
        bomb += "}\n";
    }
    bomb += "fragment F9 on Query { t(id: 1) { id v } }\n";
    refused_naming(
        &graphql(&served, &bomb).await,
        "server.graphql_max_selections",
    );
    served.responsive(Duration::from_secs(30)).await;

    // Aliases: many inside a list, and very many at the root in a large body.
    let aliases: String = (0..8_000).map(|i| format!("a{i}: v ")).collect();
    refused_naming(
        &graphql(&served, &format!("{{ t {{ {aliases} }} }}")).await,
        "server.graphql_max_selections",
    );
    let root: String = (0..3_000_000)
        .map(|i| format!("a{i}: t(id: 1) {{ id }} "))
        .collect();
    let (status, body) = graphql(&served, &format!("{{ {root} }}")).await;
    assert!(
        status == 413 || body.contains("server.graphql_max_query_bytes"),
        "status {status}: {}",
        &body[..body.len().min(300)]
    );
    served.responsive(Duration::from_secs(30)).await;

    // Relations back and forth within the allowed depth multiply rows: the answer's budget
    // stops them.
    let ping_pong = "{ t(limit: 10000) { id u { id t { id u { id t { id u { id w } } } } } } }";
    refused_naming(
        &graphql(&served, ping_pong).await,
        "server.graphql_max_result_values",
    );
    // A limit past the maximum is refused; without one, a list has the default.
    refused_naming(
        &graphql(&served, "{ t(limit: 1000000) { id } }").await,
        "server.graphql_max_limit",
    );
    let (status, body) = graphql(&served, "{ u { id } }").await;
    assert_eq!(status, 200);
    let answer: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer["data"]["u"].as_array().unwrap().len(),
        1000,
        "the default limit"
    );
    served.responsive(Duration::from_secs(30)).await;

    // Internal names: a table named like a built-in type or one whose names clash is left
    // out with a warning; the rest of the schema still answers.
    for statement in [
        "CREATE TABLE time (id BIGINT PRIMARY KEY, at TEXT)",
        "CREATE TABLE t_version (id BIGINT PRIMARY KEY)",
        "CREATE TABLE \"weird name\" (id BIGINT PRIMARY KEY)",
        "CREATE TABLE things (id BIGINT PRIMARY KEY, \"limit\" BIGINT, \"set\" TEXT)",
        "INSERT INTO things VALUES (1, 7, 'x')",
    ] {
        sql(&served, statement).await;
    }
    let (status, body) = graphql(
        &served,
        "{ _schemaWarnings t(id: 1) { id } time { id } things(limit: 5) { limit set } }",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let answer: Json = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["data"]["t"][0]["id"], 1, "{body}");
    assert!(answer["data"]["time"].is_array(), "{body}");
    assert_eq!(
        answer["data"]["things"],
        json!([{"limit": 7, "set": "x"}]),
        "{body}"
    );
    let warnings = answer["data"]["_schemaWarnings"].to_string();
    assert!(warnings.contains("weird name"), "{warnings}");
    assert!(warnings.contains("t_version"), "{warnings}");
    served.responsive(Duration::from_secs(30)).await;
}

/// Every interface × every credential form: only a well-formed known token gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_interface_refuses_every_wrong_credential() {
    let mut served = Served::start("");
    setup(&served).await;
    let wrong: Vec<Vec<(&str, String)>> = vec![
        vec![],
        vec![("Authorization", TOKEN.to_string())],
        vec![("Authorization", format!("Basic {TOKEN}"))],
        vec![("Authorization", format!("Bearer{TOKEN}"))],
        vec![("Authorization", format!("Bearer {TOKEN}x"))],
        vec![("Authorization", format!("Bearer {}", &TOKEN[1..]))],
        vec![("Authorization", "Bearer ".to_string())],
        vec![("Authorization", format!("Bearer {TOKEN} {TOKEN}"))],
        vec![
            ("Authorization", format!("Bearer {TOKEN}")),
            ("Authorization", format!("Bearer {TOKEN}")),
        ],
        vec![("Authorization", format!("Bearer {}", TOKEN.to_uppercase()))],
        vec![("Cookie", format!("token={TOKEN}"))],
        vec![("X-Token", TOKEN.to_string())],
    ];
    let good = vec![("Authorization", format!("bearer {TOKEN}"))];
    let routes: [(&str, &str, &str); 4] = [
        ("POST", "/graphql", r#"{"query":"{ t(id: 1) { id } }"}"#),
        ("GET", "/api/tables", ""),
        ("GET", "/api/audit", ""),
        ("POST", "/api/audit/verify", ""),
    ];
    for (method, path, body) in routes {
        for headers in &wrong {
            let (status, _) = http(&served.http, method, path, headers, body).await;
            assert_eq!(status, 401, "{method} {path} with {headers:?}");
        }
        let (status, body) = http(&served.http, method, path, &good, body).await;
        assert_eq!(status, 200, "{method} {path}: {body}");
    }
    // A query token is for WebSocket upgrades only.
    let (status, _) = http(
        &served.http,
        "GET",
        &format!("/api/tables?token={TOKEN}"),
        &[],
        "",
    )
    .await;
    assert_eq!(status, 401);

    // The WebSocket upgrades: GraphQL's and the monitor's.
    let upgrade = |url: String, headers: Vec<(&'static str, String)>| async move {
        let mut request = url.into_client_request().unwrap();
        if headers.iter().any(|(k, _)| *k == "graphql") {
            request.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                "graphql-transport-ws".parse().unwrap(),
            );
        }
        for (k, v) in headers.iter().filter(|(k, _)| *k != "graphql") {
            request.headers_mut().append(*k, v.parse().unwrap());
        }
        tokio_tungstenite::connect_async(request).await.is_ok()
    };
    for (base, graphql_protocol) in [
        (format!("ws://{}/graphql", served.http), true),
        (format!("ws://{}/", served.ws), false),
    ] {
        let with = |mut h: Vec<(&'static str, String)>| {
            if graphql_protocol {
                h.push(("graphql", String::new()));
            }
            h
        };
        for headers in &wrong {
            let h: Vec<(&'static str, String)> = headers
                .iter()
                .map(|(k, v)| {
                    (
                        if *k == "Authorization" {
                            "Authorization"
                        } else {
                            "X-Other"
                        },
                        v.clone(),
                    )
                })
                .collect();
            assert!(
                !upgrade(base.clone(), with(h)).await,
                "{base} with {headers:?}"
            );
        }
        for query in [
            "?token=",
            "?token=nope-nope-nope-nope",
            &format!("?token={}", &TOKEN[2..]),
        ] {
            assert!(
                !upgrade(format!("{base}{query}"), with(vec![])).await,
                "{base}{query}"
            );
        }
        assert!(
            upgrade(format!("{base}?token={TOKEN}"), with(vec![])).await,
            "{base}"
        );
        assert!(
            upgrade(
                base.clone(),
                with(vec![("Authorization", format!("Bearer {TOKEN}"))])
            )
            .await,
            "{base}"
        );
    }

    // gRPC, unary and streaming, through the same check.
    use chrono_proto::v1 as pb;
    let channel = tonic::transport::Channel::from_shared(served.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let grpc_forms: Vec<Vec<String>> = vec![
        vec![],
        vec![TOKEN.to_string()],
        vec![format!("Basic {TOKEN}")],
        vec![format!("Bearer {TOKEN}x")],
        vec![format!("Bearer {TOKEN}"), format!("Bearer {TOKEN}")],
    ];
    fn with<T>(values: &[String], mut req: tonic::Request<T>) -> tonic::Request<T> {
        for v in values {
            req.metadata_mut()
                .append("authorization", v.parse().unwrap());
        }
        req
    }
    for values in &grpc_forms {
        let with = |req| with(values, req);
        let with_stream = |req: tonic::Request<pb::SubscribeRequest>| {
            let mut req = req;
            for v in values {
                req.metadata_mut()
                    .append("authorization", v.parse().unwrap());
            }
            req
        };
        let unary = pb::sql_client::SqlClient::new(channel.clone())
            .execute(with(tonic::Request::new(pb::ExecuteRequest {
                sql: "SELECT 1".into(),
                params: vec![],
                transaction_id: String::new(),
            })))
            .await;
        assert_eq!(
            unary.unwrap_err().code(),
            tonic::Code::Unauthenticated,
            "{values:?}"
        );
        let stream = pb::changes_client::ChangesClient::new(channel.clone())
            .subscribe(with_stream(tonic::Request::new(pb::SubscribeRequest {
                tables: vec!["t".into()],
                predicate: String::new(),
                from_micros: None,
            })))
            .await;
        assert_eq!(
            stream.err().map(|e| e.code()),
            Some(tonic::Code::Unauthenticated),
            "{values:?}"
        );
    }
    served.responsive(Duration::from_secs(30)).await;
}

/// Browsers: no cross-origin WebSocket or state change, no DNS rebinding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_other_origins_and_rebound_host_names_are_refused() {
    let mut served = Served::start("");
    setup(&served).await;
    let body = r#"{"query":"mutation { insert_t(id: 5000, v: \"csrf\") { affected } }"}"#;
    let evil = ("Origin", "http://evil.example".to_string());
    let (status, _) = http(
        &served.http,
        "POST",
        "/graphql",
        &[auth(), evil.clone()],
        body,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = http(
        &served.http,
        "POST",
        "/graphql",
        &[auth(), ("Origin", "null".to_string())],
        body,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = http(
        &served.http,
        "POST",
        "/api/audit/verify",
        &[auth(), evil.clone()],
        "",
    )
    .await;
    assert_eq!(status, 403);
    // Its own origin may.
    let own = ("Origin", format!("http://{}", served.http));
    let (status, body) = http(&served.http, "POST", "/graphql", &[auth(), own], body).await;
    assert_eq!(status, 200, "{body}");
    // A rebound host name is refused for reads too.
    let (status, _) = http(
        &served.http,
        "GET",
        "/api/tables",
        &[auth(), ("Host", "rebound.evil.example".to_string())],
        "",
    )
    .await;
    assert_eq!(status, 421);
    // WebSocket upgrades from another origin, to both WebSockets.
    for url in [
        format!("ws://{}/graphql?token={TOKEN}", served.http),
        format!("ws://{}/?token={TOKEN}", served.ws),
    ] {
        let mut request = url.clone().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Origin", "http://evil.example".parse().unwrap());
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        assert!(
            tokio_tungstenite::connect_async(request).await.is_err(),
            "{url}"
        );
    }
    // No CORS: nothing tells a browser it may read an answer from another origin.
    let mut stream = TcpStream::connect(&served.http).await.unwrap();
    stream
        .write_all(
            format!(
                "OPTIONS /graphql HTTP/1.1\r\nHost: {}\r\nOrigin: http://evil.example\r\n\
                 Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n",
                served.http
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response).await;
    assert!(
        !response
            .to_ascii_lowercase()
            .contains("access-control-allow-origin")
    );
    served.responsive(Duration::from_secs(30)).await;
}

/// Connections: a limit with a clear refusal, timeouts for slow and silent clients, and no
/// leaked sockets after bursts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_limited_timed_out_and_never_leaked() {
    let mut served = Served::start(
        "  http_max_connections: 40\n  http_header_timeout_ms: 1000\n  http_idle_timeout_secs: 3\n",
    );
    setup(&served).await;
    let fds_before = served.fds();

    // Silent connections past the limit: the ones past it are told so and closed.
    let mut silent = Vec::new();
    for _ in 0..40 {
        silent.push(TcpStream::connect(&served.http).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = TcpStream::connect(&served.http).await.unwrap();
    let mut answer = String::new();
    let read =
        tokio::time::timeout(Duration::from_secs(10), extra.read_to_string(&mut answer)).await;
    assert!(
        read.is_ok(),
        "a connection past the limit is answered at once"
    );
    assert!(
        answer.contains("503") && answer.contains("server.http_max_connections"),
        "{answer}"
    );

    // The silent ones are closed by the header timeout.
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        for mut s in silent {
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "silent connections are closed");

    // A client trickling its headers one byte at a time is closed too.
    let mut trickle = TcpStream::connect(&served.http).await.unwrap();
    let started = Instant::now();
    let request = format!(
        "GET /api/tables HTTP/1.1\r\nHost: {}\r\nX-Slow: ",
        served.http
    );
    let mut cut = false;
    for b in request.bytes().chain(std::iter::repeat(b'a')).take(200) {
        if trickle.write_all(&[b]).await.is_err() {
            cut = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if started.elapsed() > Duration::from_secs(15) {
            break;
        }
    }
    if !cut {
        let mut buf = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(5), trickle.read_to_end(&mut buf)).await;
        assert!(r.is_ok(), "a trickling client is closed");
    }

    // Bursts of WebSocket messages, then every client closes: the server's sockets return
    // to where they were.
    for _ in 0..20 {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{}/?token={TOKEN}", served.ws))
                .await
                .unwrap();
        for i in 0..50 {
            let _ = ws
                .send(Message::Text(
                    format!("{{\"type\":\"nope{i}\",\"table\":\"t\"}}").into(),
                ))
                .await;
        }
        let _ = ws.close(None).await;
    }
    let settled = async {
        for _ in 0..100 {
            if served.fds() <= fds_before + 8 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(
        settled.await,
        "sockets leaked: {} open, {fds_before} before",
        served.fds()
    );
    served.responsive(Duration::from_secs(30)).await;
}

/// WebSockets: floods of subscriptions, strict messages, filters that would run long, and
/// subscribers that never read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_floods_strict_messages_and_slow_filters_do_not_stop_the_server() {
    let mut served = Served::start("  ws_max_subscriptions: 1\n  statement_timeout_ms: 5000\n");
    setup(&served).await;
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/?token={TOKEN}", served.ws))
            .await
            .unwrap();
    // Duplicate keys and junk after a condition are errors, not silently cut.
    for bad in [
        r#"{"type":"subscribe","table":"t","where":"id > 0","where":"1=1"}"#,
        r#"{"type":"subscribe","table":"t","where":"id > 0) OR (1=1"}"#,
        r#"{"type":"subscribe","table":"t","extra":1}"#,
    ] {
        ws.send(Message::Text(bad.into())).await.unwrap();
        let reply = next_json(&mut ws).await;
        assert_eq!(reply["type"], "error", "{bad}: {reply}");
    }
    // 3,000 subscribe and unsubscribe messages in one burst: every one is answered.
    let mut burst = Vec::new();
    for i in 0..1500 {
        let table = if i % 2 == 0 { "t" } else { "u" };
        burst.push(json!({"type": "subscribe", "table": table, "from": 0}).to_string());
        burst.push(json!({"type": "unsubscribe", "table": table}).to_string());
    }
    for m in burst {
        ws.send(Message::Text(m.into())).await.unwrap();
    }
    let mut answered = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while answered < 1500 && Instant::now() < deadline {
        let reply = next_json(&mut ws).await;
        if reply["type"] == "unsubscribed" || reply["type"] == "error" {
            answered += 1;
        }
    }
    assert_eq!(answered, 1500, "every unsubscribe was answered");
    served.responsive(Duration::from_secs(30)).await;

    // More subscriptions than the limit on one connection (one a table; the limit is 1).
    let (mut many, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/?token={TOKEN}", served.ws))
            .await
            .unwrap();
    for table in ["t", "u"] {
        many.send(Message::Text(
            json!({"type": "subscribe", "table": table})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    }
    let (first, second) = (next_json(&mut many).await, next_json(&mut many).await);
    let both = format!("{first} {second}");
    assert!(both.contains("subscribed"), "{both}");
    assert!(both.contains("server.ws_max_subscriptions"), "{both}");

    // A filter whose subquery runs long is stopped by the statement timeout, and the server
    // keeps answering meanwhile.
    let slow = "v IN (SELECT a.v FROM t a, t b, t c WHERE a.v LIKE '%1%2%3%4%5%6%7%8%9%')";
    let mut slow_sockets = Vec::new();
    for _ in 0..3 {
        let (mut s, _) =
            tokio_tungstenite::connect_async(format!("ws://{}/?token={TOKEN}", served.ws))
                .await
                .unwrap();
        s.send(Message::Text(
            json!({"type": "subscribe", "table": "t", "where": slow})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
        slow_sockets.push(s);
    }
    served.responsive(Duration::from_secs(10)).await;
    for mut s in slow_sockets {
        let reply = next_json(&mut s).await;
        assert!(
            reply["type"] == "error" || reply["type"] == "subscribed",
            "{reply}"
        );
    }
    served.responsive(Duration::from_secs(30)).await;
}

async fn next_json<S>(ws: &mut S) -> Json
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let m = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("a message in time")
            .expect("the connection is open")
            .expect("a message");
        if let Message::Text(t) = m {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// Subscribers that replay history from its start and never read: each holds at most one
/// batch of the replay, so the server's memory stays bounded and it keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_for_subscribers_that_never_read_stay_bounded() {
    let mut served = Served::start("");
    sql(
        &served,
        "CREATE TABLE wide (id BIGINT PRIMARY KEY, body TEXT)",
    )
    .await;
    // About 60 MB of history: 60,000 rows of 1 KB.
    let body = "x".repeat(1000);
    for start in (0..60_000).step_by(2_000) {
        let rows: Vec<String> = (start..start + 2_000)
            .map(|i| format!("({i}, '{body}')"))
            .collect();
        sql(
            &served,
            &format!("INSERT INTO wide VALUES {}", rows.join(", ")),
        )
        .await;
    }
    sql(&served, "CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)").await;
    sql(&served, "INSERT INTO t VALUES (1, 'one')").await;
    let before = served.peak_rss_mb();
    let mut stalled = Vec::new();
    for _ in 0..100 {
        let (mut ws, _) =
            tokio_tungstenite::connect_async(format!("ws://{}/?token={TOKEN}", served.ws))
                .await
                .unwrap();
        ws.send(Message::Text(
            json!({"type": "subscribe", "table": "wide", "from": 0})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
        stalled.push(ws);
    }
    // Let the replays run into their subscribers' full sockets.
    tokio::time::sleep(Duration::from_secs(5)).await;
    served.responsive(Duration::from_secs(30)).await;
    let grown = served.peak_rss_mb().saturating_sub(before);
    eprintln!(
        "100 stalled replays: the server grew by {grown} MiB (peak {} MiB)",
        served.peak_rss_mb()
    );
    // Each holds about three commits of its table here (2,000 rows of 1 KB each): the one it
    // reads, the one ahead in its feed and the one being sent.
    assert!(
        grown < 1536,
        "100 stalled replays of 60 MB grew the server by {grown} MiB"
    );
    // Writes go on.
    sql(&served, "INSERT INTO wide VALUES (1000000, 'later')").await;
    drop(stalled);
    served.responsive(Duration::from_secs(30)).await;
}
