//! Differential test: the same schema, data and queries in ChronoDB and in SQLite must give
//! the same rows. Queries come from a seeded generator (predicates with NULLs, IN, BETWEEN,
//! LIKE, CASE, arithmetic, joins, grouping with HAVING, ordering with LIMIT, window
//! functions with ROWS and RANGE frames), plus a fixed list (SQLite's corpus forms,
//! recursive WITH queries). A second test runs a seeded sequence of upserts, REPLACE,
//! RETURNING and reads of views in both. Rows are compared as sorted multisets, floats to 9
//! significant digits.

use chrono_sql::{Database, Outcome};
use chrono_storage::Value;

const SCHEMA: &[&str] = &[
    "CREATE TABLE t1 (id INTEGER PRIMARY KEY, a INTEGER, b TEXT, c DOUBLE)",
    "CREATE TABLE t2 (id INTEGER PRIMARY KEY, t1_id INTEGER, d INTEGER, e TEXT)",
    "CREATE INDEX t1_a ON t1 (a)",
    "CREATE INDEX t2_t1 ON t2 (t1_id)",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

fn data(rng: &mut Rng) -> Vec<String> {
    let words = [
        "apple",
        "Banana",
        "cherry",
        "date",
        "elder",
        "fig",
        "grape",
        "Apple pie",
    ];
    let mut out = Vec::new();
    for id in 1..=60 {
        let a = if rng.below(8) == 0 {
            "NULL".to_string()
        } else {
            (rng.below(20) as i64 - 5).to_string()
        };
        let b = if rng.below(10) == 0 {
            "NULL".to_string()
        } else {
            format!("'{}'", rng.pick(&words))
        };
        let c = if rng.below(9) == 0 {
            "NULL".to_string()
        } else {
            format!("{}.{}", rng.below(100), rng.below(4) * 25)
        };
        out.push(format!("INSERT INTO t1 VALUES ({id}, {a}, {b}, {c})"));
    }
    for id in 1..=120 {
        let t1 = if rng.below(10) == 0 {
            "NULL".to_string()
        } else {
            (rng.below(70) + 1).to_string()
        };
        let d = if rng.below(7) == 0 {
            "NULL".to_string()
        } else {
            rng.below(50).to_string()
        };
        let e = format!("'{}'", rng.pick(&["x", "y", "z"]));
        out.push(format!("INSERT INTO t2 VALUES ({id}, {t1}, {d}, {e})"));
    }
    out
}

fn predicate(rng: &mut Rng, depth: u32) -> String {
    if depth > 0 && rng.below(3) == 0 {
        let l = predicate(rng, depth - 1);
        let r = predicate(rng, depth - 1);
        return match rng.below(3) {
            0 => format!("({l} AND {r})"),
            1 => format!("({l} OR {r})"),
            _ => format!("NOT ({l})"),
        };
    }
    let n = rng.below(20) as i64 - 5;
    match rng.below(16) {
        0 => format!("t1.a {} {n}", rng.pick(&["=", "<>", "<", "<=", ">", ">="])),
        1 => format!("t1.c {} {}.5", rng.pick(&["<", ">", ">="]), rng.below(100)),
        2 => format!("t1.a BETWEEN {n} AND {}", n + rng.below(8) as i64),
        3 => format!("t1.a IN ({n}, {}, NULL)", n + 2),
        4 => format!("t1.a NOT IN ({n}, {})", n + 1),
        5 => format!(
            "t1.b LIKE '{}'",
            rng.pick(&["a%", "%e", "_a%", "%pp%", "apple"])
        ),
        6 => format!("t1.b {} NULL", rng.pick(&["IS", "IS NOT"])),
        7 => format!("t1.a {} NULL", rng.pick(&["IS", "IS NOT"])),
        8 => format!("t1.a + {n} > t1.id % 7"),
        9 => format!("t1.b = '{}'", rng.pick(&["fig", "date", "Banana"])),
        // Subqueries, correlated (through t1) and not.
        11 => format!(
            "{}EXISTS (SELECT 1 FROM t2 WHERE t2.t1_id = t1.id AND t2.d > {})",
            rng.pick(&["", "NOT "]),
            rng.below(50)
        ),
        12 => format!(
            "t1.a {}IN (SELECT t2.d - 20 FROM t2 WHERE t2.t1_id = t1.id)",
            rng.pick(&["", "NOT "])
        ),
        13 => format!(
            "(SELECT COUNT(*) FROM t2 WHERE t2.t1_id = t1.id) {} {}",
            rng.pick(&["=", ">", "<"]),
            rng.below(4)
        ),
        14 => format!(
            "t1.c {} (SELECT AVG(t2.d) FROM t2 WHERE t2.t1_id = t1.id AND t2.e = '{}')",
            rng.pick(&["<", ">"]),
            rng.pick(&["x", "y", "z"])
        ),
        15 => format!(
            "t1.a {}IN (SELECT t2.d FROM t2 WHERE t2.e = '{}')",
            rng.pick(&["", "NOT "]),
            rng.pick(&["x", "y", "z"])
        ),
        _ => format!("(CASE WHEN t1.a > {n} THEN 1 ELSE 0 END) = 1"),
    }
}

/// A window function call over t1 (deterministic whatever the order of ties: functions that
/// depend on the order among peers order by the unique id last).
fn window_call(rng: &mut Rng) -> String {
    let partition = rng.pick(&["", "PARTITION BY t1.b ", "PARTITION BY t1.a % 3 "]);
    match rng.below(3) {
        // Ranks and RANGE frames treat peers alike: ties are allowed.
        0 => {
            let f = rng.pick(&[
                "rank()",
                "dense_rank()",
                "percent_rank()",
                "cume_dist()",
                "count(*)",
                "sum(t1.a)",
                "max(t1.c)",
            ]);
            let frame = rng.pick(&[
                "",
                " RANGE BETWEEN 3 PRECEDING AND 2 FOLLOWING",
                " RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING",
                " RANGE BETWEEN 1 FOLLOWING AND 4 FOLLOWING",
            ]);
            let dir = rng.pick(&["", " DESC"]);
            format!("{f} OVER ({partition}ORDER BY t1.a{dir}{frame})")
        }
        // Order-sensitive functions and ROWS frames: ordered by the unique id last.
        1 => {
            let f = rng.pick(&[
                "row_number()",
                "lag(t1.a)",
                "lead(t1.c, 2)",
                "lag(t1.b, 1, 'none')",
                "first_value(t1.b)",
                "last_value(t1.a)",
                "nth_value(t1.a, 2)",
                "sum(t1.a)",
                "count(t1.b)",
                "min(t1.c)",
                "avg(t1.a)",
                "total(t1.c)",
                "ntile(3)",
            ]);
            let frame = rng.pick(&[
                "",
                " ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING",
                " ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW",
                " ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING",
                " ROWS BETWEEN 2 PRECEDING AND 1 PRECEDING",
                " ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING",
            ]);
            let key = rng.pick(&["t1.a, ", "t1.c DESC, ", "t1.b, ", ""]);
            format!("{f} OVER ({partition}ORDER BY {key}t1.id{frame})")
        }
        // No ORDER BY: the whole partition.
        _ => {
            let f = rng.pick(&["count(*)", "sum(t1.a)", "max(t1.b)", "avg(t1.c)"]);
            format!("{f} OVER ({partition})")
        }
    }
}

fn query(rng: &mut Rng) -> String {
    let p = predicate(rng, 2);
    match rng.below(13) {
        11 | 12 => {
            let (w1, w2) = (window_call(rng), window_call(rng));
            format!("SELECT t1.id, t1.a, {w1}, {w2} FROM t1 WHERE {p}")
        }
        7 => format!(
            "SELECT t1.a FROM t1 WHERE {p} UNION{} SELECT t2.d FROM t2 WHERE t2.e = '{}'",
            rng.pick(&["", " ALL"]),
            rng.pick(&["x", "y"])
        ),
        8 => format!(
            "SELECT t1.a FROM t1 WHERE {p} {} SELECT t2.d FROM t2 WHERE t2.e <> '{}'",
            rng.pick(&["INTERSECT", "EXCEPT"]),
            rng.pick(&["x", "y"])
        ),
        9 => format!(
            "WITH s AS (SELECT t1.id, t1.a FROM t1 WHERE {p}), c(k, n) AS (SELECT a, COUNT(*) FROM s GROUP BY a) \
             SELECT s.id, c.n FROM s JOIN c ON c.k = s.a WHERE c.n > {}",
            rng.below(3)
        ),
        10 => format!(
            "SELECT t1.id, (SELECT MAX(t2.d) FROM t2 WHERE t2.t1_id = t1.id), \
             (SELECT COUNT(*) FROM t2 WHERE t2.d = t1.a) FROM t1 WHERE {p}"
        ),
        0 => format!("SELECT t1.id, t1.a, t1.b, t1.c FROM t1 WHERE {p}"),
        1 => format!(
            "SELECT t1.a * 2 - t1.id, t1.a / 3, t1.a % 4, t1.c * 2, COALESCE(t1.b, 'none') FROM t1 WHERE {p}"
        ),
        2 => format!(
            "SELECT t1.a, COUNT(*), COUNT(t1.b), SUM(t1.c), MIN(t1.b), MAX(t1.c), COUNT(DISTINCT t1.b) FROM t1 WHERE {p} GROUP BY t1.a"
        ),
        3 => format!(
            "SELECT t1.id, t2.id, t2.d FROM t1 JOIN t2 ON t1.id = t2.t1_id WHERE {p} AND t2.d {} {}",
            rng.pick(&["<", ">", "="]),
            rng.below(50)
        ),
        4 => format!(
            "SELECT t1.id, t2.id FROM t1 LEFT JOIN t2 ON t1.id = t2.t1_id AND t2.e = 'x' WHERE {p}"
        ),
        5 => format!(
            "SELECT t2.e, COUNT(*) AS n, SUM(t2.d) FROM t1 JOIN t2 ON t2.t1_id = t1.id WHERE {p} GROUP BY t2.e HAVING n > {}",
            rng.below(5)
        ),
        _ => format!(
            "SELECT t1.id, t1.c FROM t1 WHERE {p} ORDER BY t1.c DESC, t1.id LIMIT {}",
            rng.below(10) + 1
        ),
    }
}

const FIXED: &[&str] = &[
    "SELECT COUNT(*), SUM(a), AVG(a), TOTAL(a), MIN(a), MAX(a) FROM t1",
    "SELECT b, COUNT(*) FROM t1 GROUP BY b HAVING COUNT(*) > 2",
    "SELECT DISTINCT b FROM t1",
    "SELECT id FROM t1 WHERE a IN (SELECT d FROM t2 WHERE e = 'x')",
    "SELECT id FROM t1 WHERE a NOT IN (SELECT d FROM t2 WHERE d IS NOT NULL)",
    "SELECT id FROM t1 WHERE c > (SELECT AVG(c) FROM t1)",
    "SELECT t1.id, COUNT(t2.id) FROM t1 LEFT JOIN t2 ON t2.t1_id = t1.id GROUP BY t1.id",
    "SELECT a, b FROM t1 ORDER BY a DESC, b LIMIT 7 OFFSET 3",
    "SELECT a FROM t1 ORDER BY a LIMIT 5",
    "SELECT UPPER(b), LENGTH(b), SUBSTR(b, 2, 3), REPLACE(b, 'a', 'A') FROM t1",
    "SELECT CASE WHEN a IS NULL THEN 'n' WHEN a < 5 THEN 'small' ELSE 'big' END, COUNT(*) FROM t1 GROUP BY 1",
    "SELECT COUNT(*) FROM t1, t2 WHERE t1.id = t2.t1_id AND t1.a > t2.d",
    "SELECT x.a, y.a FROM t1 x JOIN t1 y ON x.a = y.a + 1 WHERE x.id < 10",
    "SELECT a, SUM(c) FROM t1 WHERE b IS NOT NULL GROUP BY a ORDER BY 2 DESC LIMIT 3",
    "SELECT NULLIF(a, 3), ABS(a - 10), a BETWEEN 2 AND 8 FROM t1",
    "SELECT t1.id, t2.id, t2.d FROM t1 JOIN t2 ON t2.t1_id = t1.id WHERE t1.id = 7",
    "SELECT t1.id, t2.id FROM t1 LEFT JOIN t2 ON t2.t1_id = t1.id AND t2.d > 20 WHERE t1.id IN (3) OR t1.id = 4",
    "SELECT t2.id, t1.b FROM t2 JOIN t1 ON t1.id = t2.t1_id WHERE t2.id = 9",
    "SELECT sub.a, sub.n FROM (SELECT a, COUNT(*) AS n FROM t1 GROUP BY a) AS sub WHERE sub.n > 1",
    "SELECT a FROM t1 UNION SELECT d FROM t2 UNION ALL SELECT a FROM t1 WHERE id < 5",
    "SELECT a FROM t1 UNION ALL SELECT d FROM t2 UNION SELECT id FROM t1 ORDER BY 1 LIMIT 10",
    // (INTERSECT binds tighter than UNION and EXCEPT, as in standard SQL; SQLite reads all
    // three left to right, so the queries here chain only one kind.)
    "SELECT a, b FROM t1 EXCEPT SELECT a, b FROM t1 WHERE a > 3 EXCEPT SELECT a, b FROM t1 WHERE id > 50",
    "SELECT a FROM t1 INTERSECT SELECT d FROM t2 INTERSECT SELECT a FROM t1 WHERE id > 10",
    "WITH x AS (SELECT a FROM t1 WHERE a IS NOT NULL) SELECT COUNT(*), SUM(a) FROM x WHERE a IN (SELECT a FROM x WHERE a > 2)",
    "SELECT id FROM t1 WHERE a = (SELECT MIN(d) FROM t2 WHERE t2.t1_id = t1.id) ORDER BY id",
    "SELECT t2.id FROM t2 WHERE NOT EXISTS (SELECT 1 FROM t1 WHERE t1.id = t2.t1_id AND t1.a > 3)",
    "SELECT id, (SELECT b FROM t1 x WHERE x.id = t1.id + 1) FROM t1 WHERE id < 20",
    // SQLite's corpus forms.
    "SELECT count(*) FROM ( t1 AS x CROSS JOIN t2 AS y ) WHERE x.id = y.t1_id",
    "SELECT * FROM t1 GROUP BY id HAVING a > 3",
    "SELECT id FROM t1 WHERE a IN () OR a NOT IN ()",
    "SELECT a & 6, a | 9, a << 2, a >> 1, ~a FROM t1",
    "SELECT sum(b), total(b), avg(b) FROM t1",
    "SELECT id FROM t1 NOT INDEXED WHERE a = 3",
    "SELECT a, count(*) FROM t1 INDEXED BY t1_a WHERE a > 2 GROUP BY a",
    "SELECT a, group_concat(id) FROM (SELECT a, id FROM t1 ORDER BY id) GROUP BY a",
    // Recursive WITH queries.
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 3 FROM r WHERE n < 40) SELECT n, (SELECT COUNT(*) FROM t1 WHERE a < n) FROM r",
    "WITH RECURSIVE r(id, a) AS (SELECT id, a FROM t1 WHERE id = 1 UNION SELECT t1.id, t1.a FROM t1 JOIN r ON t1.a = r.a + 1) SELECT id, a FROM r",
    "WITH RECURSIVE r(k) AS (SELECT a FROM t1 WHERE a IS NOT NULL UNION SELECT k - 1 FROM r WHERE k > 0) SELECT k FROM r",
    // Window functions over groups and in ORDER BY.
    "SELECT a, COUNT(*), rank() OVER (ORDER BY COUNT(*) DESC) FROM t1 GROUP BY a",
    "SELECT id FROM t1 ORDER BY row_number() OVER (ORDER BY c DESC, id), id LIMIT 7",
    "SELECT t2.id, sum(t2.d) OVER (PARTITION BY t1.b ORDER BY t2.id) FROM t1 JOIN t2 ON t2.t1_id = t1.id",
    // A quoted number compared with a number column reads as a number (SQLite's affinity).
    "SELECT id FROM t1 WHERE id = '7' OR a > '12'",
    "SELECT id, a FROM t1 WHERE '3' <= a AND c < '20.5'",
];

