//! The interactive shell in a real terminal (a pseudo-terminal, as a person's): Ctrl-C
//! cancels the running statement and keeps the shell; lines typed while a statement runs
//! all run after it, none lost.

mod support;

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The shell on a pseudo-terminal: what it printed so far, and the terminal's input.
struct Terminal {
    child: std::process::Child,
    input: std::fs::File,
    screen: Arc<Mutex<String>>,
}

impl Terminal {
    fn open(db: &str) -> Terminal {
        let (mut master, mut slave) = (0, 0);
        let size = libc::winsize {
            ws_row: 40,
            ws_col: 200,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes the two descriptors it is given.
        let ok = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        assert_eq!(ok, 0, "openpty");
        // SAFETY: openpty returned these descriptors, owned from here on.
        let slave = unsafe { OwnedFd::from_raw_fd(slave) };
        let mut command = Command::new(env!("CARGO_BIN_EXE_chronodb"));
        command
            .args(["sql", "--db", db])
            .env("HOME", std::env::temp_dir())
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec: a new session whose
        // controlling terminal is the pseudo-terminal, so Ctrl-C there signals the shell.
        unsafe {
            command.pre_exec(|| {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
                Ok(())
            });
        }
        let child = command.spawn().expect("the shell starts");
        // SAFETY: the master side is ours alone.
        let input = unsafe { std::fs::File::from_raw_fd(master) };
        let mut output = input.try_clone().unwrap();
        let screen = Arc::new(Mutex::new(String::new()));
        let seen = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = output.read(&mut buf) {
                if n == 0 {
                    break;
                }
                seen.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Terminal {
            child,
            input,
            screen,
        }
    }

    fn type_text(&mut self, text: &str) {
        self.input.write_all(text.as_bytes()).unwrap();
        self.input.flush().unwrap();
    }

    /// Waits until the screen shows `text` `times` times (generous: a loaded machine).
    fn wait_for(&self, text: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let screen = self.screen.lock().unwrap().clone();
            if screen.matches(text).count() >= times {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {text:?} ×{times}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn ctrl_c_cancels_the_statement_and_typed_ahead_lines_all_run() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    let rows: Vec<String> = (0..3000).map(|i| format!("({i}, {i})")).collect();
    let (ok, _, err) = support::chronodb(
        &["sql", "--db", db],
        Some(&format!(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, v BIGINT);\nINSERT INTO t VALUES {};\n",
            rows.join(", ")
        )),
    );
    assert!(ok, "{err}");

    let mut term = Terminal::open(db);
    term.wait_for("chronodb> ", 1);

    // A statement that would run for hours; Ctrl-C stops it and the shell stays.
    term.type_text("SELECT count(*) FROM t a, t b, t c WHERE a.v * b.v * c.v = 7;\r");
    term.wait_for("c.v = 7;", 1);
    std::thread::sleep(Duration::from_millis(500));
    term.type_text("\x03");
    term.wait_for("cancelled", 1);
    term.wait_for("chronodb> ", 2);
    term.type_text("SELECT 40 + 2 AS answer;\r");
    term.wait_for("42", 1);

    // Lines typed while a statement runs: every one runs after it.
    term.type_text("SELECT count(*) FROM t a, t b WHERE a.v * b.v = 7;\r");
    term.wait_for("b.v = 7;", 1);
    term.type_text("UPDATE t SET v = 99 WHERE id = 1;\rUPDATE t SET v = 98 WHERE id = 2;\r");
    term.wait_for("1 row affected", 2);
    term.type_text(".quit\r");
    let deadline = Instant::now() + Duration::from_secs(60);
    while term.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the shell leaves on .quit");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(term);

    let (ok, out, err) = support::chronodb(
        &[
            "sql",
            "--db",
            db,
            "--format",
            "csv",
            "-e",
            "SELECT id, v FROM t WHERE id IN (1, 2) ORDER BY id",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out, "id,v\n1,99\n2,98\n");
}
