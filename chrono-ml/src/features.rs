//! Featurization of a conjunctive filter on one table, in the spirit of MSCN (Kipf et al.,
//! CIDR 2019): a set of per-atom vectors (pooled by the model) plus table-level features.
//!
//! Per atom ([`ATOM_FEATURES`]):
//! - the column, one-hot over [`COLUMN_SLOTS`] slots (position modulo the slots);
//! - the operator, one-hot over [`Op::ALL`];
//! - the literal normalized into the column's domain: the fraction of rows below the low
//!   end and at or below the high end of the range it selects (from the column's
//!   statistics, so text and timestamps work as numbers do);
//! - the statistics' estimate for the atom alone and the sample's, as log-cardinalities,
//!   and whether the sample had no match.
//!
//! Table level ([`GLOBAL_FEATURES`]): log row count, number of atoms, and for the whole
//! conjunction the sample's estimate, the statistics' (independence) estimate, the
//! product of the sample's per-atom estimates, the smallest per-atom estimates and whether
//! the sample had no match. Log-cardinalities are `ln(rows)/ln(table rows)`, so 1 is the
//! whole table and 0 one row — the unit of the model's output too.

use chrono_sql::TableStats;
use chrono_sql::cost::{known_rows, selectivity};
use chrono_sql::expr::{CmpOp, Expr};
use chrono_storage::Value;

use crate::atoms::{Atom, Op};
use crate::columnar::{Bitmap, Columnar};

/// Column one-hot slots.
pub const COLUMN_SLOTS: usize = 16;
/// Features per atom.
pub const ATOM_FEATURES: usize = COLUMN_SLOTS + 12 + 5;
/// Table-level features.
pub const GLOBAL_FEATURES: usize = 9;
/// Atoms the model looks at (more are folded into the table-level features only).
pub const MAX_ATOMS: usize = 8;

/// A featurized filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// One vector per atom (at most [`MAX_ATOMS`]).
    pub atoms: Vec<[f32; ATOM_FEATURES]>,
    /// Table-level features.
    pub globals: [f32; GLOBAL_FEATURES],
    /// `ln(table rows)`: the scale between the model's unit and natural logarithms.
    pub scale: f32,
    /// Rows the filter surely matches at least and at most: the sample's confidence
    /// interval (three standard deviations) and, for atoms the statistics know exactly, the
    /// fewest rows one of them matches. An estimate is clamped into it.
    pub bounds: (f64, f64),
    /// A filter of one atom the statistics know (every value of its column kept): their
    /// rows, which the estimate is.
    pub known: Option<f64>,
}

/// What featurization needs of a table: its statistics and a sample of its rows.
pub struct TableContext {
    /// Rows when analyzed.
    pub rows: f64,
    /// Statistics when analyzed.
    pub stats: TableStats,
    /// A uniform sample of rows.
    pub sample: Columnar,
}

impl TableContext {
    /// `ln(max(card, 1)) / ln(rows)`: a cardinality in the model's unit.
    pub fn unit(&self, card: f64) -> f32 {
        (card.max(1.0).ln() / self.scale()) as f32
    }

    /// A cardinality from the model's unit.
    pub fn from_unit(&self, u: f32) -> f64 {
        (f64::from(u) * self.scale()).exp()
    }

    fn scale(&self) -> f64 {
        self.rows.max(2.0).ln()
    }

    /// The sample's estimate of rows matching all atoms (with the rows it matched).
    fn sample_estimate(&self, hits: u64) -> f64 {
        let n = self.sample.len() as f64;
        if n == 0.0 {
            return self.rows;
        }
        self.rows * (hits as f64 + 0.5) / (n + 1.0)
    }

    /// The rows a filter matches at least and at most, from its hits in the sample (a
    /// binomial's mean ± three standard deviations, and at most ~3/n when it had none) and
    /// the exact rows of its most selective atom the statistics know exactly.
    fn bounds(&self, hits: u64, exact_min: f64) -> (f64, f64) {
        let n = self.sample.len() as f64;
        if n == 0.0 {
            return (0.0, exact_min);
        }
        let k = hits as f64;
        let spread = 3.0 * (k * (1.0 - k / n)).max(0.0).sqrt();
        let scale = self.rows / n;
        let lower = ((k - spread).max(0.0) * scale).min(exact_min);
        let upper = ((k + spread + 3.0) * scale).min(exact_min).min(self.rows);
        (lower, upper.max(lower))
    }

