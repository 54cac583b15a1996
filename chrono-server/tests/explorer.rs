//! The time-travel explorer page in a real browser: headless Chromium (Debian's `chromium`,
//! installed by `scripts/setup.sh`) opens it at a past time and shows the older value,
//! marked as differing from now.

mod support;

use support::written_at;

use chrono_server::config::ServerConfig;

fn chromium() -> String {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if std::process::Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return name.to_string();
        }
    }
    panic!("no chromium: scripts/setup.sh installs Debian's chromium");
}

/// The page at `url` as headless Chromium leaves it once its scripts have run (up to
/// `budget_ms` of virtual time).
async fn rendered_dom(url: String, budget_ms: u32) -> String {
    let browser = chromium();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--window-size=1280,720",
                "--dump-dom",
            ])
            .arg(format!("--virtual-time-budget={budget_ms}"))
            .arg(&url)
            .output()
            .expect("chromium runs")
    })
    .await
    .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_a_table_as_it_was_in_a_real_browser() {
    let server = support::InProcess::start(
        ServerConfig::default(),
        &["CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT, email TEXT)"],
    )
    .await;
    let t0 = written_at(
        &server
            .db
            .execute("INSERT INTO users VALUES (1, 'Alice', 'alice@example.com'), (2, 'Bob', 'bob@example.com')")
            .unwrap(),
    );
    server
        .db
        .execute("UPDATE users SET email = 'alice@new.example' WHERE id = 1")
        .unwrap();
    let addr = server.http.clone();

    let at = chrono_storage::Timestamp::from_micros(t0).to_string();
    let url = format!("http://{addr}/?table=users&at={}", at.replace(' ', "%20"));
    let shots = tempfile::tempdir().unwrap();
    let shot = shots.path().join("explorer.png");
    let browser = chromium();
    let (dom, screenshot) = tokio::task::spawn_blocking(move || {
        let run = |extra: &[String]| {
            std::process::Command::new(&browser)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--virtual-time-budget=10000",
                    "--window-size=1280,720",
                ])
                .args(extra)
                .arg(&url)
                .output()
                .expect("chromium runs")
        };
        let dom = run(&["--dump-dom".to_string()]);
        let screenshot = run(&[format!("--screenshot={}", shot.display())]);
        (dom, (screenshot, shot))
    })
    .await
    .unwrap();
    let html = String::from_utf8_lossy(&dom.stdout);
    assert!(
        html.contains("data-ready=\"true\""),
        "the page finished loading:\n{html}"
    );
    // As of the insert: Alice's old address, marked as differing from now, with the current
    // one beside it; Bob unchanged.
    let alice = html
        .split("<tr")
        .find(|r| r.contains("Alice"))
        .unwrap_or_else(|| panic!("Alice's row:\n{html}"));
    assert!(alice.contains("class=\"changed\""), "{alice}");
    assert!(alice.contains("alice@example.com"), "{alice}");
    assert!(alice.contains("now alice@new.example"), "{alice}");
    let bob = html.split("<tr").find(|r| r.contains("Bob")).unwrap();
    assert!(bob.contains("class=\"\""), "{bob}");
    let (_, shot) = screenshot;
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");

    // ?at= in the form the shell prints (Unix seconds), at the newest version's start,
    // with a delete after it: the page shows that time, not now, and Bob as gone since.
    let t1 = written_at(
        &server
            .db
            .execute("UPDATE users SET name = 'Alicia' WHERE id = 1")
            .unwrap(),
    );
    server.db.execute("DELETE FROM users WHERE id = 2").unwrap();
    let seconds = chrono_storage::Timestamp::from_micros(t1).seconds();
    let html = rendered_dom(format!("http://{addr}/?table=users&at={seconds}"), 10_000).await;
    assert!(html.contains("data-ready=\"true\""), "{html}");
    assert!(
        !html.contains(">now<"),
        "the page shows the time asked for:\n{html}"
    );
    let bob = html
        .split("<tr")
        .find(|r| r.contains("Bob"))
        .unwrap_or_else(|| panic!("Bob, deleted after that time, is shown:\n{html}"));
    assert!(bob.contains("class=\"gone\""), "{bob}");
    assert!(html.contains("Alicia"), "{html}");

    // What changed since the first commit, as the page's "compare" asks the server.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(
            format!(
                "GET /api/diff?table=users&from={t0} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let body: serde_json::Value =
        serde_json::from_str(response.split_once("\r\n\r\n").unwrap().1).unwrap();
    let rows = body["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{body}");
    let alice = rows.iter().find(|r| r["before"]["id"] == 1).unwrap();
    assert_eq!(alice["change"], "changed");
    assert_eq!(alice["before"]["email"], "alice@example.com");
    assert_eq!(alice["after"]["name"], "Alicia");
    let bob = rows.iter().find(|r| r["before"]["id"] == 2).unwrap();
    assert_eq!(bob["change"], "deleted");
    assert!(bob["after"].is_null());

    server.shutdown().await;
}