fn chrono_rows(db: &Database, sql: &str) -> Vec<Vec<Value>> {
    match db
        .execute(sql)
        .unwrap_or_else(|e| panic!("ChronoDB failed on {sql}: {e}"))
        .pop()
    {
        Some(Outcome::Rows { rows, .. }) => rows,
        other => panic!("no rows from {sql}: {other:?}"),
    }
}

fn sqlite_rows(conn: &rusqlite::Connection, sql: &str) -> Vec<Vec<Value>> {
    sqlite_query(conn, sql).unwrap_or_else(|e| panic!("SQLite failed on {sql}: {e}"))
}

/// A statement's rows from SQLite, as ChronoDB's values.
fn sqlite_query(conn: &rusqlite::Connection, sql: &str) -> rusqlite::Result<Vec<Vec<Value>>> {
    let mut stmt = conn.prepare(sql)?;
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                Ok(match r.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(x) => Value::Int(x),
                    rusqlite::types::ValueRef::Real(x) => Value::Float(x),
                    rusqlite::types::ValueRef::Text(t) => {
                        Value::Text(String::from_utf8_lossy(t).into_owned())
                    }
                    rusqlite::types::ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                })
            })
            .collect::<rusqlite::Result<Vec<Value>>>()
    })
    .and_then(|it| it.collect::<rusqlite::Result<Vec<_>>>())
}

