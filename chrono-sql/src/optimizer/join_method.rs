//! The join-method pass: a Join becomes a left-deep tree of binary joins in the chosen
//! order. Each step with equality conditions between the two sides is a hash join (built on
//! the smaller side of an inner join), or an index nested-loop join when the right side is a
//! table whose primary key or an index covers the join keys and looking rows up costs less
//! than reading the right side once and hashing; a step without one is a nested-loop
//! join.

use std::sync::Arc;

use chrono_storage::Value;

use super::Env;
use super::join_order::equi_join_estimate;
use super::pushdown::{offsets, relation_of};
use crate::catalog::TableDef;
use crate::cost::{INDEX_ENTRY_COST, SEEK_COST, SEQUENTIAL_ROW_COST};
use crate::error::{Error, Result};
use crate::expr::{CmpOp, Expr};
use crate::plan::{Access, JoinKind, Lookup, Node, Plan, ReadAt};

/// Turns every Join into binary joins; refreshes the estimates of the nodes above.
pub(super) fn run(root: &mut Plan, env: &Env<'_>) -> Result<()> {
    if !matches!(root.node, Node::Join { .. }) {
        return Ok(());
    }
    let columns = root.columns.clone();
    let Node::Join {
        inputs: rels,
        kinds,
        on,
        at: mut at_join,
        after: mut after_join,
        order,
    } = std::mem::replace(&mut root.node, Node::Values { rows: Vec::new() })
    else {
        return Ok(());
    };
    if on.iter().any(|c| !c.is_empty()) || rels.is_empty() {
        return Err(Error::InvalidInput(
            "internal: join conditions not placed".into(),
        ));
    }
    let offsets = offsets(&rels);
    let rel_of = |col: usize| relation_of(&offsets, col);
    let total_width = columns.len();
    let reorder = !order.is_empty();
    let order: Vec<usize> = if reorder {
        order
    } else {
        (0..rels.len()).collect()
    };
    let mut step_conds: Vec<Vec<Expr>> = vec![Vec::new(); rels.len()];
    if reorder {
        let position = |r: usize| order.iter().position(|&x| x == r).unwrap_or(0);
        for c in at_join.iter_mut().flat_map(|v| v.drain(..)) {
            let at = c
                .columns()
                .iter()
                .map(|&col| position(rel_of(col)))
                .max()
                .unwrap_or(0)
                .max(1);
            step_conds[at].push(c);
        }
    } else {
        for (j, conds) in at_join.iter_mut().enumerate() {
            step_conds[j] = std::mem::take(conds);
        }
    }
    // Where each column of the FROM list sits in the plan built so far.
    let mut pos: Vec<usize> = (0..total_width).collect();
    let mut rels: Vec<Option<Plan>> = rels.into_iter().map(Some).collect();
    let first = order[0];
    let Some(mut plan) = rels[first].take() else {
        return Err(Error::InvalidInput("empty FROM".into()));
    };
    let mut width = 0;
    for i in 0..plan.columns.len() {
        pos[offsets[first] + i] = i;
    }
    width += plan.columns.len();
    for cond in after_join[first].drain(..) {
        plan = Plan::filter(plan, cond.map_columns(&|c| pos[c]));
    }
    for cond in step_conds[0].drain(..) {
        plan = Plan::filter(plan, cond.map_columns(&|c| pos[c]));
    }
    for (k, &j) in order.iter().enumerate().skip(1) {
        let Some(right) = rels[j].take() else {
            continue;
        };
        let off = width;
        for i in 0..right.columns.len() {
            pos[offsets[j] + i] = off + i;
        }
        width += right.columns.len();
        let mut left_keys = Vec::new();
        let mut right_keys = Vec::new();
        let mut residual = Vec::new();
        for c in step_conds[k].drain(..) {
            let c = c.map_columns(&|x| pos[x]);
            if let Expr::Cmp(CmpOp::Eq, a, b) = &c {
                let side = |e: &Expr| {
                    let cols = e.columns();
                    if cols.is_empty() {
                        0
                    } else if cols.iter().all(|&x| x < off) {
                        1
                    } else if cols.iter().all(|&x| x >= off) {
                        2
                    } else {
                        0
                    }
                };
                match (side(a), side(b)) {
                    (1, 2) => {
                        left_keys.push((**a).clone());
                        right_keys.push(b.map_columns(&|x| x - off));
                        continue;
                    }
                    (2, 1) => {
                        left_keys.push((**b).clone());
                        right_keys.push(a.map_columns(&|x| x - off));
                        continue;
                    }
                    _ => {}
                }
            }
            residual.push(c);
        }
        let kind = kinds[j];
        let mut columns = plan.columns.clone();
        columns.extend(right.columns.iter().cloned());
        let (l, r) = (plan.est_rows, right.est_rows);
        plan = if left_keys.is_empty() {
            let est = (l * r * if residual.is_empty() { 1.0 } else { 0.1 })
                .max(if kind == JoinKind::Left { l } else { 0.0 });
            Plan {
                node: Node::NestedLoop {
                    left: Box::new(plan),
                    right: Box::new(right),
                    kind,
                    predicate: Expr::all_of(residual),
                },
                est_rows: est,
                estimator: "heuristic",
                columns,
            }
        } else if let Some(lookup) = index_join(env, &plan, &right, &left_keys, &right_keys, off) {
            let IndexJoinChoice {
                table,
                label,
                read_at,
                filter,
                lookup,
                keys,
                extra,
                per_row,
            } = lookup;
            residual.extend(extra);
            Plan {
                node: Node::IndexJoin {
                    left: Box::new(plan),
                    table,
                    label,
                    read_at,
                    lookup,
                    left_keys: keys,
                    right_filter: filter,
                    kind,
                    residual: Expr::all_of(residual),
                },
                est_rows: (l * per_row).min(l * r).max(if kind == JoinKind::Left {
                    l
                } else {
                    0.0
                }),
                estimator: "heuristic",
                columns,
            }
        } else {
            let (est, estimator) = equi_join_estimate(env, &plan, &right, &left_keys, &right_keys);
            let est = est.max(if kind == JoinKind::Left { l } else { 0.0 });
            let build_left = kind == JoinKind::Inner && l < r;
            Plan {
                node: Node::HashJoin {
                    left: Box::new(plan),
                    right: Box::new(right),
                    left_keys,
                    right_keys,
                    kind,
                    residual: Expr::all_of(residual),
                    build_left,
                },
                est_rows: est,
                estimator,
                columns,
            }
        };
        for cond in after_join[j].drain(..) {
            plan = Plan::filter(plan, cond.map_columns(&|c| pos[c]));
        }
    }
    if reorder && pos.iter().enumerate().any(|(g, &p)| g != p) {
        // Back to the FROM list's column order.
        let est = plan.est_rows;
        let estimator = plan.estimator;
        plan = Plan {
            node: Node::Project {
                input: Box::new(plan),
                exprs: pos.iter().map(|&p| Expr::Column(p)).collect(),
            },
            est_rows: est,
            estimator,
            columns: columns.clone(),
        };
    }
    *root = plan;
    Ok(())
}

