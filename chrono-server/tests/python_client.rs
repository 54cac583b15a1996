//! A Python client generated from `proto/` with grpcio-tools runs every documented call
//! (SQL, time travel, change history and streams, audit, optimizer, health) against
//! `chronodb serve`. The Python with grpcio-tools comes from `scripts/setup.sh`
//! (`CHRONODB_PYTHON`, set by `scripts/env.sh`).

mod support;

use std::ffi::OsStr;

#[test]
fn a_generated_python_client_runs_the_documented_operations() {
    let db = tempfile::tempdir().unwrap();
    support::python_client_against_serve([OsStr::new("--db"), db.path().as_os_str()]);
}
