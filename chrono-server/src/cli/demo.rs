//! `chronodb demo`: the walkthrough's examples on a database in a temporary directory, printed
//! step by step.

use chrono_sql::Outcome;
use chrono_storage::{Timestamp, Value};

use crate::ChronoDb;
use crate::cli::shell::print_rows;
use crate::error::Result;

fn heading(text: &str) {
    println!(
        "\n── {text} {}",
        "─".repeat(70usize.saturating_sub(text.chars().count()))
    );
}

/// Runs one statement, echoing it and printing its outcome; returns the outcome.
fn run(db: &ChronoDb, sql: &str) -> Result<Outcome> {
    println!("\nchronodb> {sql}");
    let outcome = db.execute(sql)?.pop().unwrap_or(Outcome::Done {
        tag: "(nothing)".into(),
        commit_ts: None,
    });
    match &outcome {
        Outcome::Rows { columns, rows, .. } => print_rows(columns, rows),
        Outcome::Affected {
            affected,
            commit_ts,
        } => println!(
            "{affected} row(s) affected, commit timestamp {}",
            commit_ts
                .map(|t| Timestamp::from_micros(t).seconds())
                .unwrap_or_else(|| "-".into())
        ),
        Outcome::Done { tag, commit_ts } => println!(
            "{tag} (commit timestamp {})",
            commit_ts
                .map(|t| Timestamp::from_micros(t).seconds())
                .unwrap_or_else(|| "-".into())
        ),
    }
    Ok(outcome)
}

fn commit_ts(o: &Outcome) -> u64 {
    match o {
        Outcome::Affected {
            commit_ts: Some(t), ..
        }
        | Outcome::Done {
            commit_ts: Some(t), ..
        } => *t,
        _ => 0,
    }
}

