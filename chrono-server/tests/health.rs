//! The documented health report through the embedded API: its findings are true for the data
//! (the index a repeated filtered scan needed, gone once it is created), and every section
//! is filled.

use chrono_server::ChronoDb;
use chrono_server::health::Severity;
use chrono_storage::Value;

#[test]
fn the_report_recommends_the_index_a_repeated_scan_needed_and_forgets_it_once_made() {
    let db = ChronoDb::open_temporary().unwrap();
    db.execute("CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT, email TEXT)")
        .unwrap();
    db.execute(
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, user_id BIGINT, total DOUBLE, status TEXT)",
    )
    .unwrap();
    let users: Vec<String> = (0..200)
        .map(|i| format!("({i}, 'user{i}', 'u{i}@example.com')"))
        .collect();
    db.execute(&format!("INSERT INTO users VALUES {}", users.join(", ")))
        .unwrap();
    let orders: Vec<String> = (0..5000)
        .map(|i| format!("({i}, {}, {}.5, 'paid')", i % 200, i % 97))
        .collect();
    db.execute(&format!("INSERT INTO orders VALUES {}", orders.join(", ")))
        .unwrap();
    for u in 0..6 {
        db.execute_with_params(
            "SELECT total, status FROM orders WHERE user_id = ?",
            &[Value::Int(u)],
        )
        .unwrap();
    }
    db.execute("UPDATE users SET email = 'new@example.com' WHERE id = 1")
        .unwrap();

    let report = db.get_health_report().unwrap();
    let index = report
        .findings
        .iter()
        .find(|f| f.area == "indexes")
        .unwrap_or_else(|| panic!("{}", report.to_text()));
    assert_eq!(index.severity, Severity::Warning);
    assert!(index.title.contains("orders.user_id"), "{}", index.title);
    assert!(
        index
            .recommendation
            .contains("CREATE INDEX orders_user_id_idx ON orders (user_id)"),
        "{}",
        index.recommendation
    );
    assert!(
        index
            .detail
            .contains("6 recent scans read 30000 rows to keep 150"),
        "{}",
        index.detail
    );
    // The sections behind it.
    let stmt = report
        .statements
        .iter()
        .find(|s| s.statement == "select total, status from orders where user_id = ?")
        .unwrap_or_else(|| panic!("{:?}", report.statements));
    assert_eq!((stmt.calls, stmt.rows), (6, 150));
    assert!(
        report
            .slowest
            .iter()
            .any(|s| s.plan.iter().any(|l| l.contains("Full scan orders"))),
        "{:?}",
        report.slowest
    );
    let users_history = report.history.iter().find(|h| h.table == "users").unwrap();
    assert_eq!(
        (users_history.live_rows, users_history.versions),
        (200, 201)
    );
    assert!(report.audit.enabled && report.audit.transactions >= 5);
    assert_eq!(
        report.audit.last_verification, None,
        "not verified since opened"
    );
    assert!(db.verify_audit_integrity().unwrap().is_ok());
    let verified = db.get_health_report().unwrap().audit.last_verification;
    assert_eq!(verified.map(|(_, outcome)| outcome).as_deref(), Some("ok"));
    assert!(!report.storage.is_empty());
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.title.contains("orders has no statistics"))
    );
    // Every form renders.
    assert!(report.to_text().contains("Index advice:"));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["index_advice"][0]["column"], "user_id");
    let html = report.to_html();
    assert!(html.contains("<svg") && html.contains("orders.user_id"));
    // A chart per section: statements, history depth, history bytes, estimator, storage.
    assert_eq!(html.matches("<svg").count(), 5, "{html}");
    for (i, h) in report.history.iter().enumerate() {
        assert!(
            html.contains(&format!("{} ({} days)", h.table, h.retention_days)),
            "history row {i}"
        );
    }

    // Following the advice makes the finding go away.
    db.execute("CREATE INDEX orders_user_id_idx ON orders (user_id)")
        .unwrap();
    let report = db.get_health_report().unwrap();
    assert!(
        report.findings.iter().all(|f| f.area != "indexes"),
        "{}",
        report.to_text()
    );
}

#[test]
fn a_damaged_catalog_is_a_finding_not_a_failed_report() {
    use chrono_storage::{ColumnFamily, WriteBatch};
    let db = ChronoDb::open_temporary().unwrap();
    db.execute("CREATE TABLE t (id BIGINT PRIMARY KEY)")
        .unwrap();
    // The first current row is the catalog's entry for t: cut it short.
    let engine = db.database().store().engine().clone();
    let mut cursor = engine.cursor(ColumnFamily::Latest).unwrap();
    cursor.seek(&[]);
    let (key, value) = (cursor.key().to_vec(), cursor.value().to_vec());
    let mut batch = WriteBatch::new();
    batch.put(ColumnFamily::Latest, key, value[..value.len() / 2].to_vec());
    engine.write(batch).unwrap();
    let report = db.get_health_report().unwrap();
    assert_eq!(report.findings[0].severity, Severity::Critical);
    assert_eq!(report.findings[0].title, "the catalog does not read");
}

/// On a new database every section of the HTML report is empty, and each says why.
#[test]
fn empty_sections_of_the_html_report_say_why() {
    let db = chrono_server::ChronoDb::open_temporary().unwrap();
    let html = db.get_health_report().unwrap().to_html();
    let empty = html.matches("class=\"empty\"").count();
    assert!(empty >= 3, "{html}");
    assert!(!html.contains("nothing to show</p>"), "{html}");
    for piece in html.split("class=\"empty\">").skip(1) {
        let text = &piece[..piece.find('<').unwrap()];
        assert!(text.len() > 30, "a reason, not just 'empty': {text}");
    }
}
