//! ChronoDB on a 3-member etcd cluster (`database.engine: etcd`): the brief's every call
//! from the generated Python client against `chronodb serve --config`, and the same
//! database served on after the server that wrote it stops — a standby takes over.

mod support;

use std::process::Command;

use chrono_etcd::cluster::LocalCluster;

fn config(dir: &std::path::Path, cluster: &LocalCluster, prefix: &str) -> std::path::PathBuf {
    let endpoints: Vec<String> = cluster
        .endpoints()
        .iter()
        .map(|e| format!("\"{e}\""))
        .collect();
    let path = dir.join(format!("{}.yaml", prefix.trim_end_matches('/')));
    std::fs::write(
        &path,
        format!(
            "database:\n  engine: etcd\n  data_file: local\n  etcd:\n    endpoints: [{}]\n    \
             prefix: \"{prefix}\"\n    lock_wait_ms: 20000\n",
            endpoints.join(", ")
        ),
    )
    .unwrap();
    path
}

#[test]
fn the_briefs_calls_run_against_chronodb_serve_on_etcd() {
    let cluster = LocalCluster::start(3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &cluster, "brief/");
    let (mut server, addr) = support::serve([std::ffi::OsStr::new("--config"), config.as_os_str()]);
    let out = support::run_brief_client(&addr);
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let stopped = server.wait().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("python client OK"));
    assert!(stopped.success(), "{stopped:?}");

    // The data outlives the server: the CLI reads it back from the cluster, and the audit
    // trail (written in the same etcd transactions) verifies.
    let bin = env!("CARGO_BIN_EXE_chronodb");
    let verify = Command::new(bin)
        .args(["audit", "verify", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn a_standby_server_takes_over_the_database_when_the_first_one_stops() {
    let cluster = LocalCluster::start(3).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), &cluster, "standby/");
    let bin = env!("CARGO_BIN_EXE_chronodb");
    let sql = |text: &str| {
        let out = Command::new(bin)
            .args(["sql", "--config"])
            .arg(&config)
            .args(["-e", text])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{text}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    sql("CREATE TABLE accounts (id BIGINT PRIMARY KEY, balance BIGINT)");
    sql("INSERT INTO accounts VALUES (1, 100), (2, 50)");
    let (mut first, _) = support::serve([std::ffi::OsStr::new("--config"), config.as_os_str()]);
    // A second server on the same database waits for the first one's lock…
    let mut standby = Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(
        standby.try_wait().unwrap().is_none(),
        "the standby waits while the first server holds the database"
    );
    // …and serves once the first one stops.
    let _ = Command::new("kill").arg(first.id().to_string()).status();
    first.wait().unwrap();
    let mut lines =
        std::io::BufRead::lines(std::io::BufReader::new(standby.stderr.take().unwrap()));
    let serving = lines.any(|l| l.is_ok_and(|l| l.starts_with("chronodb serving gRPC on ")));
    assert!(serving, "the standby took over");
    let _ = Command::new("kill").arg(standby.id().to_string()).status();
    standby.wait().unwrap();
    assert!(sql("SELECT SUM(balance) FROM accounts").contains("150"));
}
