//! `chronodb sql`: an interactive shell (line editing, history, multi-line statements, dot
//! commands), one-shot `-e`, and scripts read from standard input statement by statement,
//! so a script of any size runs in constant memory.

use std::io::{BufRead, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use chrono_sql::{CancelToken, Session};

use crate::ChronoDb;
use crate::cli::remote::Remote;
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

/// Where statements run: a database this process opened, or a server (`--connect`).
enum Backend<'a> {
    Local {
        session: Box<Session>,
        db: &'a ChronoDb,
    },
    Remote(Remote),
}

/// The statement running now, cancelled by Ctrl-C (see `catch_interrupts`).
static RUNNING: parking_lot::Mutex<Option<CancelToken>> = parking_lot::Mutex::new(None);
/// Set by the SIGINT handler; the watcher thread turns it into a cancellation.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// While a statement runs in the interactive shell, Ctrl-C cancels it (and only it): the
/// signal handler sets a flag, which a watcher thread turns into the running statement's
/// cancellation; at the prompt, the line editor reads Ctrl-C itself.
fn catch_interrupts() {
    extern "C" fn on_sigint(_: libc::c_int) {
        INTERRUPTED.store(true, Ordering::SeqCst);
    }
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_sigint as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
    std::thread::spawn(|| {
        loop {
            std::thread::sleep(Duration::from_millis(20));
            if INTERRUPTED.swap(false, Ordering::SeqCst)
                && let Some(t) = RUNNING.lock().as_ref()
            {
                t.cancel();
            }
        }
    });
}

/// Whether Ctrl-C was pressed since the last call (for a statement on a server, whose call
/// is dropped, and so cancelled there).
pub fn interrupted() -> bool {
    INTERRUPTED.swap(false, Ordering::SeqCst)
}

/// Runs statements and prints their outcomes.
pub struct Runner<'a> {
    backend: Backend<'a>,
    format: Format,
    timing: bool,
    /// Stop a script at its first error (`--bail`); otherwise report it and go on.
    bail: bool,
    /// Show a running statement's time on standard error after a second.
    progress: bool,
}

impl<'a> Runner<'a> {
    /// A runner with its own session.
    pub fn new(db: &'a ChronoDb, format: Format) -> Self {
        let mut session = db.session();
        session.set_principal(Some(local_principal()));
        Self {
            backend: Backend::Local {
                session: Box::new(session),
                db,
            },
            format,
            timing: false,
            bail: false,
            progress: false,
        }
    }

