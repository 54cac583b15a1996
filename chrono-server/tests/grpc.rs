//! The gRPC server end to end, with the generated tonic clients, on a free loopback port.

use std::sync::Arc;

mod support;

use chrono_proto::v1 as pb;
use chrono_proto::v1::sql_client::SqlClient;
use chrono_proto::v1::time_travel_client::TimeTravelClient;
use chrono_server::ChronoDb;
use chrono_server::config::ServerConfig;
use tonic::Code;
use tonic::transport::Channel;

struct Server {
    addr: String,
    db: Arc<ChronoDb>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

async fn start(config: ServerConfig) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(ChronoDb::open(dir.path()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = db.clone();
    let task = tokio::spawn(async move {
        chrono_server::grpc::serve(served, &config, listener, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    Server {
        addr,
        db,
        stop: Some(stop),
        task,
        _dir: dir,
    }
}

impl Server {
    async fn sql(&self) -> SqlClient<Channel> {
        SqlClient::connect(self.addr.clone()).await.unwrap()
    }

    async fn health_report(&self) -> pb::HealthReportResponse {
        pb::monitor_client::MonitorClient::connect(self.addr.clone())
            .await
            .unwrap()
            .health_report(pb::HealthReportRequest {})
            .await
            .unwrap()
            .into_inner()
    }

    async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await.unwrap();
    }
}

fn exec(sql: &str) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        sql: sql.into(),
        params: vec![],
        transaction_id: String::new(),
    }
}

/// Runs `text` over `sql` in autocommit, expecting success.
async fn run(sql: &mut SqlClient<Channel>, text: &str) -> pb::ExecuteResponse {
    sql.execute(exec(text)).await.unwrap().into_inner()
}

fn int(i: i64) -> pb::Value {
    pb::Value {
        kind: Some(pb::value::Kind::Int64(i)),
    }
}

fn rows(resp: pb::ExecuteResponse) -> Vec<Vec<pb::Value>> {
    match resp.results.into_iter().last().and_then(|r| r.result) {
        Some(pb::statement_result::Result::Query(q)) => {
            q.rows.into_iter().map(|r| r.values).collect()
        }
        other => panic!("expected rows, got {other:?}"),
    }
}

fn commit_ts(resp: &pb::ExecuteResponse) -> i64 {
    match resp.results.last().and_then(|r| r.result.as_ref()) {
        Some(pb::statement_result::Result::Write(w)) => w.commit_ts_micros.expect("committed"),
        other => panic!("expected a write, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_time_travel_transactions_and_errors_over_grpc() {
    let server = start(ServerConfig::default()).await;
    let mut sql = server.sql().await;
    sql.execute(exec(
        "CREATE TABLE accounts (user_id BIGINT PRIMARY KEY, balance BIGINT)",
    ))
    .await
    .unwrap();
    let t1 = commit_ts(
        &sql.execute(exec("INSERT INTO accounts VALUES (1, 100), (2, 50)"))
            .await
            .unwrap()
            .into_inner(),
    );
    let t2 = commit_ts(
        &sql.execute(exec(
            "UPDATE accounts SET balance = balance + 100 WHERE user_id = 1",
        ))
        .await
        .unwrap()
        .into_inner(),
    );
    assert!(t2 > t1);
    // AS OF with a TIMESTAMP parameter reads exactly the commit's state.
    let mut req = exec("SELECT balance FROM accounts AS OF TIMESTAMP ? WHERE user_id = ?");
    req.params = vec![
        pb::Value {
            kind: Some(pb::value::Kind::TimestampMicros(t1)),
        },
        int(1),
    ];
    assert_eq!(
        rows(sql.execute(req).await.unwrap().into_inner()),
        vec![vec![int(100)]]
    );

    // Explicit transaction across calls, and a conflicting autocommit write.
    let id = sql
        .begin(pb::BeginRequest {})
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    let mut in_txn = exec("UPDATE accounts SET balance = 0 WHERE user_id = 2");
    in_txn.transaction_id = id.clone();
    sql.execute(in_txn).await.unwrap();
    sql.execute(exec("UPDATE accounts SET balance = 1 WHERE user_id = 2"))
        .await
        .unwrap();
    let err = sql
        .commit(pb::TransactionRef {
            transaction_id: id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Aborted, "{err}");
    let err = sql
        .commit(pb::TransactionRef { transaction_id: id })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);

    // Transaction ids are random (128 bits) and, without authentication, bound to the
    // connection that began the transaction: another connection cannot use it.
    let id = sql
        .begin(pb::BeginRequest {})
        .await
        .unwrap()
        .into_inner()
        .transaction_id;
    assert_eq!(id.len(), 32);
    let mut other = server.sql().await;
    let mut stolen = exec("UPDATE accounts SET balance = 7 WHERE user_id = 2");
    stolen.transaction_id = id.clone();
    assert_eq!(
        other.execute(stolen).await.unwrap_err().code(),
        Code::NotFound
    );
    sql.rollback(pb::TransactionRef { transaction_id: id })
        .await
        .unwrap();

    // Errors map to status codes; a bad call does not disturb the next.
    assert_eq!(
        sql.execute(exec("SELEC 1")).await.unwrap_err().code(),
        Code::InvalidArgument
    );
    assert_eq!(
        sql.execute(exec("SELECT * FROM nope"))
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        sql.execute(exec("INSERT INTO accounts VALUES (1, 5)"))
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    assert_eq!(
        rows(
            sql.execute(exec("SELECT COUNT(*) FROM accounts"))
                .await
                .unwrap()
                .into_inner()
        ),
        vec![vec![int(2)]]
    );

    // Streaming a large result in batches.
    sql.execute(exec("CREATE TABLE big (id BIGINT PRIMARY KEY)"))
        .await
        .unwrap();
    let values: Vec<String> = (0..2500).map(|i| format!("({i})")).collect();
    sql.execute(exec(&format!(
        "INSERT INTO big VALUES {}",
        values.join(",")
    )))
    .await
    .unwrap();
    let mut stream = sql
        .execute_stream(exec("SELECT id FROM big"))
        .await
        .unwrap()
        .into_inner();
    let mut batches = 0;
    let mut n = 0;
    while let Some(batch) = stream.message().await.unwrap() {
        if batches == 0 {
            assert_eq!(batch.columns, vec!["id".to_string()]);
        }
        batches += 1;
        n += batch.rows.len();
    }
    assert_eq!((batches, n), (3, 2500));
    // One query per stream: a text with two is refused before any of it runs.
    let err = sql
        .execute_stream(exec(
            "INSERT INTO big VALUES (5000); SELECT id FROM big; SELECT 1",
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert_eq!(
        rows(
            sql.execute(exec("SELECT COUNT(*) FROM big"))
                .await
                .unwrap()
                .into_inner()
        ),
        vec![vec![int(2500)]]
    );

    // Time travel service.
    let mut tt = TimeTravelClient::connect(server.addr.clone())
        .await
        .unwrap();
    let h = tt
        .change_history(pb::ChangeHistoryRequest {
            table: "accounts".into(),
            primary_key: vec![int(1)],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(h.versions.len(), 2);
    assert_eq!(h.versions[1].operation, pb::Operation::Update as i32);
    let v = tt
        .versions(pb::VersionsRequest {
            table: "accounts".into(),
            from_micros: 0,
            to_micros: i64::MAX,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.columns, vec!["user_id".to_string(), "balance".into()]);
    assert_eq!(v.versions.len(), 4);
    let d = tt
        .diff(pb::DiffRequest {
            table: "accounts".into(),
            from_micros: t1,
            to_micros: t2,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.changes.len(), 1);
    assert_eq!(d.changes[0].kind, pb::ChangeKind::Changed as i32);
    assert_eq!(
        d.changes[0].after.as_ref().unwrap().values,
        vec![int(1), int(200)]
    );

    // Health and reflection.
    let channel = Channel::from_shared(server.addr.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "chronodb.v1.Sql".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    // The services listed by reflection, in v1 (grpcurl) and in v1alpha (Python's
    // grpcio-reflection): the same client code against either version's types.
    macro_rules! list_services {
        ($version:ident) => {{
            use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
            use tonic_reflection::pb::$version::{
                ServerReflectionRequest, server_reflection_request::MessageRequest,
                server_reflection_response::MessageResponse,
            };
            let req = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut responses = ServerReflectionClient::new(channel.clone())
                .server_reflection_info(tokio_stream::iter(vec![req]))
                .await
                .unwrap()
                .into_inner();
            let Some(MessageResponse::ListServicesResponse(list)) =
                responses.message().await.unwrap().unwrap().message_response
            else {
                panic!("no service list")
            };
            list.service
                .into_iter()
                .map(|s| s.name)
                .collect::<Vec<String>>()
        }};
    }
    let names = list_services!(v1);
    let alpha_names = list_services!(v1alpha);
    for s in [
        "chronodb.v1.Sql",
        "chronodb.v1.TimeTravel",
        "chronodb.v1.Monitor",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == s), "{names:?}");
        assert!(alpha_names.iter().any(|n| n == s), "{alpha_names:?}");
    }
    server.shutdown().await;
}

/// A point read runs on the receiving thread once its plan is kept: the same answers and
/// the same errors as the first execution (through the blocking pool), while the row changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_point_reads_answer_like_any_other_execution() {
    let server = start(ServerConfig::default()).await;
    let mut sql = server.sql().await;
    run(&mut sql, "CREATE TABLE kv (k BIGINT PRIMARY KEY, v TEXT)").await;
    run(&mut sql, "INSERT INTO kv VALUES (1, 'a'), (2, 'b')").await;
    let read = |k: pb::Value| pb::ExecuteRequest {
        sql: "SELECT v FROM kv WHERE k = ?".into(),
        params: vec![k],
        transaction_id: String::new(),
    };
    for round in 0..5 {
        let got = rows(sql.execute(read(int(1))).await.unwrap().into_inner());
        assert_eq!(got.len(), 1, "round {round}");
        assert!(
            rows(sql.execute(read(int(9))).await.unwrap().into_inner()).is_empty(),
            "round {round}"
        );
        let text = pb::Value {
            kind: Some(pb::value::Kind::String("x".into())),
        };
        let err = sql.execute(read(text)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "round {round}: {err:?}");
        run(
            &mut sql,
            &format!("UPDATE kv SET v = 'a{round}' WHERE k = 1"),
        )
        .await;
        let got = rows(sql.execute(read(int(1))).await.unwrap().into_inner());
        assert_eq!(
            format!("{:?}", got[0][0]),
            format!(
                "{:?}",
                pb::Value {
                    kind: Some(pb::value::Kind::String(format!("a{round}"))),
                }
            )
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tokens_a_call_without_a_valid_one_is_unauthenticated() {
    let mut config = ServerConfig::default();
    config
        .auth_tokens
        .insert("alice".into(), "s3cret-token-0123456789".into());
    let server = start(config).await;
    let mut sql = server.sql().await;
    assert_eq!(
        sql.execute(exec("SELECT 1")).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let mut req = tonic::Request::new(exec("SELECT 1"));
    req.metadata_mut()
        .insert("authorization", "Bearer wrong".parse().unwrap());
    assert_eq!(
        sql.execute(req).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let authed = |sql: &str| {
        let mut r = tonic::Request::new(exec(sql));
        r.metadata_mut().insert(
            "authorization",
            "Bearer s3cret-token-0123456789".parse().unwrap(),
        );
        r
    };
    sql.execute(authed("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        .await
        .unwrap();
    sql.execute(authed("INSERT INTO t VALUES (1)"))
        .await
        .unwrap();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_clients_see_only_conflicts_and_a_consistent_final_state() {
    let server = start(ServerConfig::default()).await;
    let mut sql = server.sql().await;
    sql.execute(exec(
        "CREATE TABLE counters (id BIGINT PRIMARY KEY, n BIGINT NOT NULL)",
    ))
    .await
    .unwrap();
    sql.execute(exec(
        "INSERT INTO counters VALUES (0, 0), (1, 0), (2, 0), (3, 0), (4, 0)",
    ))
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for c in 0..50u64 {
        let mut client = server.sql().await;
        tasks.push(tokio::spawn(async move {
            let mut committed = 0u64;
            for i in 0..20u64 {
                let id = (c + i) % 5;
                let r = if i % 3 == 0 {
                    client
                        .execute(exec(&format!("SELECT n FROM counters WHERE id = {id}")))
                        .await
                        .map(|_| 0)
                } else {
                    client
                        .execute(exec(&format!(
                            "UPDATE counters SET n = n + 1 WHERE id = {id}"
                        )))
                        .await
                        .map(|_| 1)
                };
                match r {
                    Ok(k) => committed += k,
                    Err(e) if e.code() == Code::Aborted => {}
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
            committed
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let sum = rows(
        sql.execute(exec("SELECT SUM(n) FROM counters"))
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(sum, vec![vec![int(total as i64)]]);
    assert!(total > 0);
    server.shutdown().await;
}

async fn next_commit(stream: &mut tonic::Streaming<pb::CommitEvent>) -> pb::CommitEvent {
    tokio::time::timeout(std::time::Duration::from_secs(20), stream.message())
        .await
        .expect("an event arrives")
        .expect("stream ok")
        .expect("stream open")
}

fn subscribe_req(from: Option<i64>) -> pb::SubscribeRequest {
    pb::SubscribeRequest {
        tables: vec!["orders".into()],
        predicate: String::new(),
        from_micros: from,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_replay_then_follow_live_and_resume_without_gap_or_duplicate() {
    use chrono_proto::v1::changes_client::ChangesClient;
    let server = start(ServerConfig::default()).await;
    let mut sql = server.sql().await;
    sql.execute(exec(
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, status TEXT)",
    ))
    .await
    .unwrap();
    sql.execute(exec("CREATE TABLE other (id BIGINT PRIMARY KEY)"))
        .await
        .unwrap();
    let mut committed = Vec::new();
    for i in 0..5 {
        let r = sql
            .execute(exec(&format!("INSERT INTO orders VALUES ({i}, 'new')")))
            .await
            .unwrap()
            .into_inner();
        committed.push(commit_ts(&r));
    }
    // Replay from after the second commit, then live.
    let mut changes = ChangesClient::connect(server.addr.clone()).await.unwrap();
    let mut stream = changes
        .subscribe(subscribe_req(Some(committed[1])))
        .await
        .unwrap()
        .into_inner();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(next_commit(&mut stream).await);
    }
    sql.execute(exec("INSERT INTO other VALUES (1)"))
        .await
        .unwrap(); // not subscribed
    let r = sql
        .execute(exec("UPDATE orders SET status = 'shipped' WHERE id = 4"))
        .await
        .unwrap()
        .into_inner();
    committed.push(commit_ts(&r));
    let live = next_commit(&mut stream).await;
    assert_eq!(live.changes[0].operation, pb::Operation::Update as i32);
    assert!(live.changes[0].before.is_some() && live.changes[0].after.is_some());
    seen.push(live);
    // Drop the connection, write while away, resume from the last timestamp received.
    drop(stream);
    let last = seen.last().unwrap().commit_ts_micros;
    for i in 5..8 {
        let r = sql
            .execute(exec(&format!("INSERT INTO orders VALUES ({i}, 'new')")))
            .await
            .unwrap()
            .into_inner();
        committed.push(commit_ts(&r));
    }
    let mut stream = changes
        .subscribe(subscribe_req(Some(last)))
        .await
        .unwrap()
        .into_inner();
    let r = sql
        .execute(exec("DELETE FROM orders WHERE id = 0"))
        .await
        .unwrap()
        .into_inner();
    committed.push(commit_ts(&r));
    for _ in 0..4 {
        seen.push(next_commit(&mut stream).await);
    }
    let got: Vec<i64> = seen.iter().map(|c| c.commit_ts_micros).collect();
    assert_eq!(
        got,
        committed[2..].to_vec(),
        "every commit after the start exactly once, in order"
    );
    let delete = &seen.last().unwrap().changes[0];
    assert_eq!(delete.operation, pb::Operation::Delete as i32);
    assert!(delete.after.is_none());

    // A filtered subscription sees only matching changes.
    let mut req = subscribe_req(Some(0));
    req.predicate = "status = 'shipped'".into();
    let mut filtered = changes.subscribe(req).await.unwrap().into_inner();
    let only = next_commit(&mut filtered).await;
    assert_eq!(only.commit_ts_micros, committed[5]);
    let bad = pb::SubscribeRequest {
        tables: vec!["orders".into()],
        predicate: "nope = 1".into(),
        from_micros: None,
    };
    assert_eq!(
        changes.subscribe(bad).await.unwrap_err().code(),
        Code::NotFound
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_stops_reading_never_blocks_writers_and_catches_up() {
    use chrono_proto::v1::changes_client::ChangesClient;
    let server = start(ServerConfig::default()).await;
    let mut sql = server.sql().await;
    sql.execute(exec(
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, status TEXT)",
    ))
    .await
    .unwrap();
    let mut changes = ChangesClient::connect(server.addr.clone()).await.unwrap();
    let mut stream = changes
        .subscribe(subscribe_req(None))
        .await
        .unwrap()
        .into_inner();
    // More commits than the server buffers, while the subscriber reads nothing.
    let commits = chrono_server::changes::BUFFERED_COMMITS + 500;
    for i in 0..commits {
        sql.execute(exec(&format!("INSERT INTO orders VALUES ({i}, 'x')")))
            .await
            .unwrap();
    }
    let mut last = 0;
    let mut n = 0;
    while n < commits {
        let c = next_commit(&mut stream).await;
        assert!(c.commit_ts_micros > last, "in order, no duplicates");
        last = c.commit_ts_micros;
        n += 1;
    }
    assert_eq!(n, commits);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_subscriber_keeps_the_change_buffer_bounded_while_100k_rows_are_written() {
    use chrono_proto::v1::changes_client::ChangesClient;
    let server = start(ServerConfig::default()).await;
    let db = server.db.clone();
    db.execute("CREATE TABLE orders (id BIGINT PRIMARY KEY, status TEXT)")
        .unwrap();
    let mut changes = ChangesClient::connect(server.addr.clone()).await.unwrap();
    let mut stream = changes
        .subscribe(subscribe_req(None))
        .await
        .unwrap()
        .into_inner();
    // 100,000 rows in 1,000 commits while the subscriber reads nothing.
    let mut most_queued = 0;
    for c in 0..1000 {
        let values: Vec<String> = (0..100)
            .map(|i| format!("({}, 'new')", c * 100 + i))
            .collect();
        let writer = db.clone();
        tokio::task::spawn_blocking(move || {
            writer
                .execute(&format!("INSERT INTO orders VALUES {}", values.join(",")))
                .unwrap()
        })
        .await
        .unwrap();
        most_queued = most_queued.max(db.queued_changes());
    }
    assert!(
        most_queued <= chrono_server::changes::BUFFERED_COMMITS,
        "{most_queued}"
    );
    // Then it reads: every commit, once, in order (from the buffer or caught up from storage).
    let (mut rows, mut last) = (0, 0);
    while rows < 100_000 {
        let c = next_commit(&mut stream).await;
        assert!(c.commit_ts_micros > last);
        last = c.commit_ts_micros;
        rows += c.changes.len();
    }
    assert_eq!(rows, 100_000);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_served_when_a_certificate_is_configured() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    std::fs::write(
        p("leaf.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .current_dir(dir.path())
            .args(args)
            .output()
            .expect("openssl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    // A CA, and a certificate for localhost that it signs.
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "1",
                "-subj",
                "/CN=test-ca",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
            ],
        ]
        .concat(),
    );
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
    let (cert, key, ca) = (p("cert.pem"), p("key.pem"), p("ca.pem"));
    let mut config = ServerConfig::default();
    config.tls = Some(chrono_server::config::TlsConfig {
        cert_file: cert,
        key_file: key,
    });
    let server = start(config).await;
    let https = server.addr.replace("http://", "https://");
    let tls = tonic::transport::ClientTlsConfig::new()
        .ca_certificate(tonic::transport::Certificate::from_pem(
            std::fs::read(&ca).unwrap(),
        ))
        .domain_name("localhost");
    let channel = Channel::from_shared(https)
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut sql = SqlClient::new(channel);
    assert_eq!(
        rows(sql.execute(exec("SELECT 1")).await.unwrap().into_inner()),
        vec![vec![int(1)]]
    );
    // A plain-text client gets nowhere.
    let plain = SqlClient::connect(server.addr.clone()).await;
    let refused = match plain {
        Err(_) => true,
        Ok(mut c) => c.execute(exec("SELECT 1")).await.is_err(),
    };
    assert!(refused);
    server.shutdown().await;

    // HTTP (GraphQL, the explorer) and the WebSocket monitor use the same certificate.
    let mut config = ServerConfig::default();
    config.tls = Some(chrono_server::config::TlsConfig {
        cert_file: p("cert.pem"),
        key_file: p("key.pem"),
    });
    let served =
        support::InProcess::start(config, &["CREATE TABLE t (id BIGINT PRIMARY KEY)"]).await;
    for addr in [served.http.clone(), served.ws.clone()] {
        let port = addr.rsplit(':').next().unwrap().to_string();
        let curl = |scheme: &str| {
            std::process::Command::new("curl")
                .args([
                    "-s",
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    "--max-time",
                    "10",
                ])
                .args(["--cacert", ca.to_str().unwrap()])
                .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
                .arg(format!("{scheme}://localhost:{port}/api/tables"))
                .output()
                .expect("curl runs")
        };
        let secure = curl("https");
        let status = String::from_utf8_lossy(&secure.stdout).to_string();
        assert!(
            status == "200" || status == "426",
            "https to {addr}: {status} {}",
            String::from_utf8_lossy(&secure.stderr)
        );
        let plain = curl("http");
        assert_ne!(
            String::from_utf8_lossy(&plain.stdout),
            "200",
            "plain HTTP to {addr} is refused"
        );
    }
    // So does the PostgreSQL protocol: psql verifies the certificate against the CA
    // (SSLRequest, then TLS), and the server says the connection is encrypted.
    let psql = |sslmode: &str| {
        std::process::Command::new("psql")
            .arg(format!(
                "host=localhost hostaddr=127.0.0.1 port={} user=ann dbname=chronodb \
                 sslmode={sslmode} sslrootcert={}",
                served.pg_port,
                ca.display()
            ))
            .args(["-X", "-A", "-t", "-c", "SELECT count(*) FROM t"])
            .output()
            .expect("psql runs")
    };
    let verified = psql("verify-full");
    assert!(
        verified.status.success() && String::from_utf8_lossy(&verified.stdout).trim() == "0",
        "psql over TLS: {}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    // A plain-text connection is refused, saying why.
    let plain = psql("disable");
    assert!(
        !plain.status.success()
            && String::from_utf8_lossy(&plain.stderr).contains("TLS connections only"),
        "plain psql: {}",
        String::from_utf8_lossy(&plain.stderr)
    );
    served.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_report_comes_over_grpc_with_the_servers_findings() {
    let server = start(ServerConfig::default()).await;
    let mut sql = server.sql().await;
    run(
        &mut sql,
        "CREATE TABLE events (id BIGINT PRIMARY KEY, kind BIGINT, body TEXT)",
    )
    .await;
    let values: Vec<String> = (0..3000)
        .map(|i| format!("({i}, {}, 'e{i}')", i % 50))
        .collect();
    run(
        &mut sql,
        &format!("INSERT INTO events VALUES {}", values.join(", ")),
    )
    .await;
    for kind in 0..4 {
        sql.execute(pb::ExecuteRequest {
            sql: "SELECT body FROM events WHERE kind = ?".into(),
            params: vec![int(kind)],
            transaction_id: String::new(),
        })
        .await
        .unwrap();
    }
    let report = server.health_report().await;
    let index = report
        .findings
        .iter()
        .find(|f| f.area == "indexes")
        .unwrap_or_else(|| panic!("{}", report.text));
    assert_eq!(index.severity, pb::Severity::Warning as i32);
    assert!(
        index
            .recommendation
            .contains("CREATE INDEX events_kind_idx ON events (kind)"),
        "{}",
        index.recommendation
    );
    let json: serde_json::Value = serde_json::from_str(&report.json).unwrap();
    assert!(
        json["statements"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["statement"] == "select body from events where kind = ?" && s["calls"] == 4),
        "{}",
        report.json
    );
    assert!(report.text.contains("Index advice:"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_trail_is_verified_reported_and_proven_over_grpc_while_the_server_runs() {
    let server = start(ServerConfig::default()).await;
    let mut sql = server.sql().await;
    run(
        &mut sql,
        "CREATE TABLE accounts (user_id BIGINT PRIMARY KEY, balance BIGINT)",
    )
    .await;
    run(&mut sql, "INSERT INTO accounts VALUES (1, 100), (2, 50)").await;
    run(
        &mut sql,
        "UPDATE accounts SET balance = 150 WHERE user_id = 1",
    )
    .await;
    let mut audit = pb::audit_client::AuditClient::connect(server.addr.clone())
        .await
        .unwrap();
    let v = audit
        .verify(pb::VerifyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.transactions, 3);
    let database = server.db.database().store().database_id().to_string();
    assert_eq!(v.database, database);

    let report = audit
        .report(pb::AuditReportRequest {
            table: "accounts".into(),
            from_micros: 0,
            to_micros: i64::MAX,
        })
        .await
        .unwrap()
        .into_inner();
    let ops: Vec<i32> = report.entries.iter().map(|e| e.operation).collect();
    assert_eq!(
        ops,
        vec![
            pb::Operation::Insert as i32,
            pb::Operation::Insert as i32,
            pb::Operation::Update as i32
        ]
    );
    assert_eq!(report.entries[2].key, vec![int(1)]);

    // A checkpoint, an inclusion proof anchored to it, a transaction found by its hash.
    let cp = audit
        .checkpoint(pb::CheckpointRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!((cp.size, cp.database.as_str()), (3, database.as_str()));
    assert!(cp.signed_note.is_empty(), "no signing key configured");
    let p = audit
        .inclusion_proof(pb::InclusionProofRequest {
            transaction: 2,
            tree_size: Some(cp.size),
        })
        .await
        .unwrap()
        .into_inner();
    let h = |b: &[u8]| <[u8; 32]>::try_from(b).unwrap();
    let path: Vec<[u8; 32]> = p.path.iter().map(|x| h(x)).collect();
    assert!(chrono_audit::merkle::verify_inclusion(
        p.index,
        p.tree_size,
        &chrono_audit::merkle::leaf_hash(&h(&p.tx_hash)),
        &path,
        &h(&p.root)
    ));
    assert_eq!(p.root, cp.root);
    let t = audit
        .verify_transaction(pb::VerifyTransactionRequest {
            tx_hash: p.tx_hash.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(t.ok && t.transaction == 2 && t.entries == 2, "{t:?}");
    let bad = audit
        .verify_transaction(pb::VerifyTransactionRequest {
            tx_hash: vec![1; 5],
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    // More history, then a consistency proof from the checkpoint.
    run(&mut sql, "DELETE FROM accounts WHERE user_id = 2").await;
    let c = audit
        .consistency_proof(pb::ConsistencyProofRequest {
            old_size: 3,
            new_size: 4,
        })
        .await
        .unwrap()
        .into_inner();
    let path: Vec<[u8; 32]> = c.path.iter().map(|x| h(x)).collect();
    assert!(chrono_audit::merkle::verify_consistency(
        3,
        4,
        &h(&c.old_root),
        &h(&c.new_root),
        &path
    ));
    assert_eq!(c.old_root, cp.root);

    // A current row edited behind the database's back: Verify names it.
    {
        use chrono_storage::{ColumnFamily, WriteBatch};
        let engine = server.db.database().store().engine().clone();
        // The last current row is a row of accounts (the catalog's key space sorts first).
        let mut cursor = engine.cursor(ColumnFamily::Latest).unwrap();
        cursor.seek(&[]);
        let (mut key, mut value) = (Vec::new(), Vec::new());
        while cursor.valid() {
            (key, value) = (cursor.key().to_vec(), cursor.value().to_vec());
            cursor.next();
        }
        let last = value.len() - 1;
        value[last] ^= 1;
        let mut batch = WriteBatch::new();
        batch.put(ColumnFamily::Latest, key, value);
        engine.write(batch).unwrap();
    }
    let v = audit
        .verify(pb::VerifyRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!v.ok);
    assert_eq!(v.failure_kind, "CurrentMismatch", "{v:?}");
    // The health report leads with it.
    let health = server.health_report().await;
    let first = &health.findings[0];
    assert_eq!(
        first.severity,
        pb::Severity::Critical as i32,
        "{}",
        health.text
    );
    assert!(
        first.title.contains("failed verification"),
        "{}",
        first.title
    );

    // The optimizer's calls.
    let mut optimizer = pb::optimizer_client::OptimizerClient::connect(server.addr.clone())
        .await
        .unwrap();
    let metrics = optimizer
        .performance_metrics(pb::PerformanceMetricsRequest {})
        .await
        .unwrap()
        .into_inner();
    let json: serde_json::Value = serde_json::from_str(&metrics.json).unwrap();
    assert!(json["estimates_served"].is_u64(), "{}", metrics.json);
    let training = optimizer
        .training_report(pb::TrainingReportRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(!training.text.is_empty());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_holds_retention_back_and_one_from_before_the_horizon_is_refused() {
    use chrono_proto::v1::changes_client::ChangesClient;
    let server = start(ServerConfig::default()).await;
    let mut sql = server.sql().await;
    run(&mut sql, "CREATE TABLE t (id BIGINT PRIMARY KEY)").await;
    let t1 = commit_ts(
        &sql.execute(exec("INSERT INTO t VALUES (1)"))
            .await
            .unwrap()
            .into_inner(),
    );
    run(&mut sql, "INSERT INTO t VALUES (2)").await;
    let mut changes = ChangesClient::connect(server.addr.clone()).await.unwrap();
    let mut stream = changes
        .subscribe(pb::SubscribeRequest {
            tables: vec!["t".into()],
            predicate: String::new(),
            from_micros: Some(t1),
        })
        .await
        .unwrap()
        .into_inner();
    // The replay of the second insert arrives: the subscription is running.
    let first = stream.message().await.unwrap().unwrap();
    assert!(first.commit_ts_micros > t1);
    // A collection as if a year and more had passed stops at the subscriber's position.
    let far = chrono_storage::Timestamp::from_micros(t1 as u64 + 400 * 86_400 * 1_000_000);
    let gc = server.db.collect_history_at(far).unwrap();
    assert_eq!(gc.horizon, t1 as u64, "held at the subscriber's position");
    // Resuming from before the horizon is refused by name, not silently shortened.
    let err = changes
        .subscribe(pb::SubscribeRequest {
            tables: vec!["t".into()],
            predicate: String::new(),
            from_micros: Some(t1 - 1),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("earliest readable time"),
        "{}",
        err.message()
    );
    drop(stream);
    server.shutdown().await;
}
