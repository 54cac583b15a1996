//! Shared by the tests that run the real `chronodb serve` process.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// Starts `chronodb serve` with `args` and `--listen 127.0.0.1:0`; returns the process and
/// the address it prints once it listens. Its log is drained from then on, so the server
/// never blocks on a full pipe.
pub fn serve<I, S>(args: I) -> (Child, String)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = Command::new(env!("CARGO_BIN_EXE_chronodb"))
        .arg("serve")
        .args(args)
        .args(["--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("server starts");
    let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
    let addr = loop {
        let line = lines.next().expect("server prints its address").unwrap();
        if let Some(a) = line.strip_prefix("chronodb serving gRPC on ") {
            break a.to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, addr)
}
