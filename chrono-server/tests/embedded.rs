//! The embedded API: the documented calls on `ChronoDb`, the audit trail included.

use chrono_server::{ChronoDb, Outcome};
use chrono_storage::{Operation, Value};

#[test]
fn all_operations_are_audited_and_the_trail_verifies() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = ChronoDb::open(dir.path()).unwrap();
        db.execute("CREATE TABLE accounts (user_id BIGINT PRIMARY KEY, balance BIGINT)")
            .unwrap();
        db.execute("CREATE INDEX accounts_balance ON accounts (balance)")
            .unwrap();
        db.execute("INSERT INTO accounts VALUES (1, 100), (2, 50)")
            .unwrap();
        let mut s = db.session();
        s.set_principal(Some("alice".into()));
        s.execute("UPDATE accounts SET balance = balance + 100 WHERE user_id = 1")
            .unwrap();
        s.execute("DELETE FROM accounts WHERE user_id = 2").unwrap();
        let report = db.verify_audit_integrity().unwrap();
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.versions, report.entries);
    }
    // Reopened, the chain goes on from where it was.
    let db = ChronoDb::open(dir.path()).unwrap();
    db.execute("UPDATE accounts SET balance = 0").unwrap();
    let report = db.verify_audit_integrity().unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.transactions, 6);
    let rows = db
        .audit_trail()
        .unwrap()
        .generate_audit_report("accounts", 0, u64::MAX)
        .unwrap();
    let ops: Vec<Operation> = rows.iter().map(|e| e.op).collect();
    assert_eq!(
        ops,
        vec![
            Operation::Insert,
            Operation::Insert,
            Operation::Update,
            Operation::Delete,
            Operation::Update
        ]
    );
    assert_eq!(rows[2].principal.as_deref(), Some("alice"));
    assert!(
        !db.audit_trail()
            .unwrap()
            .generate_audit_report("accounts.accounts_balance", 0, u64::MAX)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn change_history_lists_every_version_with_its_operation() {
    let db = ChronoDb::open_temporary().unwrap();
    db.execute("CREATE TABLE users (id BIGINT PRIMARY KEY, email TEXT)")
        .unwrap();
    db.execute("INSERT INTO users VALUES (1, 'a@x')").unwrap();
    db.execute("UPDATE users SET email = 'b@x' WHERE id = 1")
        .unwrap();
    db.execute("DELETE FROM users WHERE id = 1").unwrap();
    let h = db.get_change_history("users", &[Value::Int(1)]).unwrap();
    let ops: Vec<Operation> = h.versions.iter().map(|v| v.op).collect();
    assert_eq!(
        ops,
        vec![Operation::Insert, Operation::Update, Operation::Delete]
    );
    assert_eq!(
        h.versions[1].row,
        Some(vec![Value::Int(1), Value::Text("b@x".into())])
    );
    assert!(
        h.versions
            .windows(2)
            .all(|w| w[0].commit_ts < w[1].commit_ts)
    );
    let Outcome::Rows { rows, .. } = db
        .execute_with_params(
            "SELECT email FROM users AS OF TIMESTAMP ? WHERE id = ?",
            &[
                Value::Timestamp(h.versions[0].commit_ts as i64),
                Value::Int(1),
            ],
        )
        .unwrap()
        .remove(0)
    else {
        panic!()
    };
    assert_eq!(rows, vec![vec![Value::Text("a@x".into())]]);
    assert!(db.get_change_history("nope", &[Value::Int(1)]).is_err());
}

#[test]
fn the_audit_trail_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = chrono_server::Config::with_data_dir(dir.path());
    config.features.audit.enabled = false;
    let db = ChronoDb::open_with_config(config).unwrap();
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        .unwrap();
    let err = db.verify_audit_integrity().unwrap_err().to_string();
    assert!(err.contains("features.audit.enabled"), "{err}");
}

#[test]
fn a_running_database_writes_signed_checkpoints_that_hold_it_to_its_past() {
    let dir = tempfile::tempdir().unwrap();
    let key_hex = chrono_audit::signing::generate_key_hex().unwrap();
    let key_file = dir.path().join("audit.key");
    std::fs::write(&key_file, &key_hex).unwrap();
    let public = chrono_audit::signing::signing_key(&key_hex)
        .unwrap()
        .verifying_key();
    let checkpoints = dir.path().join("checkpoints");
    let mut config = chrono_server::config::Config::with_data_dir(dir.path().join("data"));
    config.features.audit.signing_key_file = Some(key_file);
    config.features.audit.checkpoint_dir = Some(checkpoints.clone());
    config.features.audit.checkpoint_every = 4;
    let db = ChronoDb::open_with_config(config).unwrap();
    db.execute("CREATE TABLE t (id BIGINT PRIMARY KEY)")
        .unwrap();
    for i in 0..11 {
        db.execute(&format!("INSERT INTO t VALUES ({i})")).unwrap();
    }
    // Commits 4 and 8 asked for one each (or one of both, if the second came first).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let newest = loop {
        let mut sizes: Vec<u64> = std::fs::read_dir(&checkpoints)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_prefix("checkpoint-")?
                    .strip_suffix(".txt")?
                    .parse()
                    .ok()
            })
            .collect();
        sizes.sort();
        if sizes.last().is_some_and(|&s| s >= 8) {
            break *sizes.last().unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint: {sizes:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let note =
        std::fs::read_to_string(checkpoints.join(format!("checkpoint-{newest}.txt"))).unwrap();
    let checkpoint = chrono_audit::signing::open(&note, &public).unwrap();
    assert_eq!(checkpoint.size, newest);
    let report = db
        .audit_trail()
        .unwrap()
        .verify_against(&checkpoint)
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
}
