//! Prints the learned estimator's evaluation table (see `chrono_ml::eval`).
//!
//! `cargo run --release -p chrono-ml --bin ml-eval -- [ROWS] [QUERIES] [FEEDBACK]`
//! (defaults: 100,000 rows, 2,000 queries, 1,000 feedback records).

fn main() {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.replace('_', "").parse().ok())
            .unwrap_or(default)
    };
    let config = chrono_ml::eval::EvalConfig {
        rows: arg(1, 100_000),
        queries: arg(2, 2_000),
        feedback: arg(3, 1_000),
    };
    print!("{}", chrono_ml::eval::run(config));
}