/// Runs the demo.
pub fn run_demo() -> Result<()> {
    let db = ChronoDb::open_temporary()?;
    println!(
        "ChronoDB demo — a time-travel database. A fresh database was created in {}",
        db.data_dir().display()
    );

    heading("1. Traditional SQL");
    run(
        &db,
        "CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE, created_at BIGINT)",
    )?;
    run(
        &db,
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, user_id BIGINT REFERENCES users(id), total DOUBLE, status TEXT)",
    )?;
    run(
        &db,
        "CREATE TABLE accounts (user_id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)",
    )?;
    run(
        &db,
        "INSERT INTO users (id, name, email, created_at) VALUES (1, 'Alice', 'alice@email.com', 1600000000)",
    )?;
    run(
        &db,
        "INSERT INTO users VALUES (2, 'Bob', 'bob@email.com', 1625000000), (3, 'Carol', 'carol@email.com', 1634000000)",
    )?;
    let mut order_rows = Vec::new();
    for i in 0..14 {
        let user = [1, 1, 2][i % 3];
        let status = ["shipped", "pending", "shipped", "cancelled"][i % 4];
        order_rows.push(format!(
            "({}, {user}, {}.5, '{status}')",
            100 + i,
            10 + i * 3
        ));
    }
    run(
        &db,
        &format!("INSERT INTO orders VALUES {}", order_rows.join(", ")),
    )?;
    run(&db, "INSERT INTO accounts VALUES (1, 500), (2, 80)")?;

    heading("2. Changes over time (every write returns its exact commit timestamp)");
    let t1 = commit_ts(&run(
        &db,
        "UPDATE accounts SET balance = balance + 100 WHERE user_id = 1",
    )?);
    let t2 = commit_ts(&run(
        &db,
        "UPDATE accounts SET balance = balance - 250 WHERE user_id = 1",
    )?);
    let t3 = commit_ts(&run(
        &db,
        "UPDATE users SET email = 'alice@new.example' WHERE id = 1",
    )?);
    run(
        &db,
        "DELETE FROM orders WHERE status = 'cancelled' OR id > 108",
    )?;

    heading("3. Time-travel queries");
    println!(
        "AS OF TIMESTAMP takes Unix seconds (fractions to the microsecond) or an ISO-8601 string."
    );
    let between = t1 + (t2 - t1) / 2;
    run(
        &db,
        "SELECT user_id, balance FROM accounts WHERE user_id = 1",
    )?;
    run(
        &db,
        &format!(
            "SELECT user_id, balance FROM accounts AS OF TIMESTAMP {} WHERE user_id = 1",
            Timestamp::from_micros(between).seconds()
        ),
    )?;
    run(
        &db,
        &format!(
            "SELECT user_id, balance FROM accounts AS OF TIMESTAMP {} WHERE user_id = 1",
            Timestamp::from_micros(t1 - 1).seconds()
        ),
    )?;
    println!(
        "\nThe documented example: 1635724800 is 2021-11-01, before this demo's data existed, so the table was empty then:"
    );
    run(
        &db,
        "SELECT * FROM users AS OF TIMESTAMP 1635724800 WHERE name = 'Alice'",
    )?;
    run(
        &db,
        &format!(
            "SELECT id, name, email FROM users AS OF TIMESTAMP {} WHERE name = 'Alice'",
            Timestamp::from_micros(t3 - 1).seconds()
        ),
    )?;

    heading("4. Change history of one row");
    println!("\nEmbedded (Rust): db.get_change_history(\"accounts\", &[Value::Int(1)])");
    let history = db.get_change_history("accounts", &[Value::Int(1)])?;
    let mut columns = vec!["commit_ts".to_string(), "operation".to_string()];
    columns.extend(history.columns.iter().cloned());
    let rows: Vec<Vec<Value>> = history
        .versions
        .iter()
        .map(|v| {
            let mut r = vec![
                Value::Text(Timestamp::from_micros(v.commit_ts).seconds()),
                Value::Text(v.op.as_str().into()),
            ];
            r.extend(
                v.row
                    .clone()
                    .unwrap_or_else(|| vec![Value::Null; history.columns.len()]),
            );
            r
        })
        .collect();
    print_rows(&columns, &rows);
    run(
        &db,
        "SELECT user_id, balance, _system_from, _system_to FROM accounts FOR SYSTEM_TIME ALL WHERE user_id = 1 ORDER BY _system_from",
    )?;

    heading("5. The complex time-travel query, verbatim");
    let q = "SELECT users.name, COUNT(orders.id) as order_count FROM users JOIN orders ON users.id = orders.user_id AS OF TIMESTAMP 1635724800 WHERE users.created_at < 1633000000 GROUP BY users.id HAVING order_count > 5";
    run(&db, q)?;
    println!("\nThe same query as of just before the orders were deleted, and now:");
    run(
        &db,
        &q.replace("1635724800", &Timestamp::from_micros(t1).seconds()),
    )?;
    run(&db, &q.replace(" AS OF TIMESTAMP 1635724800", ""))?;

    heading("6. The audit trail: every operation, verifiable");
    println!(
        "\nEmbedded: db.verify_audit_integrity()   (command line: chronodb audit verify --db DIR)"
    );
    let report = db.verify_audit_integrity()?;
    println!(
        "{} transactions, {} entries and {} row versions checked in {:.1} ms: {}",
        report.transactions,
        report.entries,
        report.versions,
        report.elapsed.as_secs_f64() * 1e3,
        match &report.failure {
            None => "integrity OK".to_string(),
            Some(f) => format!("FAILED {:?} at {}", f.kind, f.position),
        }
    );
    println!(
        "\nEmbedded: db.audit_trail()?.generate_audit_report(\"accounts\", from, to)   \
         (command line: chronodb audit report --db DIR --table accounts --from T --to T)"
    );
    let trail = db.audit_trail()?;
    let entries = trail.generate_audit_report("accounts", 0, u64::MAX)?;
    let rows: Vec<Vec<Value>> = entries
        .iter()
        .map(|e| {
            let key = chrono_storage::encoding::decode_key(&e.key)
                .ok()
                .and_then(|k| k.into_iter().next())
                .unwrap_or(Value::Null);
            vec![
                Value::Text(Timestamp::from_micros(e.commit_ts).seconds()),
                Value::Int(e.tx as i64),
                Value::Text(e.op.as_str().into()),
                key,
                Value::Text(
                    e.after
                        .map(|h| {
                            h[..6]
                                .iter()
                                .map(|b| format!("{b:02x}"))
                                .collect::<String>()
                                + "…"
                        })
                        .unwrap_or_else(|| "-".into()),
                ),
            ]
        })
        .collect();
    print_rows(
        &[
            "time".into(),
            "tx".into(),
            "operation".into(),
            "key".into(),
            "after (sha3)".into(),
        ],
        &rows,
    );
    let last = trail.size();
    let proof = trail.inclusion_proof(last, None)?;
    println!(
        "\nInclusion proof of transaction {last} in the log of {}: {} hashes, verifies: {}",
        proof.size,
        proof.path.len(),
        proof.verify()
    );

    heading("7. The plan, with estimated and actual rows");
    run(&db, "ANALYZE")?;
    if let Some(ml) = db.ml_optimizer() {
        // ANALYZE returns with the statistics; the learned estimator trains on the sample
        // it kept in the background. The demo waits for it, to show its estimates.
        println!("(waiting for the learned estimator's training, in the background)");
        ml.wait_idle();
    }
    run(
        &db,
        "EXPLAIN ANALYZE SELECT users.name, COUNT(orders.id) AS order_count FROM users JOIN orders ON users.id = orders.user_id GROUP BY users.id",
    )?;

    println!(
        "\nDone. The temporary database is removed on exit; `chronodb sql --db DIR` keeps one."
    );
    Ok(())
}
