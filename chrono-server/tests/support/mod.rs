//! Shared by the tests that run the real `chronodb serve` process.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

#[allow(dead_code)]
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

/// A server in this process: gRPC, the WebSocket monitor and HTTP (GraphQL, the explorer)
/// on free loopback ports, over a fresh database made with `setup`'s statements.
#[allow(dead_code)]
pub struct InProcess {
    /// `http://…` of gRPC.
    pub grpc: String,
    /// `host:port` of the WebSocket monitor.
    pub ws: String,
    /// `host:port` of HTTP.
    pub http: String,
    /// The port of PostgreSQL's protocol (on 127.0.0.1).
    pub pg_port: u16,
    /// The database it serves.
    pub db: std::sync::Arc<chrono_server::ChronoDb>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

#[allow(dead_code)]
impl InProcess {
    /// Starts one.
    pub async fn start(config: chrono_server::config::ServerConfig, setup: &[&str]) -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let db = std::sync::Arc::new(chrono_server::ChronoDb::open(dir.path()).unwrap());
        for sql in setup {
            db.execute(sql).unwrap();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bind = |key| chrono_server::grpc::bind_key(key, "127.0.0.1:0");
        let (ws, http, pg) = (
            bind("server.websocket").await.unwrap(),
            bind("server.http").await.unwrap(),
            bind("server.postgres").await.unwrap(),
        );
        let pg_port = pg.local_addr().unwrap().port();
        let grpc = format!("http://{}", listener.local_addr().unwrap());
        let (ws_addr, http_addr) = (
            ws.local_addr().unwrap().to_string(),
            http.local_addr().unwrap().to_string(),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = db.clone();
        let task = tokio::spawn(async move {
            let beside = chrono_server::grpc::Beside {
                websocket: Some(ws),
                http: Some(http),
                postgres: Some(pg),
            };
            chrono_server::grpc::serve_with(served, &config, listener, beside, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        InProcess {
            grpc,
            ws: ws_addr,
            http: http_addr,
            pg_port,
            db,
            stop: Some(stop),
            task,
            _dir: dir,
        }
    }

    /// Stops it and waits until it has.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.await.unwrap();
    }
}

/// Runs a script of `tests/python/` with the Python of `scripts/setup.sh`
/// (`CHRONODB_PYTHON`), on a blocking thread.
#[allow(dead_code)]
pub async fn python(script: &str, args: Vec<String>) -> std::process::Output {
    let python = std::env::var("CHRONODB_PYTHON")
        .expect("CHRONODB_PYTHON is set by scripts/env.sh (scripts/setup.sh makes it)");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(script);
    tokio::task::spawn_blocking(move || {
        let out = Command::new(python)
            .arg(script)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    })
    .await
    .unwrap()
}

/// The commit timestamp of a write's outcome.
#[allow(dead_code)]
pub fn written_at(outcomes: &[chrono_server::Outcome]) -> u64 {
    match outcomes.last() {
        Some(chrono_server::Outcome::Affected {
            commit_ts: Some(t), ..
        }) => *t,
        other => panic!("expected a write, got {other:?}"),
    }
}

/// Starts `chronodb serve` with `args`, runs every documented call from the generated
/// Python client against it, stops it with SIGTERM, and checks that the client passed and
/// the server stopped cleanly.
#[allow(dead_code)]
pub fn python_client_against_serve<I, S>(args: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let (mut server, addr) = serve(args);
    let out = run_python_client(&addr);
    // SIGTERM: graceful shutdown.
    let _ = Command::new("kill").arg(server.id().to_string()).status();
    let stopped = server.wait().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("python client OK"));
    assert!(
        stopped.success(),
        "the server stops cleanly on SIGTERM: {stopped:?}"
    );
}

/// Generates the Python client from `proto/` (grpcio-tools) and runs every documented call
/// (`tests/python/every_call.py`) against the gRPC server at `addr`; returns its output.
fn run_python_client(addr: &str) -> std::process::Output {
    let python = std::env::var("CHRONODB_PYTHON")
        .expect("CHRONODB_PYTHON is set by scripts/env.sh (a Python with grpcio-tools, installed by scripts/setup.sh)");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let generated = tempfile::tempdir().unwrap();
    let status = Command::new(&python)
        .args(["-m", "grpc_tools.protoc", "-I"])
        .arg(root.join("proto"))
        .arg(format!("--python_out={}", generated.path().display()))
        .arg(format!("--grpc_python_out={}", generated.path().display()))
        .args([
            "chronodb/v1/values.proto",
            "chronodb/v1/sql.proto",
            "chronodb/v1/timetravel.proto",
            "chronodb/v1/changes.proto",
            "chronodb/v1/audit.proto",
            "chronodb/v1/optimizer.proto",
            "chronodb/v1/monitor.proto",
        ])
        .status()
        .expect("grpc_tools runs");
    assert!(status.success());
    Command::new(&python)
        .arg(root.join("chrono-server/tests/python/every_call.py"))
        .arg(generated.path())
        .arg(addr)
        .output()
        .expect("python runs")
}

/// Runs the `chronodb` binary with `args` (and `stdin`, if given): whether it succeeded,
/// its standard output and its standard error.
#[allow(dead_code)]
pub fn chronodb(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_chronodb"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chronodb runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("chronodb finishes");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A field of `/proc/<pid>/status` in kB (`VmRSS:`, `VmHWM:`).
#[allow(dead_code)]
pub fn proc_status_kb(pid: u32, field: &str) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server is alive");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("field present")
}