/// Moves the slider in a real browser (driven over the DevTools protocol): the page opened
/// at "now" shows the current value; slid to the first change, it shows the older one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_the_slider_in_a_real_browser_shows_the_older_value() {
    use futures_util::{SinkExt, StreamExt};
    use std::io::{BufRead, BufReader};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::Message;

    let server = support::InProcess::start(
        ServerConfig::default(),
        &[
            "CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT, email TEXT)",
            "INSERT INTO users VALUES (1, 'Alice', 'alice@example.com')",
            "UPDATE users SET email = 'alice@new.example' WHERE id = 1",
        ],
    )
    .await;
    let profile = tempfile::tempdir().unwrap();
    let mut browser = std::process::Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("http://{}/?table=users", server.http))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("chromium runs");
    let stderr = browser.stderr.take().unwrap();
    let port = tokio::task::spawn_blocking(move || {
        let mut lines = BufReader::new(stderr).lines();
        let port = loop {
            let line = lines
                .next()
                .expect("chromium says where DevTools listen")
                .unwrap();
            if let Some(rest) = line.strip_prefix("DevTools listening on ws://127.0.0.1:") {
                break rest.split('/').next().unwrap().to_string();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        port
    })
    .await
    .unwrap();
    // The page's DevTools socket, from the target list.
    let mut tries = 0;
    let page_ws = loop {
        tries += 1;
        assert!(tries < 200, "chromium lists no page");
        let mut s = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
            .await
            .unwrap();
        // The Host header names the port, so the socket URLs it returns do too; DevTools
        // keeps the connection open, so the body is read by its length.
        let ask = format!("GET /json/list HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
        s.write_all(ask.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        let body = loop {
            let n = s.read(&mut buf).await.unwrap();
            raw.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&raw).to_string();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if body.len() >= length || n == 0 {
                    break body.to_string();
                }
            }
            if n == 0 {
                break String::new();
            }
        };
        let body = body.as_str();
        let targets: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        if let Some(url) = targets.as_array().and_then(|t| {
            t.iter()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["webSocketDebuggerUrl"].as_str())
        }) {
            break url.to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let (mut page, _) = tokio_tungstenite::connect_async(page_ws).await.unwrap();
    let mut id = 0;
    let mut eval = async |expression: &str| -> serde_json::Value {
        id += 1;
        let call = serde_json::json!({"id": id, "method": "Runtime.evaluate",
            "params": {"expression": expression, "returnByValue": true}});
        page.send(Message::Text(call.to_string().into()))
            .await
            .unwrap();
        loop {
            let next = tokio::time::timeout(std::time::Duration::from_secs(20), page.next());
            let Some(Ok(Message::Text(t))) = next.await.expect("DevTools answers within 20 s")
            else {
                panic!("DevTools closed");
            };
            let reply: serde_json::Value = serde_json::from_str(&t).unwrap();
            if reply["id"] == id {
                return reply["result"]["result"]["value"].clone();
            }
        }
    };
    let view = "document.getElementById('view').innerText";
    let mut waited = 0;
    while eval("document.body.dataset.ready || ''").await != "true" {
        waited += 1;
        assert!(waited < 200, "the page never finished loading");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let now = eval(view).await.as_str().unwrap_or_default().to_string();
    assert!(
        now.contains("alice@new.example") && !now.contains("alice@example.com"),
        "{now}"
    );
    eval(
        "const s = document.getElementById('slider'); s.value = '0'; \
         s.dispatchEvent(new Event('input')); 'moved'",
    )
    .await;
    let mut then = String::new();
    for _ in 0..200 {
        then = eval(view).await.as_str().unwrap_or_default().to_string();
        if then.contains("alice@example.com") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        then.contains("alice@example.com"),
        "the older value after the move: {then}"
    );
    assert!(then.contains("now alice@new.example"), "{then}");
    let _ = browser.kill();
    let _ = browser.wait();
    server.shutdown().await;
}

/// The GraphQL console at GET /graphql: GraphiQL, compiled into the binary, renders in a real
/// browser; the introspection query it sends passes the server's default limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_graphql_console_renders_in_a_real_browser() {
    let server = support::InProcess::start(
        ServerConfig::default(),
        &["CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT)"],
    )
    .await;
    let addr = server.http.clone();
    // The introspection query GraphiQL sends (graphql-js's getIntrospectionQuery).
    let introspection = include_str!("introspection.json");
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(
            format!(
                "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{introspection}",
                introspection.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(
        response.contains("\"__schema\""),
        "{}",
        &response[..response.len().min(500)]
    );
    assert!(
        !response.contains("\"errors\""),
        "{}",
        &response[..response.len().min(500)]
    );

    let html = rendered_dom(format!("http://{addr}/graphql"), 15_000).await;
    assert!(
        html.contains("graphiql-container"),
        "GraphiQL rendered:\n{}",
        &html[..html.len().min(2000)]
    );
    server.shutdown().await;
}

/// A table of a million rows in a real browser: the page reads one page of rows (and one
/// change time per commit from the audit trail), so it opens, and opens at a past time,
/// in about the time a small table takes. The times are printed, not asserted (speed is
/// for benches).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_rows_open_a_page_at_a_time_in_a_real_browser() {
    let server = support::InProcess::start(
        ServerConfig::default(),
        &["CREATE TABLE big (id BIGINT PRIMARY KEY, k BIGINT, note TEXT)"],
    )
    .await;
    let loading = std::time::Instant::now();
    let mut middle = 0;
    for batch in 0..1000u64 {
        let rows: Vec<String> = (batch * 1000..(batch + 1) * 1000)
            .map(|i| format!("({i}, {}, 'row {i}')", i % 97))
            .collect();
        let t = written_at(
            &server
                .db
                .execute(&format!("INSERT INTO big VALUES {}", rows.join(", ")))
                .unwrap(),
        );
        if batch == 500 {
            middle = t;
        }
    }
    server
        .db
        .execute("UPDATE big SET note = 'changed' WHERE id = 7")
        .unwrap();
    eprintln!(
        "loaded 1,000,000 rows in {:.1} s",
        loading.elapsed().as_secs_f64()
    );
    let addr = server.http.clone();

    for (what, url) in [
        ("now", format!("http://{addr}/?table=big")),
        (
            "a past time",
            format!(
                "http://{addr}/?table=big&at={}",
                chrono_storage::Timestamp::from_micros(middle).seconds()
            ),
        ),
    ] {
        let started = std::time::Instant::now();
        let html = rendered_dom(url, 30_000).await;
        let took = started.elapsed();
        eprintln!(
            "the page at {what} rendered in {:.2} s (browser start included)",
            took.as_secs_f64()
        );
        assert!(
            html.contains("data-ready=\"true\""),
            "{}",
            &html[..html.len().min(3000)]
        );
        assert!(
            html.contains("rows 1–100"),
            "one page of rows: {}",
            &html[..html.len().min(3000)]
        );
        if what == "now" {
            assert!(html.contains("changed"), "the current row 7");
        } else {
            // Row 7 as of the middle: its old note, marked as differing from now.
            let seven = html
                .split("<tr")
                .find(|r| r.contains(">row 7<"))
                .unwrap_or_else(|| panic!("row 7 as it was"));
            assert!(seven.contains("class=\"changed\""), "{seven}");
        }
    }
    server.shutdown().await;
}
