//! PostgreSQL's wire protocol (`server.postgres`) with real clients: psql (the simple query
//! protocol, as a person types), tokio-postgres (the extended protocol, binary results,
//! prepared statements, portals, transactions, cancel requests), and clients that break the
//! rules (a message past the limit, too many connections, a wrong password); psycopg 3
//! runs its own checks (`tests/python/psycopg_client.py`).

mod support;

use std::time::{Duration, SystemTime};

use chrono_server::config::ServerConfig;
use support::InProcess;
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

const SETUP: &[&str] = &[
    "CREATE TABLE acct (id BIGINT PRIMARY KEY, owner TEXT NOT NULL, balance DOUBLE, \
     opened TIMESTAMP, active BOOLEAN, photo BLOB)",
    "INSERT INTO acct VALUES (1, 'ann', 10.5, '2026-01-02 03:04:05', true, NULL), \
     (2, 'bob', NULL, NULL, false, NULL)",
];

async fn connect(port: u16, user: &str, password: Option<&str>) -> tokio_postgres::Client {
    try_connect(port, user, password).await.unwrap()
}

async fn try_connect(
    port: u16,
    user: &str,
    password: Option<&str>,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user(user)
        .dbname("chronodb")
        .connect_timeout(Duration::from_secs(30));
    if let Some(p) = password {
        config.password(p);
    }
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Runs `script` through psql's standard input (one session, going on after errors, as
/// psql does): its output and errors.
async fn psql(port: u16, script: &str) -> String {
    let script = script.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new("psql")
            .args(["-X", "-h", "127.0.0.1", "-p", &port.to_string()])
            .args(["-U", "ann", "-d", "chronodb"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("psql is installed (scripts/setup.sh installs postgresql-client)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
    .await
    .unwrap()
}

fn config() -> ServerConfig {
    ServerConfig {
        // Generous: only the cancel test's own request may stop its statement.
        statement_timeout_ms: 600_000,
        ..ServerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn psql_runs_a_script_with_a_failed_transaction_and_time_travel() {
    let server = InProcess::start(config(), SETUP).await;
    let script = "\
UPDATE acct SET balance = 99 WHERE id = 2;
SELECT id, owner, balance, opened, active FROM acct ORDER BY id;
BEGIN;
INSERT INTO acct (id, owner) VALUES (1, 'dup');
SELECT 1;
COMMIT;
SELECT count(*) AS n FROM acct;
SELECT id, balance FROM acct FOR SYSTEM_TIME ALL WHERE id = 2 ORDER BY _system_from;
SHOW server_version;
SELECT * FROM nope;
";
    let outputs = psql(server.pg_port, script).await;
    for expected in [
        "UPDATE 1",
        "  1 | ann   |    10.5 | 2026-01-02 03:04:05+00 | t",
        "  2 | bob   |      99 |                        | f",
        "ERROR:  constraint violation: UNIQUE constraint failed",
        "current transaction is aborted, commands ignored until end of transaction block",
        "ROLLBACK",
        " n \n---\n 2\n",
        "15.0",
        "ERROR:  no such table: nope",
    ] {
        assert!(outputs.contains(expected), "{expected:?} in\n{outputs}");
    }

    // The rows inserted in a failed transaction before its error are rolled back too.
    let all = psql(
        server.pg_port,
        "BEGIN;\nINSERT INTO acct (id, owner) VALUES (3, 'cy');\n\
         INSERT INTO acct (id, owner) VALUES (1, 'dup');\nCOMMIT;\n\
         SELECT count(*) AS n FROM acct;\n",
    )
    .await;
    assert!(all.contains(" n \n---\n 2\n"), "{all}");

    // ROLLBACK TO SAVEPOINT ends a failed transaction's failure, as in PostgreSQL: what
    // came before the savepoint and after the rollback to it commits.
    let saved = psql(
        server.pg_port,
        "BEGIN;\nINSERT INTO acct (id, owner) VALUES (5, 'eve');\nSAVEPOINT s;\n\
         INSERT INTO acct (id, owner) VALUES (1, 'dup');\nSELECT 1;\nROLLBACK TO SAVEPOINT s;\n\
         INSERT INTO acct (id, owner) VALUES (6, 'fay');\nCOMMIT;\n\
         SELECT string_agg(owner, ',') AS owners FROM acct;\n",
    )
    .await;
    for expected in [
        "current transaction is aborted",
        "ROLLBACK\nINSERT 0 1\nCOMMIT",
        "ann,bob,eve,fay",
    ] {
        assert!(saved.contains(expected), "{expected:?} in\n{saved}");
    }
    server.shutdown().await;
}

/// psql's describe commands read the system catalogs with PostgreSQL's own queries
/// (regular expressions, `OPERATOR(pg_catalog.~)`, `::regclass`, arrays, catalogs ChronoDB
/// keeps empty): each answers as PostgreSQL 15 would for the same tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn psql_describes_tables_indexes_views_and_schemas() {
    let server = InProcess::start(
        config(),
        &[
            SETUP[0],
            "CREATE UNIQUE INDEX acct_owner ON acct (owner)",
            "CREATE VIEW rich AS SELECT owner, balance FROM acct WHERE balance > 100",
        ],
    )
    .await;
    let out = psql(
        server.pg_port,
        "\\dt\n\\d acct\n\\di\n\\dv\n\\d rich\n\\dn\n\\l\n\\du\n\\d acct_owner\n\\d nothing\n",
    )
    .await;
    for expected in [
        // \dt
        " Schema | Name | Type  |  Owner   \n--------+------+-------+----------\n public | acct | table | chronodb\n(1 row)",
        // \d acct
        "                         Table \"public.acct\"",
        " id      | bigint                   |           | not null | ",
        " owner   | text                     |           | not null | ",
        " balance | double precision         |           |          | ",
        " opened  | timestamp with time zone |           |          | ",
        " active  | boolean                  |           |          | ",
        " photo   | bytea                    |           |          | ",
        "Indexes:\n    \"acct_pkey\" PRIMARY KEY, btree (id)\n    \"acct_owner\" UNIQUE CONSTRAINT, btree (owner)\n",
        // \di
        " public | acct_owner | index | chronodb | acct",
        " public | acct_pkey  | index | chronodb | acct",
        // \dv and \d rich
        " public | rich | view | chronodb",
        "View \"public.rich\"",
        " balance | double precision |",
        // \dn, \l, \du
        " public | chronodb",
        " chronodb | chronodb | UTF8     | C       | C     |",
        " chronodb  | Superuser, Create role, Create DB | {}",
        // \d acct_owner
        "Index \"public.acct_owner\"",
        " owner  | text | yes  | owner",
        "unique, btree, for table \"public.acct\"",
        "Did not find any relation named \"nothing\".",
    ] {
        assert!(out.contains(expected), "{expected:?} in\n{out}");
    }
    assert!(!out.contains("ERROR"), "{out}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_extended_protocol_binds_typed_parameters_and_reads_binary_results() {
    let server = InProcess::start(config(), SETUP).await;
    let c = connect(server.pg_port, "ann", None).await;

    // A prepared statement: parameter and column types from the statement.
    let select = c
        .prepare("SELECT id, owner, balance, opened, active FROM acct WHERE id = $1")
        .await
        .unwrap();
    assert_eq!(select.params(), &[tokio_postgres::types::Type::INT8]);
    let types: Vec<_> = select.columns().iter().map(|c| c.type_().clone()).collect();
    use tokio_postgres::types::Type;
    assert_eq!(
        types,
        vec![
            Type::INT8,
            Type::TEXT,
            Type::FLOAT8,
            Type::TIMESTAMPTZ,
            Type::BOOL
        ]
    );
    let row = c.query_one(&select, &[&1i64]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
    assert_eq!(row.get::<_, &str>(1), "ann");
    assert_eq!(row.get::<_, f64>(2), 10.5);
    let opened: SystemTime = row.get(3);
    assert_eq!(
        opened
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        1_767_323_045
    );
    assert!(row.get::<_, bool>(4));
    let row = c.query_one(&select, &[&2i64]).await.unwrap();
    assert_eq!(row.get::<_, Option<f64>>(2), None);

    // Parameters of every type, into the columns that give them their types.
    let at = SystemTime::UNIX_EPOCH + Duration::from_micros(1_800_000_000_123_456);
    let n = c
        .execute(
            "INSERT INTO acct VALUES ($1, $2, $3, $4, $5, $6)",
            &[&3i64, &"cy", &2.25f64, &at, &true, &vec![0u8, 1, 255]],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let row = c
        .query_one(
            "SELECT opened, photo, balance * 2 FROM acct WHERE id = 3",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, SystemTime>(0), at);
    assert_eq!(row.get::<_, Vec<u8>>(1), vec![0u8, 1, 255]);
    assert_eq!(row.get::<_, f64>(2), 4.5);

    // Text parameters with no declared type are read as the statement's types.
    let rows = c
        .simple_query("SELECT owner FROM acct WHERE id IN (1, 3) ORDER BY id")
        .await
        .unwrap();
    let owners: Vec<_> = rows
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .collect();
    assert_eq!(owners, vec!["ann", "cy"]);

    // A unique violation and an unknown table carry their SQLSTATEs.
    let e = c
        .execute("INSERT INTO acct (id, owner) VALUES ($1, 'x')", &[&1i64])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::UNIQUE_VIOLATION), "{e}");
    let e = c.query("SELECT * FROM nope", &[]).await.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::UNDEFINED_TABLE), "{e}");
    let e = c.prepare("SELECT 1; SELECT 2").await.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::SYNTAX_ERROR), "{e}");

    // Transactions: a rolled-back one leaves nothing, a committed one its rows.
    let mut c = c;
    let t = c.transaction().await.unwrap();
    t.execute("DELETE FROM acct WHERE id = $1", &[&3i64])
        .await
        .unwrap();
    t.rollback().await.unwrap();
    let t = c.transaction().await.unwrap();
    t.execute(
        "UPDATE acct SET balance = $1 WHERE id = $2",
        &[&7.0f64, &2i64],
    )
    .await
    .unwrap();
    // A portal read two rows at a time.
    let stmt = t.prepare("SELECT id FROM acct ORDER BY id").await.unwrap();
    let portal = t.bind(&stmt, &[]).await.unwrap();
    let first = t.query_portal(&portal, 2).await.unwrap();
    let rest = t.query_portal(&portal, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].get::<_, i64>(0), 3);
    t.commit().await.unwrap();
    let row = c
        .query_one("SELECT count(*), sum(balance) FROM acct", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 3);
    assert_eq!(row.get::<_, f64>(1), 10.5 + 7.0 + 2.25);

    // The commit time of the last write, for AS OF.
    let at = c
        .query_one("SHOW chronodb.last_commit", &[])
        .await
        .unwrap()
        .get::<_, String>(0);
    let rows = c
        .query(
            &format!("SELECT balance FROM acct AS OF TIMESTAMP '{at}' WHERE id = 2"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, f64>(0), 7.0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancel_request_stops_the_running_statement() {
    let values: Vec<String> = (0..1000).map(|i| format!("({i})")).collect();
    let fill = format!("INSERT INTO n VALUES {}", values.join(", "));
    let server =
        InProcess::start(config(), &["CREATE TABLE n (x BIGINT PRIMARY KEY)", &fill]).await;
    let c = connect(server.pg_port, "ann", None).await;
    let cancel = c.cancel_token();
    let running = tokio::spawn(async move {
        // 10^9 rows: far longer than the test waits.
        let r = c.query("SELECT count(*) FROM n a, n b, n c", &[]).await;
        (r, c)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    cancel.cancel_query(NoTls).await.unwrap();
    let (r, c) = tokio::time::timeout(Duration::from_secs(120), running)
        .await
        .expect("the statement stops once cancelled")
        .unwrap();
    let e = r.unwrap_err();
    assert_eq!(e.code(), Some(&SqlState::QUERY_CANCELED), "{e}");
    // The connection goes on.
    let row = c.query_one("SELECT count(*) FROM n", &[]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 1000);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_clients_get_an_error_and_the_server_stays_up() {
    let server = InProcess::start(
        ServerConfig {
            postgres_max_message_bytes: 1 << 20,
            postgres_max_connections: 3,
            ..config()
        },
        SETUP,
    )
    .await;
    // A message past the limit closes that connection only.
    let c = connect(server.pg_port, "ann", None).await;
    let huge = format!("SELECT '{}'", "x".repeat(4 << 20));
    assert!(c.simple_query(&huge).await.is_err());
    let c = connect_once_a_slot_is_free(server.pg_port).await;
    assert_eq!(
        c.query_one("SELECT count(*) FROM acct", &[])
            .await
            .unwrap()
            .get::<_, i64>(0),
        2
    );

    // Garbage instead of a startup message, and a message type that does not exist.
    for bytes in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        &[0, 0, 0, 8, 0, 3, 0, 0, b'Z', 0, 0, 0, 4][..],
    ] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", server.pg_port))
            .await
            .unwrap();
        let _ = s.write_all(bytes).await;
        let mut buf = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(30), s.read_to_end(&mut buf)).await;
    }

    // Past the connection limit: refused with 53300, while the others go on. (A closed
    // connection's slot is freed when its task ends, a moment after the client sees the
    // close: on a busy machine the first tries may still count it.)
    let a = connect_once_a_slot_is_free(server.pg_port).await;
    let b = connect_once_a_slot_is_free(server.pg_port).await;
    let e = match try_connect(server.pg_port, "ann", None).await {
        Ok(_) => panic!("a fourth connection is refused"),
        Err(e) => e,
    };
    assert_eq!(e.code(), Some(&SqlState::TOO_MANY_CONNECTIONS), "{e}");
    for client in [&a, &b, &c] {
        client.query_one("SELECT 1", &[]).await.unwrap();
    }
    drop((a, b));
    server.shutdown().await;
}

/// Opens a raw connection and sends a startup message: the backend's first answer, `Z`
/// (ready for query) or `E` (an error, such as too many connections), with the stream.
async fn raw_startup(port: u16) -> (u8, tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("the server accepts the connection");
    let body = b"\0\x03\0\0user\0ann\0database\0chronodb\0\0";
    let mut startup = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    startup.extend_from_slice(body);
    s.write_all(&startup).await.unwrap();
    loop {
        let kind = s.read_u8().await.expect("an answer to the startup message");
        let len = s.read_u32().await.unwrap() as usize;
        let mut rest = vec![0; len - 4];
        s.read_exact(&mut rest).await.unwrap();
        if kind == b'Z' || kind == b'E' {
            return (kind, s);
        }
    }
}

/// A thousand connections at once: as many as `server.postgres_max_connections` are served,
/// the rest refused, and the server serves new ones once they go. A client that trickles a
/// message is cut off after `server.postgres_message_timeout_ms`; an idle one is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_connections_and_a_trickling_client_leave_the_server_serving() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = InProcess::start(
        ServerConfig {
            postgres_max_connections: 100,
            postgres_message_timeout_ms: 1_000,
            ..config()
        },
        SETUP,
    )
    .await;
    let attempts: Vec<_> = (0..1000)
        .map(|_| tokio::spawn(raw_startup(server.pg_port)))
        .collect();
    let mut open = Vec::new();
    let mut refused = 0;
    for a in attempts {
        match a.await.unwrap() {
            (b'Z', s) => open.push(s),
            _ => refused += 1,
        }
    }
    assert_eq!(open.len(), 100, "served up to the limit");
    assert_eq!(refused, 900);
    drop(open);
    let c = connect_once_a_slot_is_free(server.pg_port).await;
    let n: i64 = c
        .query_one("SELECT count(*) FROM acct", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);

    // An idle connection outlives the message timeout.
    let (ready, mut idle) = raw_startup(server.pg_port).await;
    assert_eq!(ready, b'Z');
    // A message begun and trickled a byte at a time: the connection is closed.
    let (ready, mut slow) = raw_startup(server.pg_port).await;
    assert_eq!(ready, b'Z');
    let query = b"SELECT count(*) FROM acct\0";
    let mut message = vec![b'Q'];
    message.extend_from_slice(&((query.len() + 4) as u32).to_be_bytes());
    message.extend_from_slice(query);
    let mut closed = false;
    for &byte in &message {
        if slow.write_all(&[byte]).await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(500), slow.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    assert!(
        closed,
        "a client sending one byte per half second is cut off"
    );
    // The idle one still answers, whole messages at once.
    idle.write_all(&message).await.unwrap();
    let kind = idle.read_u8().await.unwrap();
    assert_eq!(
        kind, b'T',
        "a row description for the idle connection's query"
    );
    server.shutdown().await;
}

/// A connection, tried again while the server refuses it for too many connections (for
/// at most a minute).
async fn connect_once_a_slot_is_free(port: u16) -> tokio_postgres::Client {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match try_connect(port, "ann", None).await {
            Ok(c) => return c,
            Err(e)
                if e.code() == Some(&SqlState::TOO_MANY_CONNECTIONS)
                    && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("connect: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_tokens_users_sign_in_with_scram() {
    let mut tokens = std::collections::HashMap::new();
    tokens.insert("alice".to_string(), "0123456789abcdef0123".to_string());
    let server = InProcess::start(
        ServerConfig {
            auth_tokens: tokens,
            ..config()
        },
        SETUP,
    )
    .await;
    let c = connect(server.pg_port, "alice", Some("0123456789abcdef0123")).await;
    c.execute("UPDATE acct SET balance = 1 WHERE id = 1", &[])
        .await
        .unwrap();
    let row = c.query_one("SELECT current_user", &[]).await.unwrap();
    assert_eq!(row.get::<_, &str>(0), "alice");
    // Who changed each version, in SQL: the audit trail's principal of its commit.
    let history = c
        .query(
            "SELECT balance, _operation, _principal FROM acct FOR SYSTEM_TIME ALL \
             WHERE id = 1 ORDER BY _system_from",
            &[],
        )
        .await
        .unwrap();
    let history: Vec<(Option<f64>, String, Option<String>)> = history
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[0].1, "INSERT");
    assert_eq!(
        history[1],
        (Some(1.0), "UPDATE".to_string(), Some("alice".to_string()))
    );
    // What changed between two times, through the audit trail's keys: alice's update.
    let since: String = c
        .query_one(
            "SELECT CAST(_system_from AS TEXT) FROM acct FOR SYSTEM_TIME ALL WHERE id = 1 \
             AND _operation = 'INSERT'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let diff = c
        .query(
            &format!(
                "SELECT _change, id, balance, _before_balance FROM DIFF(acct, '{since}', now()) \
                 ORDER BY id"
            ),
            &[],
        )
        .await
        .unwrap();
    let diff: Vec<(String, i64, Option<f64>, Option<f64>)> = diff
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(diff, vec![("UPDATE".to_string(), 1, Some(1.0), Some(10.5))]);
    for (user, password) in [
        ("alice", Some("wrong-token-wrong-token")),
        ("mallory", Some("0123456789abcdef0123")),
        ("alice", None),
    ] {
        assert!(
            try_connect(server.pg_port, user, password).await.is_err(),
            "{user} with {password:?} is refused"
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pgbench_runs_tpcb_like_transactions_and_the_books_balance() {
    let accounts: Vec<String> = (1..=1000).map(|i| format!("({i}, 1, 0, NULL)")).collect();
    let tellers: Vec<String> = (1..=10).map(|i| format!("({i}, 1, 0, NULL)")).collect();
    let fill_accounts = format!(
        "INSERT INTO pgbench_accounts VALUES {}",
        accounts.join(", ")
    );
    let fill_tellers = format!("INSERT INTO pgbench_tellers VALUES {}", tellers.join(", "));
    let server = InProcess::start(
        config(),
        &[
            "CREATE TABLE pgbench_branches (bid BIGINT PRIMARY KEY, bbalance BIGINT, filler TEXT)",
            "CREATE TABLE pgbench_tellers (tid BIGINT PRIMARY KEY, bid BIGINT, tbalance BIGINT, filler TEXT)",
            "CREATE TABLE pgbench_accounts (aid BIGINT PRIMARY KEY, bid BIGINT, abalance BIGINT, filler TEXT)",
            "CREATE TABLE pgbench_history (tid BIGINT, bid BIGINT, aid BIGINT, delta BIGINT, mtime TIMESTAMP, filler TEXT)",
            "INSERT INTO pgbench_branches VALUES (1, 0, NULL)",
            &fill_tellers,
            &fill_accounts,
        ],
    )
    .await;
    // pgbench's built-in TPC-B-like transaction, on the tables above.
    let script = "\
\\set aid random(1, 1000)
\\set tid random(1, 10)
\\set delta random(-5000, 5000)
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = 1;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, 1, :aid, :delta, CURRENT_TIMESTAMP);
END;
";
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tpcb.sql");
    std::fs::write(&file, script).unwrap();
    for mode in ["simple", "extended", "prepared"] {
        let port = server.pg_port;
        let file = file.clone();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("pgbench")
                .args([
                    "-n",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                    "-U",
                    "bench",
                ])
                .args([
                    "-c",
                    "4",
                    "-t",
                    "25",
                    "-M",
                    mode,
                    "--max-tries",
                    "100",
                    "-f",
                ])
                .arg(&file)
                .arg("chronodb")
                .output()
                .expect("pgbench is installed (scripts/setup.sh installs PostgreSQL's)")
        })
        .await
        .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "pgbench -M {mode}: {text}");
        assert!(
            text.contains("number of transactions actually processed: 100/100"),
            "{text}"
        );
    }
    // Every committed transaction moved the same delta through all four tables.
    let c = connect(server.pg_port, "ann", None).await;
    let sum = |sql: &'static str| {
        let c = &c;
        async move { c.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
    };
    let history = sum("SELECT count(*) FROM pgbench_history").await;
    assert_eq!(history, 300);
    let deltas = sum("SELECT sum(delta) FROM pgbench_history").await;
    assert_eq!(
        sum("SELECT sum(abalance) FROM pgbench_accounts").await,
        deltas
    );
    assert_eq!(
        sum("SELECT sum(tbalance) FROM pgbench_tellers").await,
        deltas
    );
    assert_eq!(
        sum("SELECT sum(bbalance) FROM pgbench_branches").await,
        deltas
    );
    server.shutdown().await;
}

/// psycopg 3 (installed by `scripts/setup.sh` into `CHRONODB_PYTHON`'s venv) runs
/// `tests/python/psycopg_client.py`: typed and binary values, transactions, a cancel,
/// a server-side cursor, COPY in both directions and formats, time travel.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn psycopg_runs_its_checks() {
    let python = python();
    client_runs_its_checks(&python, &[], "python/psycopg_client.py", &[]).await;
}

/// SQLAlchemy 2 runs `tests/python/sqlalchemy_client.py`: the ORM's tables (a SERIAL key),
/// inserts, updates, a nested transaction rolled back, reflection of tables and columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlalchemy_orm_and_reflection_run_their_checks() {
    let python = python();
    client_runs_its_checks(&python, &[], "python/sqlalchemy_client.py", &[]).await;
}

/// node-postgres (installed by `scripts/node-clients.sh`) runs
/// `tests/node/node_postgres_client.js`: untyped parameters, its type parsers, named
/// statements, a savepoint in a failed transaction, SQLSTATEs, a cancel.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_postgres_runs_its_checks() {
    let modules = std::path::Path::new(
        &std::env::var("NODE_CLIENTS_DIR")
            .expect("NODE_CLIENTS_DIR is set by scripts/env.sh (node-postgres is installed there)"),
    )
    .join("node_modules");
    let modules = modules.to_string_lossy().into_owned();
    client_runs_its_checks(
        "node",
        &[],
        "node/node_postgres_client.js",
        &[("NODE_PATH", modules.as_str())],
    )
    .await;
}

/// pgjdbc (Debian's libpostgresql-jdbc-java) runs `tests/java/JdbcClient.java` as a single
/// source file: server-side prepared statements, a savepoint, DatabaseMetaData.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pgjdbc_runs_its_checks() {
    let jar = "/usr/share/java/postgresql.jar";
    assert!(
        std::path::Path::new(jar).exists(),
        "pgjdbc is installed (scripts/setup.sh installs libpostgresql-jdbc-java)"
    );
    client_runs_its_checks("java", &["-cp", jar], "java/JdbcClient.java", &[]).await;
}

fn python() -> String {
    std::env::var("CHRONODB_PYTHON")
        .expect("CHRONODB_PYTHON is set by scripts/env.sh (a Python with psycopg and SQLAlchemy)")
}

/// Runs `program [args] tests/<script> <port>` against a server of its own: it prints "all
/// checks passed" and exits 0, or the test fails with its output.
async fn client_runs_its_checks(program: &str, args: &[&str], script: &str, env: &[(&str, &str)]) {
    let server = InProcess::start(config(), &[]).await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let mut command = std::process::Command::new(program);
    command.args(args).arg(path).arg(server.pg_port.to_string());
    for (k, v) in env {
        command.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("all checks passed"),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    server.shutdown().await;
}
