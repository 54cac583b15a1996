//! Runs every `tests/slt/**/*.slt` file (sqllogictest format) against a fresh database on
//! each engine: RocksDB in a temporary directory, then etcd (a 3-member cluster on loopback
//! that the harness starts, one key prefix per file). One harness, two engines: the SQL
//! layer must not be able to tell them apart.
//!
//! Time-travel tests cannot know commit timestamps in advance, so the harness numbers the
//! statements that commit and substitutes, in each SQL text, `@commitN` with the Nth commit's
//! timestamp and `@beforeN` with one microsecond before it (as Unix seconds with six
//! decimals, the form `AS OF TIMESTAMP` reads exactly).

use std::path::Path;
use std::sync::Arc;

use chrono_sql::{Database, Outcome, Session};
use chrono_storage::value::format_float;
use chrono_storage::{RocksEngine, RocksOptions, Store, Value};
use sqllogictest::{DBOutput, DefaultColumnType};

struct Slt {
    session: Session,
    commits: Vec<u64>,
    _dir: tempfile::TempDir,
}

fn seconds(ts: u64) -> String {
    chrono_storage::Timestamp::from_micros(ts).seconds()
}

/// The engine a file runs on.
#[derive(Clone)]
enum On {
    Rocks,
    /// A cluster's endpoints and the key prefix for this file.
    Etcd(Vec<String>, String),
}

impl Slt {
    fn new(on: &On) -> Slt {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine: Arc<dyn chrono_storage::Engine> = match on {
            On::Rocks => {
                Arc::new(RocksEngine::open(dir.path(), &RocksOptions::default()).expect("open"))
            }
            On::Etcd(endpoints, prefix) => Arc::new(
                chrono_etcd::EtcdEngine::open(chrono_etcd::EtcdOptions {
                    endpoints: endpoints.clone(),
                    prefix: prefix.clone(),
                    ..Default::default()
                })
                .expect("open on etcd"),
            ),
        };
        let store = Store::open(engine).expect("store");
        Slt {
            session: Database::new(store).session(),
            commits: Vec::new(),
            _dir: dir,
        }
    }

    fn substitute(&self, sql: &str) -> String {
        let mut out = sql.to_string();
        // Longest numbers first so @commit12 is not read as @commit1 followed by 2.
        for (i, ts) in self.commits.iter().enumerate().rev() {
            let n = i + 1;
            out = out.replace(&format!("@commit{n}"), &seconds(*ts));
            out = out.replace(&format!("@before{n}"), &seconds(ts - 1));
        }
        out
    }
}

fn render(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Text(s) if s.is_empty() => "(empty)".into(),
        Value::Float(f) => format_float(*f),
        other => other.to_string(),
    }
}

impl sqllogictest::DB for Slt {
    type Error = chrono_sql::Error;
    type ColumnType = DefaultColumnType;

    fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, chrono_sql::Error> {
        let sql = self.substitute(sql);
        let mut last = DBOutput::StatementComplete(0);
        for outcome in self.session.execute(&sql)? {
            last = match outcome {
                Outcome::Rows { columns, rows, .. } => DBOutput::Rows {
                    types: vec![DefaultColumnType::Any; columns.len()],
                    rows: rows
                        .iter()
                        .map(|r| r.iter().map(render).collect())
                        .collect(),
                },
                Outcome::Affected {
                    affected,
                    commit_ts,
                } => {
                    self.commits.extend(commit_ts);
                    DBOutput::StatementComplete(affected)
                }
                Outcome::Done { commit_ts, .. } => {
                    self.commits.extend(commit_ts);
                    DBOutput::StatementComplete(0)
                }
            };
        }
        Ok(last)
    }

    fn engine_name(&self) -> &str {
        "chronodb"
    }
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    // One file per behaviour, in folders by area (queries/, writes/, …).
    let mut files = Vec::new();
    let mut folders = vec![dir.clone()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)
            .expect("tests/slt exists")
            .flatten()
        {
            let p = entry.path();
            if p.is_dir() {
                folders.push(p);
            } else if p.extension().is_some_and(|x| x == "slt") {
                files.push(p);
            }
        }
    }
    files.sort();
    let filter = std::env::args().nth(1).filter(|a| !a.starts_with('-'));
    let (mut passed, mut failed) = (0, 0);
    let cluster = chrono_etcd::cluster::LocalCluster::start(3).expect("an etcd cluster");
    for engine in ["rocksdb", "etcd"] {
        for (i, file) in files.iter().enumerate() {
            let name = file
                .strip_prefix(&dir)
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
                continue;
            }
            let on = match engine {
                "rocksdb" => On::Rocks,
                _ => On::Etcd(cluster.endpoints(), format!("slt{i}/")),
            };
            let mut runner = sqllogictest::Runner::new(move || {
                let on = on.clone();
                async move { Ok(Slt::new(&on)) }
            });
            match runner.run_file(file) {
                Ok(()) => {
                    println!("test slt[{engine}]::{name} ... ok");
                    passed += 1;
                }
                Err(e) => {
                    println!("test slt[{engine}]::{name} ... FAILED\n{}", e.display(true));
                    failed += 1;
                }
            }
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out",
        if failed == 0 { "ok" } else { "FAILED" }
    );
    if failed > 0 || passed == 0 {
        // `exit` runs no destructors: stop the etcd members first.
        drop(cluster);
        std::process::exit(1);
    }
}
