//! gRPC point queries on loopback: a server in-process and 8 clients on the same cores (the
//! load client counts against the machine, as the performance goal says). One measured
//! iteration is one query; the clients run the iterations criterion asks for between
//! them, so the median time per iteration is the inverse of the throughput. The report
//! prints it as queries per second. Commit-to-subscriber latency percentiles stay with the
//! `grpc_load` binary (criterion reports central values, not tails).

use std::time::{Duration, Instant};

use benches::grpc::{KV_ROWS, KvServer, point_query};
use chrono_proto::v1 as pb;
use chrono_proto::v1::sql_client::SqlClient;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tonic::transport::Channel;

/// Concurrent clients.
const CLIENTS: u64 = 8;

fn grpc(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(KvServer::start(&[]));
    let clients: Vec<SqlClient<Channel>> = runtime.block_on(async {
        let mut out = Vec::new();
        for _ in 0..CLIENTS {
            out.push(
                SqlClient::connect(server.addr.clone())
                    .await
                    .expect("connect"),
            );
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
                            id = (id + 104_729) % KV_ROWS;
                            let reply = client.execute(point_query(id)).await.expect("query");
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
    runtime.block_on(server.stop());
}

criterion_group!(benches, grpc);
criterion_main!(benches);
