//! Progress of long work on a terminal: how long it has run (and how far it is, when that is
//! known: audit verification counts transactions), shown on standard error after its first
//! second (statements in the shell, audit verification, the health report).

use std::time::{Duration, Instant};

/// Shows on standard error how long the work has run, from its first second until it is
/// dropped (then the line is cleared).
pub struct Ticker {
    done: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    /// A ticker that says a statement is running.
    pub fn start() -> Ticker {
        Ticker::named("running")
    }

    /// A ticker that says `what` is running (`verifying the audit trail`).
    pub fn named(what: &'static str) -> Ticker {
        Ticker::counting(what, || None)
    }

    /// A ticker that says `what` is running and how far it is: `counted()` gives (done,
    /// total, unit) when it is known.
    pub fn counting(
        what: &'static str,
        counted: impl Fn() -> Option<(u64, u64, &'static str)> + Send + 'static,
    ) -> Ticker {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            let began = Instant::now();
            if wait.recv_timeout(Duration::from_secs(1)).is_ok() {
                return;
            }
            loop {
                let secs = began.elapsed().as_secs_f64();
                match counted() {
                    Some((n, total, unit)) if total > 0 => eprint!(
                        "\r\x1b[K{what}: {:.0}% ({n} of {total} {unit}) in {secs:.0} s — \
                         Ctrl-C stops it",
                        100.0 * n.min(total) as f64 / total as f64
                    ),
                    Some((n, _, unit)) => {
                        eprint!("\r\x1b[K{what}: {n} {unit} in {secs:.0} s — Ctrl-C stops it")
                    }
                    _ => eprint!("\r\x1b[K{what} for {secs:.0} s — Ctrl-C stops it"),
                }
                match wait.recv_timeout(Duration::from_millis(500)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    _ => break,
                }
            }
            eprint!("\r\x1b[K");
        });
        Ticker {
            done: Some(done),
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs `work` with a [`Ticker`] saying `what` when standard error is a terminal.
pub fn showing<T>(what: &'static str, work: impl FnOnce() -> T) -> T {
    showing_count(what, || None, work)
}

/// [`showing`], with how far the work is (see [`Ticker::counting`]).
pub fn showing_count<T>(
    what: &'static str,
    counted: impl Fn() -> Option<(u64, u64, &'static str)> + Send + 'static,
    work: impl FnOnce() -> T,
) -> T {
    use std::io::IsTerminal;
    let _ticker = std::io::stderr()
        .is_terminal()
        .then(|| Ticker::counting(what, counted));
    work()
}
