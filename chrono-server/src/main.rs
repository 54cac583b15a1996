//! `chronodb`: the command-line tool. `chronodb --help` lists the commands.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono_server::cli::{demo, import, shell};
use chrono_server::output::Format;
use chrono_server::{ChronoDb, Config, Error, Result};
use clap::{Parser, Subcommand};

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
    fn open(&self) -> Result<ChronoDb> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
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
}

#[derive(Subcommand)]
enum Command {
    /// Run SQL: an interactive shell, `-e "SQL; SQL"`, or statements from standard input.
    Sql {
        #[command(flatten)]
        db: DbArgs,
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
    /// Run the brief's examples on a database in a temporary directory.
    Demo,
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Demo => demo::run_demo(),
        Command::Sql {
            db,
            execute,
            format,
        } => {
            let db = db.open()?;
            let stdout = std::io::stdout();
            match execute {
                Some(sql) => shell::Runner::new(&db, format).run_sql(&sql, &mut stdout.lock()),
                None if std::io::stdin().is_terminal() => shell::interactive(&db, format),
                None => {
                    let stdin = std::io::stdin();
                    shell::Runner::new(&db, format)
                        .run_stream(&mut stdin.lock(), &mut stdout.lock())
                }
            }
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
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
