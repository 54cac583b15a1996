//! gRPC point queries on loopback: a server in-process and 8 clients on the same cores (the
//! load client counts against the machine, as the performance goal says). One measured
//! iteration is one query; the clients run the iterations criterion asks for between
//! them, so the median time per iteration is the inverse of the throughput. The report
//! prints it as queries per second. Commit-to-subscriber latency percentiles stay with the
//! `grpc_load` binary (criterion reports central values, not tails).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono_proto::v1 as pb;
use chrono_proto::v1::sql_client::SqlClient;
use chrono_server::ChronoDb;
use chrono_server::config::ServerConfig;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tonic::transport::Channel;

/// Concurrent clients.
const CLIENTS: u64 = 8;
/// Rows in the table read.
const ROWS: u64 = 10_000;

fn query(id: u64) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        sql: "SELECT v FROM kv WHERE id = ?".into(),
        params: vec![pb::Value {
            kind: Some(pb::value::Kind::Int64(id as i64)),
        }],
        transaction_id: String::new(),
    }
}

fn grpc(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = Arc::new(ChronoDb::open(dir.path()).expect("open"));
    db.execute("CREATE TABLE kv (id BIGINT PRIMARY KEY, v TEXT)")
        .expect("create");
    let rows: Vec<String> = (0..ROWS).map(|i| format!("({i}, 'value {i}')")).collect();
    for chunk in rows.chunks(1000) {
        db.execute(&format!("INSERT INTO kv VALUES {}", chunk.join(",")))
            .expect("insert");
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (addr, server) = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = format!("http://{}", listener.local_addr().expect("address"));
        let server = tokio::spawn(async move {
            let _ = chrono_server::grpc::serve(db, &ServerConfig::default(), listener, async {
                let _ = stopped.await;
            })
            .await;
        });
        (addr, server)
    });
    let clients: Vec<SqlClient<Channel>> = runtime.block_on(async {
        let mut out = Vec::new();
        for _ in 0..CLIENTS {
            out.push(SqlClient::connect(addr.clone()).await.expect("connect"));
        }
        out
    });

    let mut g = c.benchmark_group("grpc");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    g.bench_function(BenchmarkId::new("point_query", "8_clients"), |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let began = Instant::now();
                let mut tasks = Vec::new();
                for (c, client) in clients.iter().enumerate() {
                    let mut client = client.clone();
                    // Iterations shared out: the first clients take one more when uneven.
                    let share = iters / CLIENTS + u64::from((c as u64) < iters % CLIENTS);
                    tasks.push(tokio::spawn(async move {
                        let mut id = c as u64 * 7919;
                        for _ in 0..share {
                            id = (id + 104_729) % ROWS;
                            let reply = client.execute(query(id)).await.expect("query");
                            let rows = match reply.into_inner().results.first() {
                                Some(pb::StatementResult {
                                    result: Some(pb::statement_result::Result::Query(q)),
                                }) => q.rows.len(),
                                _ => 0,
                            };
                            assert_eq!(rows, 1, "one row per query");
                        }
                    }));
                }
                for t in tasks {
                    t.await.expect("client");
                }
                began.elapsed()
            })
        })
    });
    g.finish();
    let _ = stop.send(());
    let _ = runtime.block_on(server);
}

criterion_group!(benches, grpc);
criterion_main!(benches);
