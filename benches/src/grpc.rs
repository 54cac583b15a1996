//! The gRPC load's set-up, shared by the `grpc` criterion bench and the `grpc_load` binary:
//! a server in-process on a free loopback port over a database with a `kv` table, and the
//! requests they send.

use std::sync::Arc;

use chrono_proto::v1 as pb;
use chrono_server::ChronoDb;
use chrono_server::config::ServerConfig;

/// Rows in the `kv` table the point queries read.
pub const KV_ROWS: u64 = 10_000;

/// A server running on loopback until [`KvServer::stop`].
pub struct KvServer {
    /// `http://127.0.0.1:PORT`.
    pub addr: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl KvServer {
    /// Opens a database in a temporary directory with `kv (id, v)` holding [`KV_ROWS`]
    /// rows, runs `extra` statements, and serves it on a free port. Call inside a Tokio
    /// runtime.
    pub async fn start(extra: &[&str]) -> KvServer {
        let dir = tempfile::tempdir().expect("temporary directory");
        let db = Arc::new(ChronoDb::open(dir.path()).expect("open"));
        db.execute("CREATE TABLE kv (id BIGINT PRIMARY KEY, v TEXT)")
            .expect("create");
        let rows: Vec<String> = (0..KV_ROWS)
            .map(|i| format!("({i}, 'value {i}')"))
            .collect();
        for chunk in rows.chunks(1000) {
            db.execute(&format!("INSERT INTO kv VALUES {}", chunk.join(",")))
                .expect("insert");
        }
        for sql in extra {
            db.execute(sql).expect("set-up statement");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = format!("http://{}", listener.local_addr().expect("address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = chrono_server::grpc::serve(db, &ServerConfig::default(), listener, async {
                let _ = stopped.await;
            })
            .await;
        });
        KvServer {
            addr,
            stop,
            server,
            _dir: dir,
        }
    }

    /// Stops the server and waits for it.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

/// An `Execute` request outside any transaction.
pub fn execute(sql: &str, params: Vec<pb::Value>) -> pb::ExecuteRequest {
    pb::ExecuteRequest {
        sql: sql.into(),
        params,
        transaction_id: String::new(),
    }
}

/// The point query of `kv` row `id`.
pub fn point_query(id: u64) -> pb::ExecuteRequest {
    execute(
        "SELECT v FROM kv WHERE id = ?",
        vec![pb::Value {
            kind: Some(pb::value::Kind::Int64(id as i64)),
        }],
    )
}
