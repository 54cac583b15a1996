//! Runs every `tests/slt/**/*.slt` file (sqllogictest format) against a fresh database on
//! RocksDB in a temporary directory.
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

impl Slt {
    fn new() -> Slt {
        let dir = tempfile::tempdir().expect("temp dir");
        let engine = RocksEngine::open(dir.path(), &RocksOptions::default()).expect("open");
        let store = Store::open(Arc::new(engine)).expect("store");
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
                Outcome::Rows { columns, rows } => DBOutput::Rows {
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
    for file in files {
        let name = file
            .strip_prefix(&dir)
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let mut runner = sqllogictest::Runner::new(|| async { Ok(Slt::new()) });
        match runner.run_file(&file) {
            Ok(()) => {
                println!("test slt::{name} ... ok");
                passed += 1;
            }
            Err(e) => {
                println!("test slt::{name} ... FAILED\n{}", e.display(true));
                failed += 1;
            }
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {failed} failed; 0 ignored; 0 measured; 0 filtered out",
        if failed == 0 { "ok" } else { "FAILED" }
    );
    if failed > 0 || passed == 0 {
        std::process::exit(1);
    }
}
