//! The built `chronodb` runs where it is copied, with no environment variables set: it
//! finds libtorch through the rpath the build gave it.

use std::process::Command;

#[test]
fn a_copied_binary_starts_with_no_environment() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("chronodb");
    std::fs::copy(env!("CARGO_BIN_EXE_chronodb"), &copy).unwrap();
    let out = Command::new(&copy)
        .env_clear()
        .args(["sql", "--db"])
        .arg(dir.path().join("db"))
        .args(["-e", "SELECT 1 + 1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains('2'));
}
