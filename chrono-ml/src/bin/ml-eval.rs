//! Prints the learned estimator's evaluation table (see `chrono_ml::eval`).
//!
//! `cargo run --release -p chrono-ml --bin ml-eval -- [ROWS] [QUERIES] [FEEDBACK]`
//! (defaults: 100,000 rows, 2,000 queries, 1,000 feedback records): the synthetic table.
//!
//! `cargo run --release -p chrono-ml --bin ml-eval -- csv FILE [QUERIES]` (default 1,000
//! queries): a real table from a CSV file with a header row.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, default: usize| {
        args.get(i)
            .and_then(|a| a.replace('_', "").parse().ok())
            .unwrap_or(default)
    };
    if args.get(1).map(String::as_str) == Some("csv") {
        let Some(file) = args.get(2) else {
            eprintln!("usage: ml-eval csv FILE [QUERIES]");
            std::process::exit(2);
        };
        match chrono_ml::eval::run_csv(std::path::Path::new(file), arg(3, 1_000)) {
            Ok(result) => print!("{result}"),
            Err(e) => {
                eprintln!("ml-eval: {file}: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let config = chrono_ml::eval::EvalConfig {
        rows: arg(1, 100_000),
        queries: arg(2, 2_000),
        feedback: arg(3, 1_000),
    };
    print!("{}", chrono_ml::eval::run(config));
}