    /// A runner whose statements run on a server.
    pub fn remote(remote: Remote, format: Format) -> Runner<'static> {
        Runner {
            backend: Backend::Remote(remote),
            format,
            timing: false,
            bail: false,
            progress: false,
        }
    }

    /// Stop scripts at their first error.
    pub fn bail(mut self, bail: bool) -> Self {
        self.bail = bail;
        self
    }

    /// True while an explicit transaction is open (the prompt shows it).
    pub fn in_transaction(&self) -> bool {
        match &self.backend {
            Backend::Local { session, .. } => session.in_transaction(),
            Backend::Remote(r) => r.in_transaction(),
        }
    }

    /// Shows how long a statement has run, once it has run for a second (the interactive
    /// shell, on a terminal).
    pub fn show_progress(mut self, yes: bool) -> Self {
        self.progress = yes;
        self
    }

    /// Runs the statements of `sql` in order, printing each outcome; stops at the first error.
    pub fn run_sql(&mut self, sql: &str, out: &mut dyn Write) -> Result<()> {
        let start = Instant::now();
        let progress = self.progress;
        match &mut self.backend {
            Backend::Remote(remote) => {
                let outcomes = {
                    let _ticker = progress.then(crate::cli::progress::Ticker::start);
                    remote.execute(sql)?
                };
                for outcome in outcomes {
                    write_outcome(out, self.format, &outcome)
                        .map_err(|e| Error::Io(e.to_string()))?;
                }
            }
            Backend::Local { session, db } => {
                // Through the database's parse cache: a statement run again (a script's loop,
                // a query typed again) keeps its plan, as over gRPC.
                for p in db.database().parse_cached(sql)?.iter() {
                    let cancel = CancelToken::new();
                    session.set_cancel_token(cancel.clone());
                    *RUNNING.lock() = Some(cancel.clone());
                    let ran = {
                        // Rows printed as they come (CSV, JSON) need no ticker. A statement
                        // that counts its work (ANALYZE) reports it through its token.
                        let quiet = self.format != Format::Table;
                        let _ticker = (progress && !quiet).then(|| {
                            crate::cli::progress::Ticker::counting("running", move || {
                                cancel.progress().map(|(n, total)| (n, total, "rows"))
                            })
                        });
                        run_one(session, p, self.format, out)
                    };
                    *RUNNING.lock() = None;
                    if let Some(outcome) = ran? {
                        write_outcome(out, self.format, &outcome)
                            .map_err(|e| Error::Io(e.to_string()))?;
                    }
                }
            }
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

    /// Runs one statement of a script, reporting an error instead of returning it (on
    /// standard error, and in JSON output as a line of its own); true when it succeeded.
    fn run_reported(&mut self, sql: &str, out: &mut dyn Write) -> Result<bool> {
        match self.run_sql(sql, out) {
            Ok(()) => Ok(true),
            Err(e) if is_closed_output(&e) => Err(e),
            Err(e) => {
                report_error(&e, self.format, out);
                Ok(false)
            }
        }
    }

    /// Reads statements from `input` as they complete and runs them. An error is reported
    /// and the script goes on (as sqlite3 and psql do), unless the runner bails; the result
    /// is an error when any statement failed.
    pub fn run_stream(&mut self, input: &mut dyn BufRead, out: &mut dyn Write) -> Result<()> {
        let mut splitter = StatementSplitter::default();
        let mut line = String::new();
        let mut failed = 0usize;
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
                match self.dot_command(line.trim(), out) {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(e) if is_closed_output(&e) => return Err(e),
                    Err(e) => {
                        report_error(&e, self.format, out);
                        failed += 1;
                        if self.bail {
                            break;
                        }
                        continue;
                    }
                }
            }
            for stmt in splitter.push(&line) {
                if !self.run_reported(&stmt, out)? {
                    failed += 1;
                    if self.bail {
                        return Err(Error::InvalidInput(
                            "stopped at the first error (--bail)".to_string(),
                        ));
                    }
                }
            }
        }
        if let Some(rest) = splitter.rest()
            && !self.run_reported(&rest, out)?
        {
            failed += 1;
        }
        if failed > 0 {
            return Err(Error::InvalidInput(format!(
                "{failed} statement{} failed",
                if failed == 1 { "" } else { "s" }
            )));
        }
        Ok(())
    }

    /// The tables: name and the SQL that makes each.
    fn tables(&self) -> Result<Vec<(String, String)>> {
        Ok(match &self.backend {
            Backend::Local { db, .. } => db
                .database()
                .tables()?
                .iter()
                .map(|t| (t.name.clone(), schema_sql(t)))
                .collect(),
            Backend::Remote(r) => r
                .tables()?
                .into_iter()
                .map(|t| (t.name, t.create_sql))
                .collect(),
        })
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
                     SQL statements end with ';' and may span lines; Ctrl-C cancels the one\n\
                     running; Tab completes keywords, tables, columns and dot commands.\n\
                     Time travel: SELECT * FROM t AS OF TIMESTAMP 1635724800;\n\
                     SELECT * FROM t FOR SYSTEM_TIME ALL;"
                )
                .map_err(io)?;
            }
            ".tables" => {
                let names: Vec<String> = self.tables()?.into_iter().map(|t| t.0).collect();
                writeln!(out, "{}", names.join("  ")).map_err(io)?;
            }
            ".schema" => {
                let filter = parts.next();
                for (name, sql) in self.tables()? {
                    if filter.is_some_and(|f| !f.eq_ignore_ascii_case(&name)) {
                        continue;
                    }
                    writeln!(out, "{sql};").map_err(io)?;
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
                let Backend::Local { db, .. } = &self.backend else {
                    writeln!(
                        out,
                        "the learned estimator's reports are the server's: gRPC chronodb.v1.Optimizer"
                    )
                    .map_err(io)?;
                    return Ok(true);
                };
                let Some(ml) = db.ml_optimizer() else {
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
                let json = parts.next() == Some("json");
                let text = match &self.backend {
                    Backend::Local { db, .. } => {
                        let report = db.get_health_report()?;
                        if json {
                            report.to_json() + "\n"
                        } else {
                            report.to_text()
                        }
                    }
                    Backend::Remote(r) => r.health(json)?,
                };
                write!(out, "{text}").map_err(io)?;
            }
            other => {
                return Err(Error::InvalidInput(format!(
                    "unknown command {other}; try .help"
                )));
            }
        }
        Ok(true)
    }

    /// Names to complete: tables and their columns.
    fn completion_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        match &self.backend {
            Backend::Local { db, .. } => {
                for t in db.database().tables().unwrap_or_default() {
                    names.push(t.name.clone());
                    names.extend(t.columns.iter().map(|c| c.name.clone()));
                }
            }
            Backend::Remote(r) => {
                for t in r.tables().unwrap_or_default() {
                    names.push(t.name);
                    names.extend(t.columns);
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }
}

/// Runs one parsed statement; its outcome, unless CSV or JSON rows were printed as they
/// came. A JSON result cut short by an error is closed with an `"error"` member, so every
/// line printed is whole JSON.
fn run_one(
    session: &mut Session,
    p: &chrono_sql::Prepared,
    format: Format,
    out: &mut dyn Write,
) -> Result<Option<chrono_sql::Outcome>> {
    match format {
        // A table needs every row for its widths.
        Format::Table => Ok(Some(session.run(p, &[])?)),
        Format::Csv | Format::Json => {
            let mut sink = crate::output::StreamingWriter::new(out, format);
            match session.run_streaming(p, &[], &mut sink) {
                Ok(outcome) => Ok((!sink.finish()?).then_some(outcome)),
                Err(e) => {
                    sink.fail(&e.to_string());
                    Err(e.into())
                }
            }
        }
    }
}

/// True when the error is the output having gone away (a closed pipe): the end, quietly.
pub fn is_closed_output(e: &Error) -> bool {
    let text = e.to_string();
    text.contains("Broken pipe") || text.contains("output closed")
}

/// Reports a statement's error: on standard error, and in JSON output as a line of its own.
fn report_error(e: &Error, format: Format, out: &mut dyn Write) {
    if format == Format::Json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::json!({"error": e.to_string(), "kind": format!("{:?}", e.kind())})
        );
    }
    let _ = out.flush();
    eprintln!("error: {e}");
}

