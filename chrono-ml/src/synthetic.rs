//! A synthetic table with skewed and strongly correlated columns, for evaluating estimators
//! (the evaluation binary, tests and benches share it).
//!
//! `facts(id INT PRIMARY KEY, a INT, b INT, c FLOAT, d TEXT, e INT, f TIMESTAMP)`:
//! - `a`: Zipf-like over 1..=1000 (a few values hold most rows);
//! - `b = a % 37`: a functional dependency on `a`;
//! - `c ≈ a / 2` plus noise: a two-column correlation;
//! - `d`: one of 24 categories, chosen by `c`'s band (correlated with `a` and `c`), 5% NULL;
//! - `e`: uniform over 0..10,000, independent;
//! - `f`: a timestamp rising with `id`.
//!
//! [`Drift::Shifted`] makes rows that follow another correlation (`c ≈ 500 − a / 2`,
//! `b = 7a % 37`), for the drift check.

use chrono_storage::Value;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The table's DDL.
pub const CREATE: &str = "CREATE TABLE facts (id INT PRIMARY KEY, a INT, b INT, c FLOAT, \
                          d TEXT, e INT, f TIMESTAMP)";

/// The columns, in order.
pub const COLUMNS: [&str; 7] = ["id", "a", "b", "c", "d", "e", "f"];

/// Which correlation new rows follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drift {
    /// The original one.
    Original,
    /// Another one.
    Shifted,
}

/// `count` rows with ids from `first_id`.
pub fn rows(first_id: i64, count: usize, drift: Drift, seed: u64) -> Vec<Vec<Value>> {
    let mut rng = StdRng::seed_from_u64(seed);
    // Zipf(1.1) over 1..=1000 by inverse CDF on precomputed weights.
    let weights: Vec<f64> = (1..=1000).map(|k| 1.0 / (k as f64).powf(1.1)).collect();
    let total: f64 = weights.iter().sum();
    let mut cdf = Vec::with_capacity(weights.len());
    let mut acc = 0.0;
    for w in &weights {
        acc += w / total;
        cdf.push(acc);
    }
    (0..count)
        .map(|i| {
            let id = first_id + i as i64;
            let u: f64 = rng.r#gen();
            let a = cdf.partition_point(|&p| p < u).min(999) as i64 + 1;
            let noise: f64 =
                (rng.r#gen::<f64>() + rng.r#gen::<f64>() + rng.r#gen::<f64>() - 1.5) * 8.0;
            let (b, c) = match drift {
                Drift::Original => (a % 37, a as f64 / 2.0 + noise),
                Drift::Shifted => ((a * 7) % 37, 500.0 - a as f64 / 2.0 + noise),
            };
            let c = (c * 100.0).round() / 100.0;
            let d = if rng.gen_bool(0.05) {
                Value::Null
            } else {
                let band = ((c / 21.0) as i64 + rng.gen_range(0..2)).clamp(0, 23);
                Value::Text(format!("cat{band:02}"))
            };
            let e = rng.gen_range(0..10_000);
            let f = 1_600_000_000_000_000 + id * 1_000_000 + rng.gen_range(0..1_000_000);
            vec![
                Value::Int(id),
                Value::Int(a),
                Value::Int(b),
                Value::Float(c),
                d,
                Value::Int(e),
                Value::Timestamp(f),
            ]
        })
        .collect()
}
