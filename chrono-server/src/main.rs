//! `chronodb`: the command-line tool. `chronodb --help` lists the commands.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono_server::cli::{audit, demo, import, shell};
use chrono_server::output::Format;
use chrono_server::{ChronoDb, Config, Error, Result};
use clap::{Parser, Subcommand};

/// The server's allocator: mimalloc (the write path allocates many small, short-lived
/// buffers; bulk insert takes about a fifth less time than with the system allocator). A
/// program embedding the crates picks its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "chronodb",
    version,
    about = "ChronoDB: a time-travel SQL database"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct DbArgs {
    /// The database directory (created if missing).
    #[arg(long)]
    db: Option<PathBuf>,
    /// A config.yaml; `--db` overrides its `database.data_file`.
    #[arg(long)]
    config: Option<PathBuf>,
}

impl DbArgs {
    fn config(&self) -> Result<Config> {
        match &self.config {
            Some(path) => Config::from_file(path),
            None => Ok(Config::default()),
        }
    }

    fn open(&self) -> Result<ChronoDb> {
        let mut config = self.config()?;
        match (&self.db, &self.config) {
            (Some(dir), _) => config.database.data_file = dir.clone(),
            (None, Some(_)) => {}
            (None, None) => {
                return Err(Error::InvalidInput(
                    "give the database with --db DIR (or --config FILE)".into(),
                ));
            }
        }
        ChronoDb::open_with_config(config)
    }

    /// [`Self::open`] for commands that only read: a database that does not exist is an
    /// error (a mistyped `--db` would otherwise be created empty and found in order).
    fn open_existing(&self) -> Result<ChronoDb> {
        let mut config = self.config()?;
        if let Some(dir) = &self.db {
            config.database.data_file = dir.clone();
        }
        if config.database.engine == chrono_server::config::EngineKind::Rocksdb
            && (self.db.is_some() || self.config.is_some())
            && !config.database.data_file.join("CURRENT").exists()
        {
            return Err(Error::InvalidInput(format!(
                "no database in {}: check the path (a database is made by `chronodb sql --db DIR`, `import` or `serve`)",
                config.database.data_file.display()
            )));
        }
        self.open()
    }
}

/// Reaching a running server instead of opening a database.
#[derive(clap::Args)]
struct ConnectArgs {
    /// Talk to a running `chronodb serve` at HOST:PORT over gRPC (https://HOST:PORT for
    /// TLS) instead of opening a database: the way in while a server holds it.
    #[arg(long, value_name = "HOST:PORT", conflicts_with_all = ["db", "config"])]
    connect: Option<String>,
    /// The server's bearer token (server.auth_tokens).
    #[arg(
        long,
        env = "CHRONODB_TOKEN",
        hide_env_values = true,
        requires = "connect"
    )]
    token: Option<String>,
    /// A PEM CA certificate to check a TLS server's certificate with.
    #[arg(long, value_name = "FILE", requires = "connect")]
    tls_ca: Option<PathBuf>,
}

