//! A Python client generated from `proto/` with grpcio-tools runs every call of the brief
//! (SQL, time travel, change history and streams, audit, optimizer, health) against
//! `chronodb serve`. The Python with grpcio-tools comes from `scripts/setup.sh`
//! (`CHRONODB_PYTHON`, set by `scripts/env.sh`).

mod support;

use std::ffi::OsStr;
use std::process::Command;

#[test]
fn a_generated_python_client_runs_the_briefs_operations() {
    let python = std::env::var("CHRONODB_PYTHON")
        .expect("CHRONODB_PYTHON is set by scripts/env.sh (a Python with grpcio-tools, installed by scripts/setup.sh)");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let generated = tempfile::tempdir().unwrap();
    let status = Command::new(&python)
        .args(["-m", "grpc_tools.protoc", "-I"])
        .arg(root.join("proto"))
        .arg(format!("--python_out={}", generated.path().display()))
        .arg(format!("--grpc_python_out={}", generated.path().display()))
        .args([
            "chronodb/v1/values.proto",
            "chronodb/v1/sql.proto",
            "chronodb/v1/timetravel.proto",
            "chronodb/v1/changes.proto",
            "chronodb/v1/audit.proto",
            "chronodb/v1/optimizer.proto",
            "chronodb/v1/monitor.proto",
        ])
        .status()
        .expect("grpc_tools runs");
    assert!(status.success());

    let db = tempfile::tempdir().unwrap();
    let (mut server, addr) = support::serve([OsStr::new("--db"), db.path().as_os_str()]);
    let out = Command::new(&python)
        .arg(root.join("chrono-server/tests/python/brief_client.py"))
        .arg(generated.path())
        .arg(&addr)
        .output()
        .expect("python runs");
    // SIGTERM: graceful shutdown.
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let stopped = server.wait().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("python client OK"));
    assert!(
        stopped.success(),
        "the server stops cleanly on SIGTERM: {stopped:?}"
    );
}
