//! `chronodb sql`: an interactive shell (line editing, history, multi-line statements, dot
//! commands), one-shot `-e`, and scripts read from standard input statement by statement,
//! so a script of any size runs in constant memory.

use std::io::{BufRead, Write};
use std::time::Instant;

use chrono_sql::Session;

use crate::ChronoDb;
use crate::error::{Error, Result};
use crate::output::{Format, write_outcome, write_table};

/// Splits SQL text into complete statements (ending in `;` outside quotes and comments)
/// and the unfinished rest.
#[derive(Debug, Default)]
pub struct StatementSplitter {
    buf: String,
}

impl StatementSplitter {
    /// Adds text; returns the statements it completed.
    pub fn push(&mut self, text: &str) -> Vec<String> {
        self.buf.push_str(text);
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = self.buf.as_bytes();
        let mut i = 0;
        let (mut single, mut double, mut line_comment, mut block_comment) =
            (false, false, false, false);
        while i < bytes.len() {
            let c = bytes[i];
            let next = bytes.get(i + 1).copied();
            if line_comment {
                if c == b'\n' {
                    line_comment = false;
                }
            } else if block_comment {
                if c == b'*' && next == Some(b'/') {
                    block_comment = false;
                    i += 1;
                }
            } else if single {
                if c == b'\'' {
                    single = false;
                }
            } else if double {
                if c == b'"' {
                    double = false;
                }
            } else {
                match c {
                    b'\'' => single = true,
                    b'"' => double = true,
                    b'-' if next == Some(b'-') => line_comment = true,
                    b'/' if next == Some(b'*') => block_comment = true,
                    b';' => {
                        let stmt = self.buf[start..=i].trim();
                        if stmt.len() > 1 {
                            out.push(stmt.to_string());
                        }
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            i += 1;
        }
        self.buf.drain(..start);
        out
    }

    /// The unfinished text, if it holds more than whitespace and comments.
    pub fn rest(&self) -> Option<String> {
        let t = self.buf.trim();
        let only_comments = t
            .lines()
            .all(|l| l.trim().is_empty() || l.trim().starts_with("--"));
        (!only_comments).then(|| t.to_string())
    }

    /// True when a statement has started but not ended.
    pub fn pending(&self) -> bool {
        self.rest().is_some()
    }
}

/// Runs statements and prints their outcomes.
pub struct Runner<'a> {
    session: Session,
    db: &'a ChronoDb,
    format: Format,
    timing: bool,
}

impl<'a> Runner<'a> {
    /// A runner with its own session.
    pub fn new(db: &'a ChronoDb, format: Format) -> Self {
        Self {
            session: db.session(),
            db,
            format,
            timing: false,
        }
    }

    /// Runs the statements of `sql` in order, printing each outcome; stops at the first error.
    pub fn run_sql(&mut self, sql: &str, out: &mut dyn Write) -> Result<()> {
        let start = Instant::now();
        for p in chrono_sql::parse_with(sql, &self.db.database().limits())? {
            // CSV and JSON print rows as they arrive; a table needs every row for its widths.
            let outcome = match self.format {
                Format::Table => self.session.run(&p, &[])?,
                Format::Csv | Format::Json => {
                    let mut sink = crate::output::StreamingWriter::new(out, self.format);
                    let outcome = self.session.run_streaming(&p, &[], &mut sink)?;
                    if sink.finish()? {
                        continue;
                    }
                    outcome
                }
            };
            write_outcome(out, self.format, &outcome).map_err(|e| Error::Io(e.to_string()))?;
        }
        if self.timing {
            writeln!(
                out,
                "Run time: {:.3} ms",
                start.elapsed().as_secs_f64() * 1e3
            )
            .map_err(|e| Error::Io(e.to_string()))?;
        }
        Ok(())
    }

    /// Reads statements from `input` as they complete and runs them; stops at the first error.
    pub fn run_stream(&mut self, input: &mut dyn BufRead, out: &mut dyn Write) -> Result<()> {
        let mut splitter = StatementSplitter::default();
        let mut line = String::new();
        loop {
            line.clear();
            let n = input
                .read_line(&mut line)
                .map_err(|e| Error::Io(e.to_string()))?;
            if n == 0 {
                break;
            }
            // Dot commands work in scripts too, between statements.
            if !splitter.pending() && line.trim_start().starts_with('.') {
                if !self.dot_command(line.trim(), out)? {
                    break;
                }
                continue;
            }
            for stmt in splitter.push(&line) {
                self.run_sql(&stmt, out)?;
            }
        }
        if let Some(rest) = splitter.rest() {
            self.run_sql(&rest, out)?;
        }
        Ok(())
    }

    /// Handles a dot command; returns false for `.quit`.
    pub fn dot_command(&mut self, line: &str, out: &mut dyn Write) -> Result<bool> {
        let mut parts = line.split_whitespace();
        let cmd = parts.next().unwrap_or("");
        let io = |e: std::io::Error| Error::Io(e.to_string());
        match cmd {
            ".quit" | ".exit" => return Ok(false),
            ".help" => {
                writeln!(
                    out,
                    ".tables            list the tables\n\
                     .schema [TABLE]    show CREATE TABLE statements\n\
                     .timing            toggle statement timing\n\
                     .format FORMAT     table, csv or json\n\
                     .ml metrics        the learned estimator's q-errors and counters\n\
                     .ml report [DIR]   its trainings, and a plot written to DIR\n\
                     .health [json]     the health report: findings and recommendations\n\
                     .quit              leave\n\
                     SQL statements end with ';' and may span lines. Time travel:\n\
                     SELECT * FROM t AS OF TIMESTAMP 1635724800;  SELECT * FROM t FOR SYSTEM_TIME ALL;"
                )
                .map_err(io)?;
            }
            ".tables" => {
                let names: Vec<String> = self
                    .db
                    .database()
                    .tables()?
                    .into_iter()
                    .map(|t| t.name)
                    .collect();
                writeln!(out, "{}", names.join("  ")).map_err(io)?;
            }
            ".schema" => {
                let filter = parts.next();
                for t in self.db.database().tables()? {
                    if filter.is_some_and(|f| !f.eq_ignore_ascii_case(&t.name)) {
                        continue;
                    }
                    writeln!(out, "{};", schema_sql(&t)).map_err(io)?;
                }
            }
            ".timing" => {
                self.timing = !self.timing;
                writeln!(out, "timing {}", if self.timing { "on" } else { "off" }).map_err(io)?;
            }
            ".format" | ".mode" => match parts.next() {
                Some("table") => self.format = Format::Table,
                Some("csv") => self.format = Format::Csv,
                Some("json") => self.format = Format::Json,
                _ => writeln!(out, "usage: .format table|csv|json").map_err(io)?,
            },
            ".ml" => {
                let Some(ml) = self.db.ml_optimizer() else {
                    let why = if crate::ml::BUILT_IN {
                        "the learned optimizer is off (features.ml_optimizer.enabled)"
                    } else {
                        "this chronodb is built without the learned optimizer (cargo feature ml)"
                    };
                    writeln!(out, "{why}").map_err(io)?;
                    return Ok(true);
                };
                ml.wait_idle();
                match (parts.next(), parts.next()) {
                    (Some("metrics"), _) => {
                        write!(out, "{}", ml.get_performance_metrics()).map_err(io)?
                    }
                    (Some("report"), dir) => {
                        let report = match dir {
                            Some(d) => ml.generate_training_report_in(std::path::Path::new(d))?,
                            None => ml.generate_training_report()?,
                        };
                        write!(out, "{report}").map_err(io)?
                    }
                    _ => writeln!(out, "usage: .ml metrics | .ml report [DIR]").map_err(io)?,
                }
            }
            ".health" => {
                let report = self.db.get_health_report()?;
                match parts.next() {
                    Some("json") => writeln!(out, "{}", report.to_json()).map_err(io)?,
                    _ => write!(out, "{}", report.to_text()).map_err(io)?,
                }
            }
            other => writeln!(out, "unknown command {other}; try .help").map_err(io)?,
        }
        Ok(true)
    }
}

/// `CREATE TABLE` text for a table definition.
pub fn schema_sql(t: &chrono_sql::catalog::TableDef) -> String {
    let mut cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| {
            let mut s = format!("{} {}", c.name, c.data_type.name());
            if !c.nullable
                && !t
                    .primary_key
                    .contains(&t.column_index(&c.name).unwrap_or(usize::MAX))
            {
                s.push_str(" NOT NULL");
            }
            if let Some(d) = &c.default {
                s.push_str(&format!(" DEFAULT {d}"));
            }
            if let Some((rt, rc)) = &c.references {
                s.push_str(&format!(" REFERENCES {rt}({rc})"));
            }
            s
        })
        .collect();
    if !t.primary_key.is_empty() {
        let pk: Vec<&str> = t
            .primary_key
            .iter()
            .map(|&i| t.columns[i].name.as_str())
            .collect();
        cols.push(format!("PRIMARY KEY ({})", pk.join(", ")));
    }
    let mut s = format!("CREATE TABLE {} (\n  {}\n)", t.name, cols.join(",\n  "));
    for ix in &t.indexes {
        let c: Vec<&str> = ix
            .columns
            .iter()
            .map(|&i| t.columns[i].name.as_str())
            .collect();
        s.push_str(&format!(
            ";\nCREATE {}INDEX {} ON {} ({})",
            if ix.unique { "UNIQUE " } else { "" },
            ix.name,
            t.name,
            c.join(", ")
        ));
    }
    s
}

/// The interactive shell with line editing and history.
pub fn interactive(db: &ChronoDb, format: Format) -> Result<()> {
    let mut editor = rustyline::DefaultEditor::new().map_err(|e| Error::Io(e.to_string()))?;
    let history =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".chronodb_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    println!(
        "ChronoDB {} — .help for help, .quit to leave",
        env!("CARGO_PKG_VERSION")
    );
    let mut runner = Runner::new(db, format);
    let mut splitter = StatementSplitter::default();
    let stdout = std::io::stdout();
    loop {
        let prompt = if splitter.pending() {
            "   ...> "
        } else {
            "chronodb> "
        };
        let line = match editor.readline(prompt) {
            Ok(l) => l,
            Err(rustyline::error::ReadlineError::Interrupted) => {
                splitter = StatementSplitter::default();
                continue;
            }
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => return Err(Error::Io(e.to_string())),
        };
        let _ = editor.add_history_entry(line.as_str());
        let mut out = stdout.lock();
        if !splitter.pending() && line.trim_start().starts_with('.') {
            match runner.dot_command(line.trim(), &mut out) {
                Ok(true) => continue,
                Ok(false) => break,
                Err(e) => {
                    eprintln!("error: {e}");
                    continue;
                }
            }
        }
        for stmt in splitter.push(&format!("{line}\n")) {
            if let Err(e) = runner.run_sql(&stmt, &mut out) {
                eprintln!("error: {e}");
            }
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    Ok(())
}

/// Prints rows as a table (used by the demo).
pub fn print_rows(columns: &[String], rows: &[Vec<chrono_storage::Value>]) {
    let stdout = std::io::stdout();
    let _ = write_table(&mut stdout.lock(), columns, rows);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_outside_quotes_and_comments() {
        let mut s = StatementSplitter::default();
        assert!(s.push("SELECT 'a;b'").is_empty());
        assert!(s.pending());
        let done = s.push(" -- not; the end\n; SELECT 2; SELECT /* ; */ 3");
        assert_eq!(
            done,
            vec![
                "SELECT 'a;b' -- not; the end\n;".to_string(),
                "SELECT 2;".into()
            ]
        );
        assert_eq!(s.rest().as_deref(), Some("SELECT /* ; */ 3"));
    }

    #[test]
    fn scripts_run_statement_by_statement_and_stop_at_an_error() {
        let db = ChronoDb::open_temporary().unwrap();
        let mut runner = Runner::new(&db, Format::Json);
        let script = "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT);\nINSERT INTO t VALUES (1, 'x;y');\nSELECT * FROM t;\nSELECT nope FROM t;\nSELECT 1;\n";
        let mut out = Vec::new();
        let err = runner
            .run_stream(&mut script.as_bytes(), &mut out)
            .unwrap_err();
        assert!(err.to_string().contains("no such column: nope"));
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("{\"affected\":1,\"commit_ts\":"));
        assert_eq!(lines[2], r#"{"columns":["id","s"],"rows":[[1,"x;y"]]}"#);
    }
}