/// The principal of a local session: the operating system's user, as `local:<name>`, so
/// the audit trail names who changed what from the command line.
pub fn local_principal() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| {
            // SAFETY: getuid has no preconditions.
            format!("uid{}", unsafe { libc::getuid() })
        });
    format!("local:{user}")
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

/// Completion for the shell: SQL keywords, dot commands, and the tables and columns the
/// database has (read again at each prompt).
#[derive(Default)]
struct Completer {
    names: Vec<String>,
}

const KEYWORDS: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "ORDER BY",
    "HAVING",
    "LIMIT",
    "OFFSET",
    "INSERT INTO",
    "VALUES",
    "UPDATE",
    "SET",
    "DELETE FROM",
    "CREATE TABLE",
    "CREATE INDEX",
    "DROP TABLE",
    "ALTER TABLE",
    "PRIMARY KEY",
    "REFERENCES",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "AS OF TIMESTAMP",
    "FOR SYSTEM_TIME",
    "ALL",
    "BETWEEN",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "JOIN",
    "LEFT JOIN",
    "ON",
    "DISTINCT",
    "COUNT",
    "SUM",
    "AVG",
    "MIN",
    "MAX",
    "EXPLAIN",
    "ANALYZE",
    "UNION",
    "EXISTS",
    "IN",
    "LIKE",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "INTEGER",
    "BIGINT",
    "TEXT",
    "DOUBLE",
    "BOOLEAN",
    "TIMESTAMP",
    "BLOB",
    "DELETE HISTORY FROM",
];

