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

    server.shutdown().await;
}
