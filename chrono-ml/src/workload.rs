//! Training queries drawn from a table's own rows (cold start), and their true
//! cardinalities.
//!
//! A query has 1–4 atoms on distinct columns. Its centre is a real row, so most queries
//! match something; literals come from that row (equalities, IN lists with values of other
//! rows, one-sided ranges, BETWEEN with the other end from another row, LIKE prefixes of
//! text), and about one atom in ten is out of distribution (a value beyond the column's
//! range or one that does not occur), so the model also learns what empty looks like.

use chrono_sql::TableStats;
use chrono_storage::Value;
use rand::Rng;
use rand::rngs::StdRng;

use crate::atoms::{Atom, Op};
use crate::columnar::Columnar;

/// Draws `count` queries over `rows` (each `width` wide).
pub fn generate(
    rows: &[Vec<Value>],
    stats: &TableStats,
    count: usize,
    rng: &mut StdRng,
) -> Vec<Vec<Atom>> {
    let width = stats.columns.len();
    // Columns with something to filter on.
    let usable: Vec<usize> = (0..width)
        .filter(|&c| stats.columns[c].distinct > 0)
        .collect();
    if rows.is_empty() || usable.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let k = rng.gen_range(1..=usable.len().min(4));
        let mut cols = usable.clone();
        for i in 0..k {
            let j = rng.gen_range(i..cols.len());
            cols.swap(i, j);
        }
        let centre = &rows[rng.gen_range(0..rows.len())];
        let atoms: Vec<Atom> = cols[..k]
            .iter()
            .filter_map(|&c| atom_for(c, centre, rows, stats, rng))
            .collect();
        if !atoms.is_empty() {
            out.push(atoms);
        }
    }
    out
}

fn random_value(c: usize, rows: &[Vec<Value>], rng: &mut StdRng) -> Value {
    rows[rng.gen_range(0..rows.len())][c].clone()
}

/// A value the column does not hold: beyond its largest, or between values.
fn out_of_distribution(v: &Value, stats: &TableStats, c: usize, rng: &mut StdRng) -> Value {
    let top = stats.columns[c]
        .histogram
        .last()
        .into_iter()
        .chain(stats.columns[c].mcv.iter().map(|(m, _)| m))
        .max_by(|a, b| a.total_cmp(b))
        .cloned();
    match (v, top) {
        (Value::Int(_), Some(Value::Int(t))) => {
            Value::Int(t.saturating_add(rng.gen_range(1..1000)))
        }
        (Value::Float(_), Some(Value::Float(t))) => {
            Value::Float(t + t.abs().max(1.0) * rng.r#gen::<f64>())
        }
        (Value::Timestamp(_), Some(Value::Timestamp(t))) => {
            Value::Timestamp(t.saturating_add(rng.gen_range(1..1_000_000_000)))
        }
        (Value::Text(s), _) => Value::Text(format!("{s}~{}", rng.gen_range(0..1000))),
        _ => v.clone(),
    }
}

fn atom_for(
    c: usize,
    centre: &[Value],
    rows: &[Vec<Value>],
    stats: &TableStats,
    rng: &mut StdRng,
) -> Option<Atom> {
    let v = centre[c].clone();
    if v.is_null() {
        let op = if rng.gen_bool(0.5) {
            Op::IsNull
        } else {
            Op::IsNotNull
        };
        return Atom::rebuild(c, op, vec![]);
    }
    let v = if rng.gen_bool(0.1) {
        out_of_distribution(&v, stats, c, rng)
    } else {
        v
    };
    let few = stats.columns[c].distinct <= 64;
    let text = matches!(v, Value::Text(_));
    let roll: f64 = rng.r#gen();
    let (op, values) = if few {
        match roll {
            r if r < 0.55 => (Op::Eq, vec![v]),
            r if r < 0.75 => (Op::In, in_list(c, v, rows, rng)),
            r if r < 0.8 => (Op::NotEq, vec![v]),
            _ => range(c, v, rows, rng),
        }
    } else {
        match roll {
            r if r < 0.25 => (Op::Eq, vec![v]),
            r if r < 0.32 => (Op::In, in_list(c, v, rows, rng)),
            r if r < 0.42 && text => {
                let Value::Text(s) = &v else { unreachable!() };
                let chars: Vec<char> = s.chars().collect();
                if chars.is_empty() {
                    (Op::Eq, vec![v])
                } else {
                    let n = rng.gen_range(1..=chars.len().min(4));
                    (
                        Op::LikePrefix,
                        vec![Value::Text(chars[..n].iter().collect())],
                    )
                }
            }
            _ => range(c, v, rows, rng),
        }
    };
    Atom::rebuild(c, op, values)
}

/// `v` and one to three values of other rows (NULLs left out).
fn in_list(c: usize, v: Value, rows: &[Vec<Value>], rng: &mut StdRng) -> Vec<Value> {
    let mut list = vec![v];
    for _ in 0..rng.gen_range(1..4) {
        list.push(random_value(c, rows, rng));
    }
    list.retain(|x| !x.is_null());
    list
}

fn range(c: usize, v: Value, rows: &[Vec<Value>], rng: &mut StdRng) -> (Op, Vec<Value>) {
    match rng.gen_range(0..5) {
        0 => (Op::Lt, vec![v]),
        1 => (Op::Le, vec![v]),
        2 => (Op::Gt, vec![v]),
        3 => (Op::Ge, vec![v]),
        _ => {
            let other = random_value(c, rows, rng);
            if other.is_null() {
                (Op::Ge, vec![v])
            } else if other.total_cmp(&v).is_lt() {
                (Op::Between, vec![other, v])
            } else {
                (Op::Between, vec![v, other])
            }
        }
    }
}

/// Rows matching all atoms in `data`, scaled from `data`'s rows to `rows`.
pub fn label(data: &Columnar, atoms: &[Atom], rows: f64) -> f64 {
    if data.is_empty() {
        return 0.0;
    }
    let hits = data.eval_all(atoms).count() as f64;
    hits * rows / data.len() as f64
}