const DOT_COMMANDS: &[&str] = &[
    ".tables", ".schema", ".timing", ".format", ".ml", ".health", ".help", ".quit",
];

impl rustyline::completion::Completer for Completer {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let before = &line[..pos];
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
            .map_or(0, |i| i + 1);
        let word = &before[start..];
        if word.is_empty() {
            return Ok((pos, Vec::new()));
        }
        let lower = word.to_ascii_lowercase();
        let mut found: Vec<String> = if start == 0 && word.starts_with('.') {
            DOT_COMMANDS
                .iter()
                .filter(|c| c.starts_with(&lower))
                .map(|c| c.to_string())
                .collect()
        } else {
            let upper = word.to_ascii_uppercase();
            let keywords = KEYWORDS.iter().filter(|k| k.starts_with(&upper)).map(|k| {
                // Keep the case the user types in.
                if word.chars().all(|c| !c.is_ascii_uppercase()) {
                    k.to_ascii_lowercase()
                } else {
                    k.to_string()
                }
            });
            let names = self
                .names
                .iter()
                .filter(|n| n.to_ascii_lowercase().starts_with(&lower))
                .cloned();
            names.chain(keywords).collect()
        };
        found.dedup();
        Ok((start, found))
    }
}

impl rustyline::hint::Hinter for Completer {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for Completer {}
impl rustyline::validate::Validator for Completer {}
impl rustyline::Helper for Completer {}

/// The interactive shell with line editing, history and completion. Ctrl-C cancels the
/// statement running (and keeps the shell); at the prompt it clears the line. The prompt
/// shows an open transaction (`chronodb*>`).
pub fn interactive(runner: Runner<'_>) -> Result<()> {
    use std::io::IsTerminal;
    let mut runner = runner.show_progress(std::io::stderr().is_terminal());
    let config = rustyline::Config::builder()
        .completion_type(rustyline::CompletionType::List)
        .build();
    let mut editor: rustyline::Editor<Completer, rustyline::history::DefaultHistory> =
        rustyline::Editor::with_config(config).map_err(|e| Error::Io(e.to_string()))?;
    editor.set_helper(Some(Completer::default()));
    let history =
        std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".chronodb_history"));
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    let connected = match &runner.backend {
        Backend::Remote(r) => format!(" (connected to {})", r.address),
        Backend::Local { .. } => String::new(),
    };
    println!(
        "ChronoDB {}{connected} — .help for help, .quit to leave",
        env!("CARGO_PKG_VERSION")
    );
    catch_interrupts();
    let mut splitter = StatementSplitter::default();
    let stdout = std::io::stdout();
    loop {
        if let Some(helper) = editor.helper_mut() {
            helper.names = runner.completion_names();
        }
        let prompt = match (splitter.pending(), runner.in_transaction()) {
            (true, _) => "   ...> ",
            (false, true) => "chronodb*> ",
            (false, false) => "chronodb> ",
        };
        // Lines typed while a statement ran are waiting, whole, in the terminal (they were
        // echoed as they were typed): take them one at a time before the line editor,
        // which would read them all at once and keep only the first.
        let line = match typed_ahead() {
            Some(Some(line)) => {
                println!("{prompt}{line}");
                line
            }
            Some(None) => break,
            None => match editor.readline(prompt) {
                Ok(l) => l,
                Err(rustyline::error::ReadlineError::Interrupted) => {
                    splitter = StatementSplitter::default();
                    continue;
                }
                Err(rustyline::error::ReadlineError::Eof) => break,
                Err(e) => return Err(Error::Io(e.to_string())),
            },
        };
        let _ = editor.add_history_entry(line.as_str());
        let mut out = stdout.lock();
        // A Ctrl-C pressed at the prompt is not meant for the next statement.
        INTERRUPTED.store(false, Ordering::SeqCst);
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

/// A whole line waiting on the terminal, typed while a statement ran: `Some(Some(line))`;
/// `Some(None)` at end of input (Ctrl-D typed ahead); `None` when nothing waits. The
/// terminal is in its line mode between prompts, so a read returns at most one line.
fn typed_ahead() -> Option<Option<String>> {
    let mut poll = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, a zero timeout.
    let ready = unsafe { libc::poll(&mut poll, 1, 0) };
    if ready <= 0 || poll.revents & libc::POLLIN == 0 {
        return None;
    }
    let mut buf = vec![0u8; 64 << 10];
    // SAFETY: reads at most buf.len() bytes into buf.
    let n = unsafe { libc::read(libc::STDIN_FILENO, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return None;
    }
    if n == 0 {
        return Some(None);
    }
    buf.truncate(n as usize);
    let line = String::from_utf8_lossy(&buf);
    Some(Some(line.trim_end_matches(['\n', '\r']).to_string()))
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
    fn scripts_go_on_after_an_error_unless_told_to_bail() {
        let db = ChronoDb::open_temporary().unwrap();
        let script = "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT);\nINSERT INTO t VALUES (1, 'x;y');\nSELECT * FROM t;\nSELECT nope FROM t;\nSELECT 1 AS one;\n";
        let mut out = Vec::new();
        let err = Runner::new(&db, Format::Json)
            .run_stream(&mut script.as_bytes(), &mut out)
            .unwrap_err();
        assert!(err.to_string().contains("1 statement failed"), "{err}");
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{text}");
        assert!(lines[1].starts_with("{\"affected\":1,\"commit_ts\":"));
        assert_eq!(lines[2], r#"{"columns":["id","s"],"rows":[[1,"x;y"]]}"#);
        // The error is a JSON line of its own; the script went on.
        let error: serde_json::Value = serde_json::from_str(lines[3]).unwrap();
        assert!(
            error["error"]
                .as_str()
                .unwrap()
                .contains("no such column: nope")
        );
        assert_eq!(lines[4], r#"{"columns":["one"],"rows":[[1]]}"#);
        for line in &lines {
            serde_json::from_str::<serde_json::Value>(line).expect("every line is whole JSON");
        }

        // With --bail the script stops there.
        let db = ChronoDb::open_temporary().unwrap();
        let mut out = Vec::new();
        let err = Runner::new(&db, Format::Json)
            .bail(true)
            .run_stream(&mut script.as_bytes(), &mut out)
            .unwrap_err();
        assert!(err.to_string().contains("--bail"), "{err}");
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 4);
    }

    #[test]
    fn completion_offers_keywords_tables_columns_and_dot_commands() {
        use rustyline::completion::Completer as _;
        let c = Completer {
            names: vec!["orders".into(), "order_id".into(), "users".into()],
        };
        let history = rustyline::history::DefaultHistory::new();
        let ctx = rustyline::Context::new(&history);
        let (start, found) = c.complete("SELECT * FROM ord", 17, &ctx).unwrap();
        assert_eq!(start, 14);
        assert!(found.contains(&"orders".to_string()), "{found:?}");
        assert!(found.contains(&"order by".to_string()), "{found:?}");
        let (_, found) = c.complete("sel", 3, &ctx).unwrap();
        assert_eq!(found, vec!["select".to_string()]);
        let (_, found) = c.complete(".sch", 4, &ctx).unwrap();
        assert_eq!(found, vec![".schema".to_string()]);
    }
}