/// A comparable rendering: booleans as SQLite's 0/1, numbers to 9 significant digits.
fn canonical(rows: Vec<Vec<Value>>) -> Vec<String> {
    let mut out: Vec<String> = rows
        .into_iter()
        .map(|r| {
            r.iter()
                .map(|v| match v {
                    Value::Bool(b) => format!("{:.9e}", f64::from(u8::from(*b))),
                    Value::Int(i) => format!("{:.9e}", *i as f64),
                    Value::Float(f) => format!("{:.9e}", f),
                    Value::Null => "NULL".into(),
                    other => format!("'{other}'"),
                })
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect();
    out.sort();
    out
}

#[test]
fn random_queries_agree_with_sqlite() {
    agree_with_sqlite(Database::in_memory());
}

/// The same queries with the store on a 3-member etcd cluster: one harness, two engines.
#[test]
fn random_queries_agree_with_sqlite_on_etcd() {
    let cluster = chrono_etcd::cluster::LocalCluster::start(3).unwrap();
    let engine = chrono_etcd::EtcdEngine::open(chrono_etcd::EtcdOptions {
        endpoints: cluster.endpoints(),
        ..Default::default()
    })
    .unwrap();
    let store = chrono_storage::Store::open(std::sync::Arc::new(engine)).unwrap();
    agree_with_sqlite(Database::new(store));
}

fn agree_with_sqlite(db: Database) {
    let mut rng = Rng(0x5eed);
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let mut statements: Vec<String> = SCHEMA.iter().map(|s| s.to_string()).collect();
    statements.extend(data(&mut rng));
    for s in &statements {
        db.execute(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        conn.execute(s, []).unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    db.execute("ANALYZE").unwrap();
    let mut queries: Vec<String> = FIXED.iter().map(|s| s.to_string()).collect();
    queries.extend((0..400).map(|_| query(&mut rng)));
    for q in &queries {
        let ours = canonical(chrono_rows(&db, q));
        let theirs = canonical(sqlite_rows(&conn, q));
        assert_eq!(ours, theirs, "results differ for: {q}");
    }
}

/// What one statement gave: its rows (RETURNING or a query), or that it failed.
fn chrono_outcome(db: &Database, sql: &str) -> Option<Vec<String>> {
    match db.execute(sql) {
        Ok(mut outcomes) => match outcomes.pop() {
            Some(Outcome::Rows { rows, .. }) => Some(canonical(rows)),
            _ => Some(Vec::new()),
        },
        Err(_) => None,
    }
}

fn sqlite_outcome(conn: &rusqlite::Connection, sql: &str) -> Option<Vec<String>> {
    sqlite_query(conn, sql).ok().map(canonical)
}

/// SAVEPOINT, ROLLBACK TO and RELEASE (a name used twice, rolled back to twice) against
/// SQLite: the table read back after every statement.
#[test]
fn savepoints_agree_with_sqlite() {
    let db = Database::in_memory();
    let mut session = db.session();
    let mut ours = |sql: &str| match session.execute(sql) {
        Ok(mut outcomes) => match outcomes.pop() {
            Some(Outcome::Rows { rows, .. }) => Some(canonical(rows)),
            _ => Some(Vec::new()),
        },
        Err(_) => None,
    };
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let script = [
        "CREATE TABLE s (k INTEGER PRIMARY KEY, v INTEGER)",
        "BEGIN",
        "INSERT INTO s VALUES (1, 10), (2, 20)",
        "SAVEPOINT a",
        "UPDATE s SET v = v + 1",
        "SAVEPOINT b",
        "DELETE FROM s WHERE k = 1",
        "ROLLBACK TO b",
        "INSERT INTO s VALUES (3, 30)",
        "SAVEPOINT a",
        "DELETE FROM s",
        "ROLLBACK TO SAVEPOINT a",
        "RELEASE a",
        "INSERT INTO s VALUES (4, 40)",
        "ROLLBACK TO a",
        "RELEASE SAVEPOINT a",
        "COMMIT",
    ];
    for sql in script {
        assert_eq!(ours(sql), sqlite_outcome(&conn, sql), "{sql}");
        assert_eq!(
            ours("SELECT * FROM s"),
            sqlite_outcome(&conn, "SELECT * FROM s"),
            "after {sql}"
        );
    }
}

/// Upserts, REPLACE, RETURNING and views against SQLite: a seeded sequence of writes run in
/// both, each statement's rows (RETURNING) and success or failure compared, and the table
/// and two views read back after every statement.
#[test]
fn writes_and_views_agree_with_sqlite() {
    let db = Database::in_memory();
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let setup = [
        "CREATE TABLE kv (k INTEGER PRIMARY KEY, v INTEGER, tag TEXT UNIQUE)",
        "CREATE VIEW big AS SELECT k, v FROM kv WHERE v > 20",
        "CREATE VIEW per_tag (t, n) AS SELECT tag IS NULL, count(*) FROM kv GROUP BY tag IS NULL",
    ];
    for s in setup {
        db.execute(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        conn.execute(s, []).unwrap_or_else(|e| panic!("{s}: {e}"));
    }
    let mut rng = Rng(0xfeed);
    let tags = ["'a'", "'b'", "'c'", "'d'", "NULL"];
    let (mut failed, mut returned) = (0, 0);
    for step in 0..400 {
        let k = rng.below(12);
        let v = rng.below(40);
        let tag = rng.pick(&tags);
        let sql = match rng.below(10) {
            0 => format!("INSERT INTO kv VALUES ({k}, {v}, {tag})"),
            1 => format!("INSERT OR IGNORE INTO kv VALUES ({k}, {v}, {tag})"),
            2 => format!("INSERT OR REPLACE INTO kv VALUES ({k}, {v}, {tag}) RETURNING k, v"),
            3 => format!("REPLACE INTO kv VALUES ({k}, {v}, {tag})"),
            4 => format!(
                "INSERT INTO kv VALUES ({k}, {v}, {tag}) ON CONFLICT (k) DO UPDATE SET v = kv.v + excluded.v RETURNING *"
            ),
            5 => format!(
                "INSERT INTO kv VALUES ({k}, {v}, {tag}) ON CONFLICT DO NOTHING RETURNING k"
            ),
            6 => format!(
                "INSERT INTO kv VALUES ({k}, {v}, {tag}) ON CONFLICT (tag) DO UPDATE SET v = excluded.v WHERE kv.v < {v} RETURNING k, tag"
            ),
            7 => format!(
                "UPDATE kv SET v = v + 1 WHERE k IN ({k}, {}) RETURNING k, v",
                (k + 3) % 12
            ),
            8 => format!("DELETE FROM kv WHERE k = {k} OR v > 35 RETURNING *"),
            _ => format!("UPDATE kv SET tag = {tag} WHERE k = {k}"),
        };
        let ours = chrono_outcome(&db, &sql);
        let theirs = sqlite_outcome(&conn, &sql);
        assert_eq!(
            ours.is_some(),
            theirs.is_some(),
            "step {step}: one failed and the other did not: {sql}"
        );
        assert_eq!(ours, theirs, "step {step}: results differ for: {sql}");
        match &ours {
            None => failed += 1,
            Some(rows) => returned += rows.len(),
        }
        for read in [
            "SELECT * FROM kv",
            "SELECT * FROM big WHERE k > 3",
            "SELECT * FROM per_tag",
        ] {
            assert_eq!(
                chrono_outcome(&db, read),
                sqlite_outcome(&conn, read),
                "step {step}: {read} differs after: {sql}"
            );
        }
    }
    // The sequence exercises both ways out: collisions that fail, rows given back.
    assert!(
        failed > 10 && returned > 50,
        "{failed} failed, {returned} rows returned"
    );
}
