//! A load client for the gRPC server, on loopback: point queries per second from concurrent
//! clients, and commit-to-subscriber latency of change streams under a steady commit rate.
//!
//! `cargo run --release -p benches --bin grpc_load [-- CLIENTS SECONDS COMMITS_PER_SECOND]`
//! starts a server in-process on a free port with a database in a temporary directory.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use benches::grpc::{KV_ROWS, KvServer, execute, point_query};
use chrono_proto::v1 as pb;
use chrono_proto::v1::changes_client::ChangesClient;
use chrono_proto::v1::sql_client::SqlClient;

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let clients = args.first().copied().unwrap_or(16);
    let seconds = args.get(1).copied().unwrap_or(10);
    let rate = args.get(2).copied().unwrap_or(1000);

    let server = KvServer::start(&["CREATE TABLE events (id BIGINT PRIMARY KEY, at BIGINT)"]).await;
    let addr = server.addr.clone();

    // 1. Point queries per second.
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (addr, done) = (addr.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut client = SqlClient::connect(addr).await.expect("connect");
            let mut i = c * 7919;
            while Instant::now() < deadline {
                i = (i + 104_729) % KV_ROWS;
                client.execute(point_query(i)).await.expect("query");
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("client");
    }
    let qps = done.load(Ordering::Relaxed) as f64 / seconds as f64;
    println!("point queries: {clients} clients for {seconds} s: {qps:.0} queries/s");

    // 2. Change-stream latency at a steady commit rate.
    let mut changes = ChangesClient::connect(addr.clone()).await.expect("connect");
    let mut stream = changes
        .subscribe(pb::SubscribeRequest {
            tables: vec!["events".into()],
            predicate: String::new(),
            from_micros: None,
        })
        .await
        .expect("subscribe")
        .into_inner();
    let total = rate * seconds.min(5);
    let writer = {
        let addr = addr.clone();
        tokio::spawn(async move {
            let channel = tonic::transport::Endpoint::from_shared(addr)
                .expect("address")
                .tcp_nodelay(true)
                .connect()
                .await
                .expect("connect");
            let mut client = SqlClient::new(channel);
            let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
            for i in 0..total {
                tick.tick().await;
                client
                    .execute(execute(
                        &format!("INSERT INTO events VALUES ({i}, 0)"),
                        vec![],
                    ))
                    .await
                    .expect("insert");
            }
        })
    };
    let mut latencies = Vec::with_capacity(total as usize);
    while (latencies.len() as u64) < total {
        let Some(event) = stream.message().await.expect("stream") else {
            break;
        };
        latencies.push(now_micros() - event.commit_ts_micros);
    }
    writer.await.expect("writer");
    latencies.sort_unstable();
    println!(
        "change stream: {} commits at {rate}/s: latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        percentile(&latencies, 0.5) as f64 / 1e3,
        percentile(&latencies, 0.99) as f64 / 1e3,
        latencies.last().copied().unwrap_or(0) as f64 / 1e3
    );
    server.stop().await;
}
