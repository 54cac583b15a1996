//! The command-line tool beside a running server, and mistakes that are errors: `chronodb
//! sql`, `health` and `audit verify` with `--connect` while `chronodb serve` holds the
//! database; the lock error naming the holder and `--connect`; read-only commands refusing
//! a database that does not exist; an unknown table in an audit report; a private key
//! readable by its owner only; output to a pipe that closes.

mod support;

use std::ffi::OsStr;
use std::process::{Command, Stdio};

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

use support::chronodb;

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_tools_reach_a_running_server_with_connect() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("db");
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "database:\n  data_file: {}\nserver:\n  auth_tokens:\n    alice: {TOKEN}\n\
             features:\n  ml_optimizer:\n    enabled: false\n",
            data.display()
        ),
    )
    .unwrap();
    let (child, addr) = support::serve([OsStr::new("--config"), config.as_os_str()]);
    let _server = Killed(child);
    let db = data.to_str().unwrap();

    // Opening the database itself fails, naming the holder and the way in.
    let (ok, _, err) = chronodb(&["sql", "--db", db, "-e", "SELECT 1"], None);
    assert!(!ok);
    assert!(err.contains("open in another process"), "{err}");
    assert!(err.contains("chronodb serve"), "the holder is named: {err}");
    assert!(err.contains("--connect"), "{err}");

    // Without the token the server refuses; with it, statements run there.
    let (ok, _, err) = chronodb(&["sql", "--connect", &addr, "-e", "SELECT 1"], None);
    assert!(!ok);
    assert!(
        err.contains("credentials") || err.contains("token"),
        "{err}"
    );
    let connect = [
        "sql",
        "--connect",
        &addr,
        "--token",
        TOKEN,
        "--format",
        "json",
    ];
    let script = "CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT);\n\
                  BEGIN;\nINSERT INTO t VALUES (1, 'a');\nINSERT INTO t VALUES (2, 'b');\nCOMMIT;\n\
                  BEGIN;\nINSERT INTO t VALUES (3, 'gone');\nROLLBACK;\n\
                  SELECT id, v FROM t ORDER BY id;\n.tables\n.schema t\n";
    let (ok, out, err) = chronodb(&connect, Some(script));
    assert!(ok, "{err}");
    assert!(
        out.contains(r#"{"columns":["id","v"],"rows":[[1,"a"],[2,"b"]]}"#),
        "{out}"
    );
    assert!(out.contains("CREATE TABLE t ("), "{out}");
    // The writes were made as the token's principal, and the report says so.
    let (ok, out, err) = chronodb(
        &[
            "audit",
            "report",
            "--connect",
            &addr,
            "--token",
            TOKEN,
            "--table",
            "t",
            "--from",
            "0",
            "--to",
            "4102444800",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out.matches("by alice").count(), 2, "{out}");
    let (ok, _, err) = chronodb(
        &["audit", "verify", "--connect", &addr, "--token", TOKEN],
        None,
    );
    assert!(ok, "{err}");
    let (ok, out, err) = chronodb(
        &[
            "health",
            "--connect",
            &addr,
            "--token",
            TOKEN,
            "--format",
            "json",
        ],
        None,
    );
    assert!(ok, "{err}");
    serde_json::from_str::<serde_json::Value>(out.trim()).expect("the report is JSON");
}

#[test]
fn mistakes_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    let missing = missing.to_str().unwrap();
    for args in [
        vec!["audit", "verify", "--db", missing],
        vec![
            "audit", "report", "--db", missing, "--table", "t", "--from", "0", "--to", "1",
        ],
        vec!["health", "--db", missing],
    ] {
        let (ok, _, err) = chronodb(&args, None);
        assert!(!ok, "{args:?}");
        assert!(err.contains("no database in"), "{args:?}: {err}");
    }
    assert!(
        !std::path::Path::new(missing).exists(),
        "nothing was created"
    );

    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    let (ok, _, err) = chronodb(
        &[
            "sql",
            "--db",
            db,
            "-e",
            "CREATE TABLE t (id BIGINT PRIMARY KEY); INSERT INTO t VALUES (1)",
        ],
        None,
    );
    assert!(ok, "{err}");
    let (ok, _, err) = chronodb(
        &[
            "audit",
            "report",
            "--db",
            db,
            "--table",
            "nope",
            "--from",
            "0",
            "--to",
            "4102444800",
        ],
        None,
    );
    assert!(!ok);
    assert!(err.contains("no table nope"), "{err}");
    let (ok, out, err) = chronodb(
        &[
            "audit",
            "report",
            "--db",
            db,
            "--table",
            "t",
            "--from",
            "0",
            "--to",
            "4102444800",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("by local:"),
        "local writes name their user: {out}"
    );

    let key = dir.path().join("audit.key");
    let (ok, _, err) = chronodb(&["audit", "keygen", "--out", key.to_str().unwrap()], None);
    assert!(ok, "{err}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the private key is its owner's only");
}

#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let rows: Vec<String> = (0..20_000).map(|i| format!("({i})")).collect();
    let setup = format!(
        "CREATE TABLE t (id BIGINT PRIMARY KEY); INSERT INTO t VALUES {};",
        rows.join(", ")
    );
    let (ok, _, err) = chronodb(&["sql", "--db", db.to_str().unwrap()], Some(&setup));
    assert!(ok, "{err}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_chronodb"))
        .args(["sql", "--db", db.to_str().unwrap(), "--format", "csv", "-e"])
        .arg("SELECT * FROM t; SELECT * FROM t;")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read one line, then close the pipe, as `| head -1` does.
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert!(!err.contains("error"), "{err}");
}
