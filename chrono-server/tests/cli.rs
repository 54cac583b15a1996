//! The `chronodb` binary end to end: `sql -e` with `--format json`, scripts on standard
//! input, errors on standard error with a non-zero exit, the demo.

mod support;

use support::chronodb;

fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn the_documented_statements_run_and_as_of_between_updates_returns_the_older_value() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().to_str().unwrap();
    let setup = "CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT, email TEXT, created_at BIGINT); \
                 CREATE TABLE orders (id BIGINT PRIMARY KEY, user_id BIGINT, customer_id BIGINT, status TEXT); \
                 CREATE TABLE accounts (user_id BIGINT PRIMARY KEY, balance BIGINT); \
                 INSERT INTO users (id, name, email) VALUES (1, 'Alice', 'alice@email.com'); \
                 INSERT INTO accounts VALUES (1, 100)";
    let (ok, _, err) = chronodb(&["sql", "--db", db, "--format", "json", "-e", setup], None);
    assert!(ok, "{err}");

    let (ok, out, err) = chronodb(
        &[
            "sql",
            "--db",
            db,
            "--format",
            "json",
            "-e",
            "UPDATE accounts SET balance = balance + 100 WHERE user_id = 1",
        ],
        None,
    );
    assert!(ok, "{err}");
    let first = json_lines(&out).remove(0);
    assert_eq!(first["affected"], 1);
    let t1 = first["commit_ts"].as_f64().expect("commit_ts is a number");
    let (_, out, _) = chronodb(
        &[
            "sql",
            "--db",
            db,
            "--format",
            "json",
            "-e",
            "UPDATE accounts SET balance = balance + 100 WHERE user_id = 1",
        ],
        None,
    );
    let t2 = json_lines(&out)[0]["commit_ts"].as_f64().unwrap();
    assert!(t2 > t1);

    let between = format!("{:.6}", (t1 + t2) / 2.0);
    let queries = format!(
        "SELECT * FROM users AS OF TIMESTAMP 1635724800 WHERE name = 'Alice'; \
         SELECT * FROM orders WHERE customer_id = 123 AND status = 'shipped'; \
         SELECT users.name, COUNT(orders.id) as order_count FROM users JOIN orders ON users.id = orders.user_id AS OF TIMESTAMP 1635724800 WHERE users.created_at < 1633000000 GROUP BY users.id HAVING order_count > 5; \
         SELECT balance FROM accounts AS OF TIMESTAMP {between} WHERE user_id = 1; \
         SELECT balance FROM accounts WHERE user_id = 1"
    );
    let (ok, out, err) = chronodb(
        &["sql", "--db", db, "--format", "json", "-e", &queries],
        None,
    );
    assert!(ok, "{err}");
    let results = json_lines(&out);
    assert_eq!(results.len(), 5);
    assert_eq!(
        results[0]["columns"],
        serde_json::json!(["id", "name", "email", "created_at"])
    );
    assert_eq!(results[0]["rows"], serde_json::json!([]));
    assert_eq!(
        results[2]["columns"],
        serde_json::json!(["name", "order_count"])
    );
    assert_eq!(results[3]["rows"], serde_json::json!([[200]]));
    assert_eq!(results[4]["rows"], serde_json::json!([[300]]));

    // Exactly the commit's own timestamp reads exactly that version.
    let exact = format!("SELECT balance FROM accounts AS OF TIMESTAMP {t1:.6} WHERE user_id = 1");
    let (_, out, _) = chronodb(&["sql", "--db", db, "--format", "json", "-e", &exact], None);
    assert_eq!(json_lines(&out)[0]["rows"], serde_json::json!([[200]]));
}

#[test]
fn scripts_come_from_standard_input_and_errors_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().to_str().unwrap();
    let mut script = String::from("CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT);\n");
    for i in 0..500 {
        script.push_str(&format!("INSERT INTO t VALUES ({i}, 'row;{i}');\n"));
    }
    script.push_str("SELECT COUNT(*) FROM t;\n");
    let (ok, out, err) = chronodb(&["sql", "--db", db, "--format", "json"], Some(&script));
    assert!(ok, "{err}");
    assert_eq!(
        out.lines().last(),
        Some(r#"{"columns":["COUNT(*)"],"rows":[[500]]}"#)
    );

    let (ok, out, err) = chronodb(
        &[
            "sql",
            "--db",
            db,
            "--format",
            "csv",
            "-e",
            "SELECT id, s FROM t WHERE id < 2 ORDER BY id",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out, "id,s\n0,row;0\n1,row;1\n");

    let (ok, _, err) = chronodb(&["sql", "--db", db, "-e", "SELEC 1"], None);
    assert!(!ok);
    assert!(
        err.contains("syntax error") && err.contains("Line: 1"),
        "{err}"
    );
    let (ok, _, err) = chronodb(&["sql", "--db", db, "-e", "SELECT * FROM missing"], None);
    assert!(!ok);
    assert!(err.contains("no such table: missing"), "{err}");
    let (ok, _, err) = chronodb(&["sql", "-e", "SELECT 1"], None);
    assert!(!ok);
    assert!(err.contains("--db"), "{err}");
}

#[test]
fn a_bad_config_is_named_and_a_good_one_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yaml");
    std::fs::write(
        &config,
        "database:\n  data_file: \"data\"\n  wall_enabled: true\n",
    )
    .unwrap();
    let (ok, _, err) = chronodb(
        &[
            "sql",
            "--config",
            config.to_str().unwrap(),
            "-e",
            "SELECT 1",
        ],
        None,
    );
    assert!(!ok);
    assert!(err.contains("wall_enabled"), "{err}");
    std::fs::write(
        &config,
        "database:\n  data_file: \"data\"\nfeatures:\n  time_travel:\n    enabled: false\n",
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let (ok, _, err) = chronodb(
        &[
            "sql",
            "--config",
            cfg,
            "-e",
            "CREATE TABLE t (id INTEGER PRIMARY KEY)",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(dir.path().join("data").is_dir());
    let (ok, _, err) = chronodb(
        &[
            "sql",
            "--config",
            cfg,
            "-e",
            "SELECT * FROM t AS OF TIMESTAMP 1635724800",
        ],
        None,
    );
    assert!(!ok);
    assert!(err.contains("time travel is disabled"), "{err}");
}

#[test]
fn the_demo_runs() {
    let (ok, out, err) = chronodb(&["demo"], None);
    assert!(ok, "{err}");
    assert!(out.contains("Alice | 10"), "{out}");
    assert!(out.contains("Hash join"), "{out}");
}