    /// The features of a filter's atoms.
    pub fn featurize(&self, atoms: &[Atom]) -> Features {
        let stats = Some(&self.stats);
        let mut all = Bitmap::full(self.sample.len());
        let mut out = Vec::with_capacity(atoms.len().min(MAX_ATOMS));
        let (mut base_product, mut sample_product) = (1.0f64, 1.0f64);
        let (mut base_min, mut sample_min) = (self.rows, self.rows);
        let mut exact_min = self.rows;
        let mut single = None;
        for a in atoms {
            let hits = self.sample.eval(a);
            let k = hits.count();
            all.and(&hits);
            let base = self.rows * selectivity(stats, &a.expr).clamp(0.0, 1.0);
            let known = known_rows(&self.stats, &a.expr, base);
            if let Some(at_most) = known {
                exact_min = exact_min.min(at_most);
            }
            if atoms.len() == 1 {
                single = known.map(|_| base);
            }
            let sampled = self.sample_estimate(k);
            base_product *= base / self.rows.max(1.0);
            sample_product *= sampled / self.rows.max(1.0);
            base_min = base_min.min(base);
            sample_min = sample_min.min(sampled);
            if out.len() == MAX_ATOMS {
                continue;
            }
            let mut f = [0f32; ATOM_FEATURES];
            if let Some(c) = a.col {
                f[c % COLUMN_SLOTS] = 1.0;
            }
            f[COLUMN_SLOTS + a.op.index()] = 1.0;
            let (lo, hi) = self.domain_range(a);
            let at = COLUMN_SLOTS + 12;
            f[at] = lo;
            f[at + 1] = hi;
            f[at + 2] = self.unit(base);
            f[at + 3] = self.unit(sampled);
            f[at + 4] = if k == 0 { 1.0 } else { 0.0 };
            out.push(f);
        }
        let k = all.count();
        let n = self.sample.len().max(1) as f32;
        let globals = [
            (self.scale() / 20.0) as f32,
            atoms.len() as f32 / 4.0,
            k as f32 / n,
            self.unit(self.sample_estimate(k)),
            if k == 0 { 1.0 } else { 0.0 },
            self.unit(self.rows * base_product),
            self.unit(self.rows * sample_product),
            self.unit(base_min),
            self.unit(sample_min),
        ];
        Features {
            atoms: out,
            globals,
            scale: self.scale() as f32,
            bounds: self.bounds(k, exact_min),
            known: single,
        }
    }

    /// The fraction of rows below the low end and at or below the high end of the range an
    /// atom selects, from the column's statistics.
    fn domain_range(&self, a: &Atom) -> (f32, f32) {
        let Some(c) = a.col else { return (0.0, 1.0) };
        let stats = Some(&self.stats);
        let below = |op: CmpOp, v: &Value| -> f32 {
            let e = Expr::Cmp(
                op,
                Box::new(Expr::Column(c)),
                Box::new(Expr::Literal(v.clone())),
            );
            selectivity(stats, &e).clamp(0.0, 1.0) as f32
        };
        let lt = |v: &Value| below(CmpOp::Lt, v);
        let le = |v: &Value| below(CmpOp::LtEq, v);
        let v = &a.values;
        match a.op {
            Op::Eq | Op::NotEq => (lt(&v[0]), le(&v[0])),
            Op::Lt => (0.0, lt(&v[0])),
            Op::Le => (0.0, le(&v[0])),
            Op::Gt => (le(&v[0]), 1.0),
            Op::Ge => (lt(&v[0]), 1.0),
            Op::Between => (lt(&v[0]), le(&v[1])),
            Op::In if !v.is_empty() => {
                let lo = v.iter().map(lt).fold(1.0f32, f32::min);
                let hi = v.iter().map(le).fold(0.0f32, f32::max);
                (lo, hi.max(lo))
            }
            Op::LikePrefix => match &v[0] {
                Value::Text(p) => {
                    let mut end = p.clone();
                    end.push(char::MAX);
                    (lt(&v[0]), le(&Value::Text(end)))
                }
                _ => (0.0, 1.0),
            },
            _ => (0.0, 1.0),
        }
    }
}