impl ConnectArgs {
    fn remote(&self) -> Result<Option<chrono_server::cli::remote::Remote>> {
        self.connect
            .as_ref()
            .map(|address| {
                chrono_server::cli::remote::Remote::connect(&chrono_server::cli::remote::Target {
                    address: address.clone(),
                    token: self.token.clone(),
                    tls_ca: self.tls_ca.clone(),
                })
            })
            .transpose()
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run SQL: an interactive shell, `-e "SQL; SQL"`, or statements from standard input.
    Sql {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        connect: ConnectArgs,
        /// Stop a script at its first error (by default an error is reported and the
        /// script goes on; the exit status says whether any statement failed).
        #[arg(long)]
        bail: bool,
        /// Statements to run (separated by `;`), instead of the shell.
        #[arg(short = 'e', long = "execute")]
        execute: Option<String>,
        /// How to print results.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Load a CSV file (with a header row) into a table.
    Import {
        #[command(flatten)]
        db: DbArgs,
        /// The table to load into.
        #[arg(long)]
        table: String,
        /// The CSV file.
        file: PathBuf,
        /// Rows per transaction.
        #[arg(long, default_value_t = 10_000)]
        batch_size: usize,
    },
    /// Run the walkthrough's examples on a database in a temporary directory.
    Demo,
    /// Serve the database over gRPC (chronodb.v1 Sql, TimeTravel, Changes, Audit, Optimizer,
    /// Monitor; health; reflection) until SIGINT or SIGTERM.
    Serve {
        #[command(flatten)]
        db: DbArgs,
        /// Address to listen on (default: server.listen of the config, 127.0.0.1:50051).
        #[arg(long)]
        listen: Option<String>,
        /// Also serve the WebSocket change monitor here (server.websocket; e.g.
        /// 127.0.0.1:8765).
        #[arg(long)]
        websocket: Option<String>,
        /// Also serve HTTP with GraphQL at /graphql here (server.http; e.g. 127.0.0.1:8080).
        #[arg(long)]
        http: Option<String>,
        /// Also serve PostgreSQL's wire protocol here, for psql, drivers and pgbench
        /// (server.postgres; e.g. 127.0.0.1:5432).
        #[arg(long)]
        pg: Option<String>,
    },
    /// The audit trail: verify it, report on it, sign checkpoints, prove and check proofs.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// The health report: findings and recommendations on history, storage, audit (and, for
    /// a running server — `.health` in its shell, or gRPC Monitor — its statements, scans
    /// and estimates since it started).
    Health {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        connect: ConnectArgs,
        /// table (text), json or html.
        #[arg(long, value_enum, default_value = "table")]
        format: HealthFormat,
        /// Write it to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// The health report's forms.
#[derive(Clone, Copy, clap::ValueEnum)]
enum HealthFormat {
    /// Text for a terminal.
    Table,
    /// JSON.
    Json,
    /// One HTML page with charts.
    Html,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the chain and log tree and cross-check every row version; exits non-zero
    /// on any failure. With a saved checkpoint, also checks the log extends it.
    Verify {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        connect: ConnectArgs,
        /// A signed checkpoint saved earlier.
        #[arg(long, requires = "public_key")]
        checkpoint: Option<PathBuf>,
        /// The hex Ed25519 public key that signed it.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// The operations on a table in a time window (Unix seconds or ISO-8601).
    Report {
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        connect: ConnectArgs,
        /// The table.
        #[arg(long)]
        table: String,
        /// From (inclusive).
        #[arg(long, default_value = "0")]
        from: String,
        /// To (inclusive).
        #[arg(long, default_value = "9999-12-31")]
        to: String,
        /// How to print.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Sign the current checkpoint (size, root, time) with the configured or given key.
    Checkpoint {
        #[command(flatten)]
        db: DbArgs,
        /// Where to write it (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The key file (default: features.audit.signing_key_file).
        #[arg(long)]
        key: Option<PathBuf>,
    },
    /// An inclusion proof (`--tx N`) or a consistency proof (`--from-size A --to-size B`), as JSON.
    Proof {
        #[command(flatten)]
        db: DbArgs,
        /// Transaction sequence number.
        #[arg(long)]
        tx: Option<u64>,
        /// Older log size (a consistency proof from it to --to-size).
        #[arg(long, requires = "to_size")]
        from_size: Option<u64>,
        /// Newer log size; with --tx, the size of the log the inclusion proof is for (e.g.
        /// a saved checkpoint's size; default: the whole log).
        #[arg(long)]
        to_size: Option<u64>,
        /// Where to write it (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a proof file, and optionally a signed checkpoint, without any database.
    VerifyProof {
        /// The proof (JSON from `audit proof`).
        #[arg(long)]
        proof: PathBuf,
        /// A signed checkpoint the proof must agree with.
        #[arg(long, requires = "public_key")]
        checkpoint: Option<PathBuf>,
        /// The hex Ed25519 public key that signed the checkpoint.
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Make a new checkpoint-signing key; prints its public key.
    Keygen {
        /// Where to write the key (hex seed).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Writes `text` to `out`, or prints it.
fn emit(out: Option<&std::path::Path>, text: &str) -> Result<()> {
    match out {
        Some(p) => std::fs::write(p, text)
            .map_err(|e| Error::Io(format!("cannot write {}: {e}", p.display()))),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

fn read_file(path: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::Io(format!("cannot read {}: {e}", path.display())))
}

fn run_audit(command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::Verify {
            db,
            connect,
            checkpoint,
            public_key,
        } => {
            if let Some(remote) = connect.remote()? {
                if checkpoint.is_some() {
                    return Err(Error::InvalidInput(
                        "--checkpoint needs the database itself; over --connect the server verifies its whole trail".into(),
                    ));
                }
                let (ok, text) =
                    chrono_server::cli::progress::showing("verifying the audit trail", || {
                        remote.verify()
                    })?;
                print!("{text}");
                return if ok {
                    Ok(())
                } else {
                    Err(Error::InvalidInput("audit verification failed".into()))
                };
            }
            let db = db.open_existing()?;
            let cp = checkpoint.as_deref().zip(public_key.as_deref());
            let trail = db.audit_trail_shared();
            let verified = chrono_server::cli::progress::showing_count(
                "verifying the audit trail",
                move || {
                    trail.as_ref().map(|t| {
                        let (done, total) = t.verify_progress();
                        (done, total, "records")
                    })
                },
                || audit::verify(&db, cp),
            );
            if verified? {
                Ok(())
            } else {
                Err(Error::InvalidInput("audit verification failed".into()))
            }
        }
        AuditCommand::Report {
            db,
            connect,
            table,
            from,
            to,
            format,
        } => {
            if let Some(remote) = connect.remote()? {
                let entries =
                    remote.report(&table, audit::parse_time(&from)?, audit::parse_time(&to)?)?;
                audit::print_entries(entries, format == Format::Json);
                return Ok(());
            }
            let db = db.open_existing()?;
            audit::report(
                &db,
                &table,
                audit::parse_time(&from)?,
                audit::parse_time(&to)?,
                format == Format::Json,
            )
        }
        AuditCommand::Checkpoint { db, out, key } => {
            let key_file = key.or_else(|| {
                db.config()
                    .ok()
                    .and_then(|c| c.features.audit.signing_key_file)
            });
            let Some(key_file) = key_file else {
                return Err(Error::InvalidInput(
                    "no signing key: give --key FILE or set features.audit.signing_key_file (chronodb audit keygen makes one)".into(),
                ));
            };
            let key_hex = read_file(&key_file)?;
            let db = db.open_existing()?;
            audit::checkpoint(&db, &key_hex, out.as_deref())
        }
        AuditCommand::Proof {
            db,
            tx,
            from_size,
            to_size,
            out,
        } => {
            let db = db.open_existing()?;
            emit(out.as_deref(), &audit::proof(&db, tx, from_size, to_size)?)
        }
        AuditCommand::VerifyProof {
            proof,
            checkpoint,
            public_key,
        } => {
            let proof_text = read_file(&proof)?;
            let note = checkpoint.as_deref().map(read_file).transpose()?;
            audit::verify_proof(&proof_text, note.as_deref().zip(public_key.as_deref()))
        }
        AuditCommand::Keygen { out } => {
            if out.exists() {
                return Err(Error::InvalidInput(format!(
                    "{} exists; not overwriting a key",
                    out.display()
                )));
            }
            let seed = chrono_audit::signing::generate_key_hex()?;
            // The private key is readable by its owner only.
            let mut file = {
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                options
                    .open(&out)
                    .map_err(|e| Error::Io(format!("cannot write {}: {e}", out.display())))?
            };
            std::io::Write::write_all(&mut file, format!("{seed}\n").as_bytes())
                .map_err(|e| Error::Io(format!("cannot write {}: {e}", out.display())))?;
            let key = chrono_audit::signing::signing_key(&seed)?;
            println!("{}", chrono_audit::signing::public_key_hex(&key));
            Ok(())
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo => demo::run_demo(),
        Command::Audit { command } => run_audit(command),
        Command::Serve {
            db,
            listen,
            websocket,
            http,
            pg,
        } => {
            let mut config = db.config()?;
            if pg.is_some() {
                config.server.postgres = pg;
            }
            if let Some(l) = listen {
                config.server.listen = l;
            }
            if websocket.is_some() {
                config.server.websocket = websocket;
            }
            if http.is_some() {
                config.server.http = http;
            }
            let addr: std::net::SocketAddr = config.server.listen.parse().map_err(|_| {
                Error::InvalidInput(format!(
                    "--listen: not an address: {}",
                    config.server.listen
                ))
            })?;
            config.validate()?;
            if config.open_to_the_network() {
                eprintln!(
                    "warning: serving {} without authentication: anyone who can reach it can \
                     read and write everything (set server.auth_tokens)",
                    config.server.listen
                );
            }
            let server = config.server.clone();
            let chrono = std::sync::Arc::new(db.open()?);
            let runtime =
                tokio::runtime::Runtime::new().map_err(|e| Error::Io(format!("runtime: {e}")))?;
            runtime.block_on(async move {
                let listener = chrono_server::grpc::bind(addr).await?;
                let local = listener
                    .local_addr()
                    .map_err(|e| Error::Io(e.to_string()))?;
                eprintln!("chronodb serving gRPC on {local}");
                let beside = chrono_server::grpc::Beside::bind(&server).await?;
                let local = |l: &tokio::net::TcpListener| {
                    l.local_addr()
                        .map(|a| a.to_string())
                        .map_err(|e| Error::Io(e.to_string()))
                };
                if let Some(ws) = &beside.websocket {
                    eprintln!(
                        "chronodb serving the WebSocket change monitor on ws://{}",
                        local(ws)?
                    );
                }
                if let Some(h) = &beside.http {
                    let at = local(h)?;
                    eprintln!("chronodb serving GraphQL on http://{at}/graphql");
                    eprintln!("chronodb serving the explorer on http://{at}/");
                }
                if let Some(p) = &beside.postgres {
                    let at = p.local_addr().map_err(|e| Error::Io(e.to_string()))?;
                    eprintln!(
                        "chronodb serving PostgreSQL's protocol on {at} (psql -h {} -p {})",
                        at.ip(),
                        at.port()
                    );
                }
                let served = chrono.clone();
                let result = chrono_server::grpc::serve_with(
                    served,
                    &server,
                    listener,
                    beside,
                    chrono_server::grpc::shutdown_signal(),
                )
                .await;
                // A training the server's ANALYZE started finishes (within its budget)
                // before the process exits, as in `chronodb sql`: a process that exits under
                // a running libtorch thread aborts.
                if let Some(ml) = chrono.ml_optimizer()
                    && ml.is_training()
                {
                    eprintln!(
                        "finishing the learned estimator's training (at most \
                         features.ml_optimizer.training_budget_ms)"
                    );
                    tokio::task::block_in_place(|| ml.wait_idle());
                }
                result
            })
        }
        Command::Sql {
            db,
            connect,
            bail,
            execute,
            format,
        } => {
            let mut local = None;
            let runner = match connect.remote()? {
                Some(remote) => shell::Runner::remote(remote, format),
                None => shell::Runner::new(local.insert(db.open()?), format),
            };
            let mut runner = runner.bail(bail);
            let stdout = std::io::stdout();
            let ran = match execute {
                Some(sql) => runner.run_stream(&mut sql.as_bytes(), &mut stdout.lock()),
                None if std::io::stdin().is_terminal() => shell::interactive(runner),
                None => {
                    let stdin = std::io::stdin();
                    runner.run_stream(&mut stdin.lock(), &mut stdout.lock())
                }
            };
            // An ANALYZE left the learned estimator training in the background: it keeps its
            // model in the database when done (within its time budget).
            if let Some(ml) = local.as_ref().and_then(|d| d.ml_optimizer())
                && ml.is_training()
            {
                eprintln!(
                    "finishing the learned estimator's training (at most \
                     features.ml_optimizer.training_budget_ms)"
                );
                ml.wait_idle();
            }
            ran
        }
        Command::Health {
            db,
            connect,
            format,
            out,
        } => {
            let text = match connect.remote()? {
                Some(remote) => match format {
                    HealthFormat::Table => remote.health(false)?,
                    HealthFormat::Json => remote.health(true)? + "\n",
                    HealthFormat::Html => {
                        return Err(Error::InvalidInput(
                            "--format html needs the database itself; over --connect use table or json"
                                .into(),
                        ));
                    }
                },
                None => {
                    let db = db.open_existing()?;
                    let report = chrono_server::cli::progress::showing(
                        "collecting the health report",
                        || db.get_health_report(),
                    )?;
                    match format {
                        HealthFormat::Table => report.to_text(),
                        HealthFormat::Json => report.to_json() + "\n",
                        HealthFormat::Html => report.to_html(),
                    }
                }
            };
            emit(out.as_deref(), &text)
        }
        Command::Import {
            db,
            table,
            file,
            batch_size,
        } => {
            let db = db.open()?;
            let report = import::import_csv(&db, &table, &file, batch_size.max(1))?;
            eprintln!(
                "imported {} rows into {table} in {} transactions",
                report.rows, report.batches
            );
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("CHRONODB_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve { .. }) {
        // A command whose output goes to a pipe that closes (`| head`) ends quietly, as
        // other Unix tools do, instead of failing on its next write. (The server keeps
        // ignoring SIGPIPE: a client going away is an error on that socket only.)
        // SAFETY: restoring the default disposition of a signal has no preconditions.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if shell::is_closed_output(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
