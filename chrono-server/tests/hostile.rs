//! Hostile statements against a real `chronodb serve` process, as a hostile client would
//! send them: each gets an error status (or a correct result), the server stays up, its
//! memory stays bounded, and a stopped statement stops consuming CPU.

mod support;

use std::ffi::OsStr;
use std::process::Child;
use std::time::{Duration, Instant};

use chrono_proto::v1 as pb;
use chrono_proto::v1::sql_client::SqlClient;
use tonic::Code;
use tonic::transport::Channel;

struct Served {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Served {
    fn start(statement_timeout_ms: u64) -> Served {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.yaml");
        std::fs::write(
            &config,
            format!(
                "database:\n  data_file: data\nserver:\n  statement_timeout_ms: {statement_timeout_ms}\nfeatures:\n  ml_optimizer:\n    enabled: false\n"
            ),
        )
        .unwrap();
        let (child, addr) = support::serve([OsStr::new("--config"), config.as_os_str()]);
        let addr = format!("http://{addr}");
        Served {
            child,
            addr,
            _dir: dir,
        }
    }

    fn status_field(&self, field: &str) -> u64 {
        support::proc_status_kb(self.child.id(), field)
    }

    /// Resident memory now, in MiB.
    fn rss_mb(&self) -> u64 {
        self.status_field("VmRSS:") / 1024
    }

    /// The most resident memory so far, in MiB.
    fn peak_rss_mb(&self) -> u64 {
        self.status_field("VmHWM:") / 1024
    }

    /// CPU time (user + system) the server has used, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split(' ').collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    async fn client(&self) -> SqlClient<Channel> {
        SqlClient::connect(self.addr.clone())
            .await
            .unwrap()
            .max_decoding_message_size(256 << 20)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn req(sql: &str, params: Vec<pb::Value>) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        sql: sql.into(),
        params,
        transaction_id: String::new(),
    }
}

fn text(s: String) -> pb::Value {
    pb::Value {
        kind: Some(pb::value::Kind::String(s)),
    }
}

async fn setup(sql: &mut SqlClient<Channel>) {
    sql.execute(req(
        "CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT)",
        vec![],
    ))
    .await
    .unwrap();
    for start in (0..3000).step_by(500) {
        let values: Vec<String> = (start..start + 500)
            .map(|i| format!("({i}, 'value {i}')"))
            .collect();
        sql.execute(req(
            &format!("INSERT INTO t VALUES {}", values.join(", ")),
            vec![],
        ))
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_statements_get_error_statuses_and_the_server_stays_up() {
    let mut server = Served::start(3_000);
    let mut sql = server.client().await;
    setup(&mut sql).await;
    let baseline = server.rss_mb();

    let chain = |n: usize, op: &str| vec!["1"; n].join(op);
    let mut nested_replace = "'aaaaaaaaaa'".to_string();
    for _ in 0..9 {
        nested_replace = format!("replace({nested_replace}, 'a', 'aaaaaaaaaa')");
    }
    let join_20k = (0..20_000)
        .map(|i| format!("t AS t{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let big = "x".repeat(8 << 20);
    let cases: Vec<(String, Vec<pb::Value>)> = vec![
        (format!("SELECT {}", chain(100_000, " + ")), vec![]),
        (
            format!("SELECT {} AS s FROM t", chain(100_000, " * ")),
            vec![],
        ),
        (
            format!("SELECT id FROM t WHERE {}", chain(100_000, " = 1 OR ")),
            vec![],
        ),
        (
            format!("SELECT {}1{}", "(".repeat(50_000), ")".repeat(50_000)),
            vec![],
        ),
        (format!("SELECT length({nested_replace})"), vec![]),
        ("SELECT x'é0'".into(), vec![]),
        ("SELECT 1;".repeat(1_500_000), vec![]),
        ("SELECT 1;".repeat(3_000_000), vec![]),
        (format!("SELECT COUNT(*) FROM {join_20k}"), vec![]),
        (
            "SELECT length(replace(replace(?, 'x', ?), 'x', ?))".into(),
            vec![text(big.clone()), text(big.clone()), text(big)],
        ),
        ("SELECT a.v, b.v, c.v FROM t a, t b, t c".into(), vec![]),
        ("SELECT COUNT(*) FROM t a, t b, t c, t d".into(), vec![]),
        (
            "SELECT a.id * 100000 + b.id, COUNT(*) FROM t a, t b GROUP BY 1".into(),
            vec![],
        ),
        (
            "SELECT a.v || b.v AS k FROM t a, t b ORDER BY k DESC".into(),
            vec![],
        ),
        (
            format!(
                "SELECT 1 IN ({})",
                (0..200_000)
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            vec![],
        ),
    ];
    let acceptable = [
        Code::InvalidArgument,
        Code::ResourceExhausted,
        Code::DeadlineExceeded,
        Code::Cancelled,
    ];
    for (i, (text, params)) in cases.into_iter().enumerate() {
        let started = Instant::now();
        match sql.execute(req(&text, params)).await {
            Ok(_) => panic!("case {i} should have been refused"),
            Err(status) => assert!(
                acceptable.contains(&status.code()),
                "case {i}: {:?} {}",
                status.code(),
                status.message()
            ),
        }
        assert!(server.alive(), "case {i} killed the server");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "case {i} took {:?}",
            started.elapsed()
        );
        let grown = server.peak_rss_mb().saturating_sub(baseline);
        assert!(grown < 2048, "case {i}: the server grew by {grown} MiB");
        // Still answering.
        let ok = sql.execute(req("SELECT COUNT(*) FROM t", vec![])).await;
        assert!(ok.is_ok(), "after case {i}: {ok:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_out_cross_join_stops_consuming_cpu() {
    let mut server = Served::start(1_000);
    let mut sql = server.client().await;
    setup(&mut sql).await;
    let status = sql
        .execute(req("SELECT COUNT(*) FROM t a, t b, t c, t d", vec![]))
        .await
        .unwrap_err();
    assert_eq!(
        status.code(),
        Code::DeadlineExceeded,
        "{}",
        status.message()
    );
    // Give it the 100 ms it may take to notice, then measure a quiet second.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.cpu_ticks();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let used = server.cpu_ticks() - before;
    // Clock ticks are 1/100 s: a statement still running would use ~100 per second.
    assert!(used < 20, "the server used {used} ticks in an idle second");
    assert!(server.alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_million_row_result_streams_with_bounded_memory() {
    let server = Served::start(30_000);
    let mut sql = server.client().await;
    sql.execute(req("CREATE TABLE d (id BIGINT PRIMARY KEY)", vec![]))
        .await
        .unwrap();
    let values: Vec<String> = (0..216).map(|i| format!("({i})")).collect();
    sql.execute(req(
        &format!("INSERT INTO d VALUES {}", values.join(", ")),
        vec![],
    ))
    .await
    .unwrap();
    let baseline = server.rss_mb();
    let mut stream = sql
        .execute_stream(req("SELECT a.id, b.id, c.id FROM d a, d b, d c", vec![]))
        .await
        .unwrap()
        .into_inner();
    let mut rows = 0usize;
    let mut peak_growth = 0;
    let mut batches = 0usize;
    while let Some(batch) = stream.message().await.unwrap() {
        rows += batch.rows.len();
        batches += 1;
        if batches.is_multiple_of(500) {
            peak_growth = peak_growth.max(server.rss_mb().saturating_sub(baseline));
        }
    }
    assert_eq!(rows, 216 * 216 * 216);
    // The whole result would be over a gigabyte in the server's memory.
    assert!(
        peak_growth < 256,
        "the server grew by {peak_growth} MiB while streaming"
    );
}
