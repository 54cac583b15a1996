//! A Python client generated from `proto/` with grpcio-tools runs every call of the brief
//! (SQL, time travel, change history and streams, audit, optimizer, health) against
//! `chronodb serve`. The Python with grpcio-tools comes from `scripts/setup.sh`
//! (`CHRONODB_PYTHON`, set by `scripts/env.sh`).

mod support;

use std::ffi::OsStr;
use std::process::Command;

#[test]
fn a_generated_python_client_runs_the_briefs_operations() {
    let db = tempfile::tempdir().unwrap();
    let (mut server, addr) = support::serve([OsStr::new("--db"), db.path().as_os_str()]);
    let out = support::run_brief_client(&addr);
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