/// Whether to join by looking `right` up per left row (its primary key or an index
/// covers the join keys) instead of hashing it: when the lookups cost less than reading
/// the right side once and hashing (costs in [`SEQUENTIAL_ROW_COST`] units).
fn index_join(
    env: &Env<'_>,
    left: &Plan,
    right: &Plan,
    left_keys: &[Expr],
    right_keys: &[Expr],
    off: usize,
) -> Option<IndexJoinChoice> {
    let Node::Scan {
        table,
        label,
        read_at,
        filter,
        ..
    } = &right.node
    else {
        return None;
    };
    if matches!(read_at, ReadAt::Versions(_)) {
        return None;
    }
    let scan = env.stats.for_scan(table, read_at.time(env.params));
    let right_total = scan.estimate(env.estimator, table, None).rows;
    // Right key column → the left expression it must equal.
    let mut by_column: Vec<(usize, Expr)> = Vec::new();
    for (lk, rk) in left_keys.iter().zip(right_keys) {
        if let Expr::Column(c) = rk
            && !by_column.iter().any(|(x, _)| x == c)
        {
            by_column.push((*c, lk.clone()));
        }
    }
    let key_for = |c: usize| {
        by_column
            .iter()
            .find(|(x, _)| *x == c)
            .map(|(_, e)| e.clone())
    };
    let (lookup, cols): (Lookup, Vec<usize>) = if !table.primary_key.is_empty()
        && table.primary_key.iter().all(|&c| key_for(c).is_some())
    {
        (Lookup::PrimaryKey, table.primary_key.clone())
    } else {
        let best = table
            .indexes
            .iter()
            .map(|ix| {
                (
                    ix,
                    ix.columns
                        .iter()
                        .take_while(|&&c| key_for(c).is_some())
                        .count(),
                )
            })
            .filter(|(_, n)| *n > 0)
            .max_by_key(|(ix, n)| (*n, ix.unique))?;
        (
            Lookup::Index(best.0.clone()),
            best.0.columns[..best.1].to_vec(),
        )
    };
    let keys: Vec<Expr> = cols.iter().filter_map(|&c| key_for(c)).collect();
    // Join keys the lookup does not cover are checked on the joined row.
    let extra = left_keys
        .iter()
        .zip(right_keys)
        .filter(|(_, rk)| !matches!(rk, Expr::Column(c) if cols.contains(c)))
        .map(|(lk, rk)| {
            Expr::Cmp(
                CmpOp::Eq,
                Box::new(lk.clone()),
                Box::new(rk.map_columns(&|x| x + off)),
            )
        })
        .collect();
    // Rows per distinct value of the first looked-up column (the estimator's default
    // equality selectivity without statistics).
    let per_row = match &lookup {
        Lookup::PrimaryKey => 1.0,
        Lookup::Index(_) => {
            let distinct = scan
                .stats
                .as_ref()
                .and_then(|s| s.columns.get(cols[0]))
                .map(|c| c.distinct as f64)
                .filter(|d| *d > 0.0);
            match distinct {
                Some(d) => right_total / d,
                None => {
                    right_total
                        * crate::cost::selectivity(
                            None,
                            &Expr::Cmp(
                                CmpOp::Eq,
                                Box::new(Expr::Column(cols[0])),
                                Box::new(Expr::Literal(Value::Int(0))),
                            ),
                        )
                }
            }
        }
    };
    // Looking up costs a seek per left row and, through an index, a fetch per matching
    // row; hashing costs one pass over what the right side's scan reads plus a hash
    // build or probe per row of either side.
    // An index entry read, then the row it names fetched by key.
    let fetch = scan.fetch_cost() + INDEX_ENTRY_COST;
    let lookups = left.est_rows
        * (SEEK_COST
            + match &lookup {
                Lookup::PrimaryKey => 0.0,
                Lookup::Index(_) => per_row * fetch,
            });
    let right_read = match right.node {
        Node::Scan {
            access: Access::Full,
            ..
        } => right_total * SEQUENTIAL_ROW_COST,
        Node::Scan {
            access: Access::Index(..),
            ..
        } => SEEK_COST + right.est_rows * fetch,
        _ => SEEK_COST + right.est_rows * SEQUENTIAL_ROW_COST,
    };
    if lookups >= right_read + (left.est_rows + right.est_rows) * SEQUENTIAL_ROW_COST {
        return None;
    }
    Some(IndexJoinChoice {
        per_row,
        table: table.clone(),
        label: label.clone(),
        read_at: *read_at,
        filter: filter.clone(),
        lookup,
        keys,
        extra,
    })
}

struct IndexJoinChoice {
    table: Arc<TableDef>,
    label: String,
    read_at: ReadAt,
    filter: Option<Expr>,
    lookup: Lookup,
    keys: Vec<Expr>,
    extra: Vec<Expr>,
    /// Estimated right rows per left row.
    per_row: f64,
}
