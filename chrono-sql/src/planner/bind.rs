//! Binding expressions: names to column positions (or outer columns of an enclosing query),
//! literals to values, functions and operators to [`Expr`] nodes, subqueries to plan nodes,
//! aggregates to the columns of the aggregate node above.

use super::*;

pub(super) fn is_aggregate_name(name: &str) -> Option<AggFunc> {
    Some(match name.to_ascii_lowercase().as_str() {
        "count" => AggFunc::Count,
        "sum" => AggFunc::Sum,
        "avg" => AggFunc::Avg,
        "min" => AggFunc::Min,
        "max" => AggFunc::Max,
        "total" => AggFunc::Total,
        "group_concat" | "string_agg" => AggFunc::GroupConcat,
        _ => return None,
    })
}

/// An aggregate call as written.
pub(super) struct AggAst<'e> {
    pub func: AggFunc,
    pub arg: Option<&'e ast::Expr>,
    pub distinct: bool,
    /// `group_concat`'s separator.
    pub separator: Option<&'e ast::Expr>,
}

/// If `e` is an aggregate call: its function, argument, DISTINCT and separator.
pub(super) fn as_aggregate(e: &ast::Expr) -> Result<Option<AggAst<'_>>> {
    let Some((name, args, distinct)) = e.as_call() else {
        return Ok(None);
    };
    let Some(func) = is_aggregate_name(name) else {
        return Ok(None);
    };
    if matches!(func, AggFunc::Min | AggFunc::Max) && args.len() != 1 {
        return Ok(None); // scalar MIN/MAX of several arguments
    }
    let call = |func, arg, separator| {
        Ok(Some(AggAst {
            func,
            arg,
            distinct,
            separator,
        }))
    };
    match args {
        [ast::FunctionArg::Wildcard] | [] if func == AggFunc::Count => {
            if distinct {
                return Err(Error::InvalidInput(
                    "count(DISTINCT *) is not valid: name a column".into(),
                ));
            }
            call(AggFunc::CountStar, None, None)
        }
        [ast::FunctionArg::Expr(a)] => call(func, Some(a), None),
        [ast::FunctionArg::Expr(a), ast::FunctionArg::Expr(sep)]
            if func == AggFunc::GroupConcat =>
        {
            if distinct {
                return Err(Error::InvalidInput(
                    "DISTINCT aggregates must have exactly one argument".into(),
                ));
            }
            call(func, Some(a), Some(sep))
        }
        _ => Err(Error::InvalidInput(format!(
            "wrong number of arguments to function {name}()"
        ))),
    }
}

/// Whether an expression contains an aggregate call (not looking into subqueries).
#[recursive::recursive]
pub(super) fn contains_aggregate(e: &ast::Expr) -> bool {
    if matches!(as_aggregate(e), Ok(Some(_))) {
        return true;
    }
    use ast::Expr as E;
    match e {
        E::Binary { left, right, .. } | E::IsDistinct { left, right, .. } => {
            contains_aggregate(left) || contains_aggregate(right)
        }
        E::Not(expr)
        | E::Neg(expr)
        | E::IsNull { expr, .. }
        | E::IsBool { expr, .. }
        | E::Cast { expr, .. }
        | E::InSubquery { expr, .. } => contains_aggregate(expr),
        E::Between {
            expr, low, high, ..
        } => contains_aggregate(expr) || contains_aggregate(low) || contains_aggregate(high),
        E::InList { expr, list, .. } => {
            contains_aggregate(expr) || list.iter().any(contains_aggregate)
        }
        E::Like { expr, pattern, .. } => contains_aggregate(expr) || contains_aggregate(pattern),
        E::Case {
            operand,
            whens,
            otherwise,
        } => {
            operand.as_deref().is_some_and(contains_aggregate)
                || whens
                    .iter()
                    .any(|(c, r)| contains_aggregate(c) || contains_aggregate(r))
                || otherwise.as_deref().is_some_and(contains_aggregate)
        }
        E::Function { args, .. } => args
            .iter()
            .any(|a| matches!(a, ast::FunctionArg::Expr(x) if contains_aggregate(x))),
        // A window's own function is not the query's aggregate; what it reads may be.
        E::Window {
            call,
            partition_by,
            order_by,
            ..
        } => {
            let args = match &**call {
                E::Function { args, .. } => args
                    .iter()
                    .any(|a| matches!(a, ast::FunctionArg::Expr(x) if contains_aggregate(x))),
                _ => false,
            };
            args || partition_by.iter().any(contains_aggregate)
                || order_by.iter().any(|o| contains_aggregate(&o.expr))
        }
        E::Column { .. } | E::Literal(_) | E::Param(_) | E::Subquery(_) | E::Exists { .. } => false,
    }
}

/// Where a window call's column is while the select list is bound: `WINDOW_BASE + n` for the
/// n-th call, moved to just after the window node's input columns once they are known.
pub(super) const WINDOW_BASE: usize = usize::MAX / 2;

impl<'a> Planner<'a> {
    // ----------------------------------------------------------------------------------
    // Expressions
    // ----------------------------------------------------------------------------------

    /// Binds an expression against `scope`. Its depth is bounded by the parser's shape
    /// check (`limits.max_expression_depth`), and the recursion grows its stack on demand.
    #[recursive::recursive]
    pub fn bind(&mut self, e: &'a ast::Expr, scope: &Scope) -> Result<Expr> {
        self.bind_inner(e, scope).map(Expr::fold)
    }

    pub(super) fn bind_plain(&mut self, e: &'a ast::Expr, scope: &Scope) -> Result<Expr> {
        let saved = self.agg.take();
        let r = self.bind(e, scope);
        self.agg = saved;
        r
    }

    pub(super) fn bind_inner(&mut self, e: &'a ast::Expr, scope: &Scope) -> Result<Expr> {
        let call_name = || e.as_call().map(|(n, _, _)| n).unwrap_or_default();
        if self.agg.is_some() {
            if let Some(AggAst {
                func,
                arg,
                distinct,
                separator,
            }) = as_aggregate(e)?
            {
                let separator = match separator {
                    None => None,
                    Some(sep) => match self.bind_plain(sep, scope)? {
                        Expr::Literal(v) => Some(v),
                        _ => {
                            return Err(Error::Unsupported(
                                "a group_concat separator that is not a constant".into(),
                            ));
                        }
                    },
                };
                let arg = match arg {
                    Some(a) => {
                        if contains_aggregate(a) {
                            return Err(Error::InvalidInput(format!(
                                "aggregate functions cannot be nested: an aggregate inside {}()",
                                call_name()
                            )));
                        }
                        Some(self.bind_plain(a, scope)?)
                    }
                    None => None,
                };
                return Ok(self.agg_column(AggCall {
                    func,
                    arg,
                    distinct,
                    separator,
                }));
            }
            if !contains_aggregate(e)
                && !matches!(e, ast::Expr::Window { .. })
                && let Ok(plain) = self.bind_plain(e, scope)
            {
                if let Some(ctx) = &self.agg
                    && let Some(i) = ctx.group.iter().position(|g| *g == plain)
                {
                    return Ok(Expr::Column(i));
                }
                if plain.is_constant() {
                    return Ok(plain);
                }
                if matches!(plain, Expr::Column(_)) {
                    return Ok(self.agg_column(AggCall {
                        func: AggFunc::AnyValue,
                        arg: Some(plain),
                        distinct: false,
                        separator: None,
                    }));
                }
            }
        } else if as_aggregate(e)?.is_some() {
            return Err(Error::InvalidInput(format!(
                "aggregate function not allowed here: {}()",
                call_name()
            )));
        }
        let b = |p: &mut Self, x: &'a ast::Expr| p.bind(x, scope).map(Box::new);
        use ast::Expr as A;
        Ok(match e {
            A::Column { qualifier, name } => self.column(qualifier.as_deref(), name, scope)?,
            A::Literal(v) => Expr::Literal(v.clone()),
            A::Param(n) => {
                if *n == 0 || *n > self.params.len() {
                    return Err(Error::InvalidInput(format!(
                        "parameter ${n} has no value ({} given)",
                        self.params.len()
                    )));
                }
                Expr::Param(n - 1)
            }
            A::Not(x) => Expr::Not(b(self, x)?),
            A::Neg(x) => Expr::Neg(b(self, x)?),
            A::Binary { op, left, right } => {
                use ast::BinaryOp as B;
                let (l, r) = (b(self, left)?, b(self, right)?);
                match op {
                    B::Add => Expr::Arith(ArithOp::Add, l, r),
                    B::Sub => Expr::Arith(ArithOp::Sub, l, r),
                    B::Mul => Expr::Arith(ArithOp::Mul, l, r),
                    B::Div => Expr::Arith(ArithOp::Div, l, r),
                    B::Rem => Expr::Arith(ArithOp::Rem, l, r),
                    B::Eq => Expr::Cmp(CmpOp::Eq, l, r),
                    B::NotEq => Expr::Cmp(CmpOp::NotEq, l, r),
                    B::Lt => Expr::Cmp(CmpOp::Lt, l, r),
                    B::LtEq => Expr::Cmp(CmpOp::LtEq, l, r),
                    B::Gt => Expr::Cmp(CmpOp::Gt, l, r),
                    B::GtEq => Expr::Cmp(CmpOp::GtEq, l, r),
                    B::And => Expr::And(l, r),
                    B::Or => Expr::Or(l, r),
                    B::Concat => Expr::Concat(l, r),
                    B::BitAnd => Expr::Func(Func::BitAnd, vec![*l, *r]),
                    B::BitOr => Expr::Func(Func::BitOr, vec![*l, *r]),
                    B::ShiftLeft => Expr::Func(Func::ShiftLeft, vec![*l, *r]),
                    B::ShiftRight => Expr::Func(Func::ShiftRight, vec![*l, *r]),
                }
            }
            A::IsNull { expr, negated } => Expr::IsNull(b(self, expr)?, *negated),
            A::IsBool {
                expr,
                value,
                negated,
            } => is_bool(b(self, expr)?, *value, !*negated),
            A::IsDistinct {
                left,
                right,
                negated,
            } => Expr::IsDistinct(b(self, left)?, b(self, right)?, *negated),
            A::Between {
                expr,
                low,
                high,
                negated,
            } => Expr::Between(b(self, expr)?, b(self, low)?, b(self, high)?, *negated),
            A::InList {
                expr,
                list,
                negated,
            } => {
                let x = b(self, expr)?;
                let items = list
                    .iter()
                    .map(|i| self.bind(i, scope))
                    .collect::<Result<_>>()?;
                Expr::InList(x, items, *negated)
            }
            A::InSubquery {
                expr,
                query,
                negated,
            } => {
                let operand = b(self, expr)?;
                self.subquery(
                    query,
                    SubqueryKind::In {
                        operand,
                        negated: *negated,
                    },
                    scope,
                )?
            }
            A::Like {
                expr,
                pattern,
                negated,
                escape,
            } => Expr::Like(b(self, expr)?, b(self, pattern)?, *negated, *escape),
            A::Case {
                operand,
                whens,
                otherwise,
            } => {
                let operand = operand.as_deref().map(|o| b(self, o)).transpose()?;
                let mut bound = Vec::with_capacity(whens.len());
                for (c, r) in whens {
                    bound.push((self.bind(c, scope)?, self.bind(r, scope)?));
                }
                let otherwise = otherwise.as_deref().map(|x| b(self, x)).transpose()?;
                Expr::Case(operand, bound, otherwise)
            }
            A::Cast { expr, data_type } => Expr::Cast(b(self, expr)?, *data_type),
            A::Function {
                name,
                args,
                distinct,
            } => self.bind_function(name, args, *distinct, scope)?,
            A::Window { .. } => self.bind_window(e, scope)?,
            A::Subquery(q) => self.subquery(q, SubqueryKind::Scalar, scope)?,
            A::Exists { query, negated } => {
                self.subquery(query, SubqueryKind::Exists { negated: *negated }, scope)?
            }
        })
    }

    /// A window function call: its arguments, partition and order bound like the select
    /// list (over the groups in an aggregate query), its frame's offsets evaluated. Gives
    /// the column the window node adds for it (see [`WINDOW_BASE`]).
    fn bind_window(&mut self, window: &'a ast::Expr, scope: &Scope) -> Result<Expr> {
        let Some(outer) = self.windows.take() else {
            return Err(Error::InvalidInput(
                "window functions are allowed only in the select list and ORDER BY, and not \
                 inside another window function"
                    .into(),
            ));
        };
        let r = self.bind_window_parts(window, scope);
        self.windows = Some(outer);
        let w = r?;
        let calls = self.windows.get_or_insert_with(Vec::new);
        let at = match calls.iter().position(|c| *c == w) {
            Some(i) => i,
            None => {
                calls.push(w);
                calls.len() - 1
            }
        };
        Ok(Expr::Column(WINDOW_BASE + at))
    }

    fn bind_window_parts(&mut self, window: &'a ast::Expr, scope: &Scope) -> Result<WindowCall> {
        let ast::Expr::Window {
            call,
            partition_by,
            order_by,
            frame,
        } = window
        else {
            return Err(Error::InvalidInput("internal: not a window call".into()));
        };
        let Some((name, args, distinct)) = call.as_call() else {
            return Err(Error::InvalidInput("OVER needs a function call".into()));
        };
        let lower = name.to_ascii_lowercase();
        let mut bound = Vec::with_capacity(args.len());
        let func = if let Some(agg) = as_aggregate(call)? {
            if agg.distinct {
                return Err(Error::Unsupported(format!(
                    "DISTINCT in the window function {name}()"
                )));
            }
            let separator = match agg.separator {
                None => None,
                Some(sep) => match self.bind(sep, scope)? {
                    Expr::Literal(v) => Some(v),
                    _ => {
                        return Err(Error::Unsupported(
                            "a group_concat separator that is not a constant".into(),
                        ));
                    }
                },
            };
            let arg = agg.arg.map(|a| self.bind(a, scope)).transpose()?;
            WindowFunc::Aggregate(AggCall {
                func: agg.func,
                arg,
                distinct: false,
                separator,
            })
        } else {
            let (func, lo, hi) = match lower.as_str() {
                "row_number" => (WindowFunc::RowNumber, 0, 0),
                "rank" => (WindowFunc::Rank, 0, 0),
                "dense_rank" => (WindowFunc::DenseRank, 0, 0),
                "percent_rank" => (WindowFunc::PercentRank, 0, 0),
                "cume_dist" => (WindowFunc::CumeDist, 0, 0),
                "ntile" => (WindowFunc::Ntile, 1, 1),
                "lag" => (WindowFunc::Lag, 1, 3),
                "lead" => (WindowFunc::Lead, 1, 3),
                "first_value" => (WindowFunc::FirstValue, 1, 1),
                "last_value" => (WindowFunc::LastValue, 1, 1),
                "nth_value" => (WindowFunc::NthValue, 2, 2),
                _ => {
                    return Err(Error::NotFound(format!("no such window function: {name}")));
                }
            };
            if distinct {
                return Err(Error::Unsupported(format!(
                    "DISTINCT in the window function {name}()"
                )));
            }
            if args.len() < lo || args.len() > hi {
                return Err(Error::InvalidInput(format!(
                    "wrong number of arguments to function {name}(): {}",
                    args.len()
                )));
            }
            for a in args {
                match a {
                    ast::FunctionArg::Expr(x) => bound.push(self.bind(x, scope)?),
                    ast::FunctionArg::Wildcard => {
                        return Err(Error::InvalidInput(format!("{name}(*) is not valid")));
                    }
                }
            }
            func
        };
        let partition_by = partition_by
            .iter()
            .map(|e| self.bind(e, scope))
            .collect::<Result<Vec<_>>>()?;
        let mut keys = Vec::with_capacity(order_by.len());
        for o in order_by {
            keys.push(SortKey {
                expr: self.bind(&o.expr, scope)?,
                desc: o.desc,
                nulls_first: o.nulls_first.unwrap_or(!o.desc),
            });
        }
        let frame = match frame {
            None => Frame::default_for(!keys.is_empty()),
            Some(f) => {
                let start = self.frame_bound(&f.start, f.range)?;
                let end = self.frame_bound(&f.end, f.range)?;
                let offset = |b: FrameBound| {
                    matches!(b, FrameBound::Preceding(_) | FrameBound::Following(_))
                };
                if f.range && (offset(start) || offset(end)) && keys.len() != 1 {
                    return Err(Error::InvalidInput(
                        "a RANGE frame with an offset needs exactly one ORDER BY key".into(),
                    ));
                }
                Frame {
                    range: f.range,
                    start,
                    end,
                }
            }
        };
        Ok(WindowCall {
            func,
            args: bound,
            partition_by,
            order_by: keys,
            frame,
        })
    }

    /// A frame bound with its offset evaluated: a constant, not negative (ROWS: whole).
    fn frame_bound(&mut self, b: &'a ast::FrameBound, range: bool) -> Result<FrameBound> {
        let offset = |p: &mut Self, e: &'a ast::Expr| -> Result<f64> {
            let bound = p.bind_plain(e, &Scope::default())?;
            let v = p.value_now(&bound)?;
            let n = match v {
                Value::Int(i) if i >= 0 => i as f64,
                Value::Float(f) if range && f >= 0.0 && f.is_finite() => f,
                other => {
                    return Err(Error::InvalidInput(format!(
                        "a frame offset must be a {} that is not negative, got {other}",
                        if range { "number" } else { "whole number" }
                    )));
                }
            };
            Ok(n)
        };
        Ok(match b {
            ast::FrameBound::UnboundedPreceding => FrameBound::UnboundedPreceding,
            ast::FrameBound::CurrentRow => FrameBound::CurrentRow,
            ast::FrameBound::UnboundedFollowing => FrameBound::UnboundedFollowing,
            ast::FrameBound::Preceding(e) => FrameBound::Preceding(offset(self, e)?),
            ast::FrameBound::Following(e) => FrameBound::Following(offset(self, e)?),
        })
    }

    /// A column of the input as the select list of an aggregate query reads it: the group's
    /// value when it is grouped on, else one row's value (SQLite's bare column); the column
    /// itself outside aggregate queries.
    pub(super) fn grouped(&mut self, plain: Expr) -> Expr {
        let Some(ctx) = &self.agg else {
            return plain;
        };
        if let Some(i) = ctx.group.iter().position(|g| *g == plain) {
            return Expr::Column(i);
        }
        self.agg_column(AggCall {
            func: AggFunc::AnyValue,
            arg: Some(plain),
            distinct: false,
            separator: None,
        })
    }

    pub(super) fn agg_column(&mut self, call: AggCall) -> Expr {
        match self.agg.as_mut() {
            Some(ctx) => {
                let idx = match ctx.aggs.iter().position(|a| *a == call) {
                    Some(i) => i,
                    None => {
                        ctx.aggs.push(call);
                        ctx.aggs.len() - 1
                    }
                };
                Expr::Column(ctx.group.len() + idx)
            }
            None => Expr::Literal(Value::Null),
        }
    }

    pub(super) fn column(
        &mut self,
        qualifier: Option<&str>,
        name: &str,
        scope: &Scope,
    ) -> Result<Expr> {
        if let Some(i) = scope.resolve(qualifier, name)? {
            return Ok(Expr::Column(i));
        }
        if qualifier.is_none()
            && let Some(pos) = self
                .aliases
                .iter()
                .position(|(a, _)| a.eq_ignore_ascii_case(name))
        {
            // A select-list alias (HAVING order_count > 5). Remove it while binding its
            // expression so that an alias naming itself cannot recurse.
            let (alias, ast) = self.aliases.remove(pos);
            let r = self.bind(ast, scope);
            self.aliases.insert(pos, (alias, ast));
            return r;
        }
        if let Some(outer) = &self.outer
            && let Some(i) = outer.resolve(qualifier, name)?
        {
            self.correlated.set(true);
            return Ok(Expr::Outer(i));
        }
        Err(Error::NotFound(match qualifier {
            Some(q) => format!("no such column: {q}.{name}"),
            None => format!("no such column: {name}"),
        }))
    }

    pub(super) fn bind_function(
        &mut self,
        name: &str,
        args: &'a [ast::FunctionArg],
        distinct: bool,
        scope: &Scope,
    ) -> Result<Expr> {
        if distinct {
            return Err(Error::InvalidInput(format!(
                "DISTINCT is only allowed in aggregates, not {name}()"
            )));
        }
        if let Some(e) = self.bind_catalog_lookup(name, args, scope)? {
            return Ok(e);
        }
        let func = Func::by_name(name, args.len())
            .ok_or_else(|| Error::NotFound(format!("no such function: {name}")))?;
        func.check_arity(name, args.len())?;
        Ok(Expr::Func(func, self.bind_args(name, args, scope)?))
    }

    /// A scalar call's arguments, bound (`f(*)` is no scalar call).
    fn bind_args(
        &mut self,
        name: &str,
        args: &'a [ast::FunctionArg],
        scope: &Scope,
    ) -> Result<Vec<Expr>> {
        args.iter()
            .map(|a| match a {
                ast::FunctionArg::Expr(x) => self.bind(x, scope),
                ast::FunctionArg::Wildcard => {
                    Err(Error::InvalidInput(format!("{name}(*) is not valid")))
                }
            })
            .collect()
    }

    /// The catalog functions that look an object up by its id (see
    /// [`crate::system_catalog`]): `x::regclass` (a relation's name from its id, its id from
    /// its name), `pg_get_indexdef(oid [, column, pretty])` and `pg_get_constraintdef(oid [,
    /// pretty])`. Their answers come from the catalog now; an argument known now is looked up
    /// now, any other becomes a CASE over every object. `None` for any other function.
    fn bind_catalog_lookup(
        &mut self,
        name: &str,
        args: &'a [ast::FunctionArg],
        scope: &Scope,
    ) -> Result<Option<Expr>> {
        let lower = name.to_ascii_lowercase();
        let arity = match lower.as_str() {
            "regclass" | "to_regclass" => 1..=1,
            "pg_get_indexdef" => 1..=3,
            "pg_get_constraintdef" => 1..=2,
            _ => return Ok(None),
        };
        if !arity.contains(&args.len()) {
            return Err(Error::InvalidInput(format!(
                "wrong number of arguments to function {name}(): {}",
                args.len()
            )));
        }
        let mut bound = self.bind_args(name, args, scope)?;
        let objects =
            self.system_objects(Snapshot::Transaction(self.txn), ReadAt::Current, false)?;
        self.reusable.set(false);
        let by_id = match lower.as_str() {
            "regclass" | "to_regclass" => objects.relation_names(),
            "pg_get_indexdef" => objects.index_definitions(),
            _ => objects.constraint_definitions(),
        };
        let mut x = bound.remove(0);
        let mut by_id = by_id;
        // `pg_get_indexdef(oid, column, …)` with a column other than 0 is that key column's
        // name: looked up by `oid * 1000 + column` (0 for the whole definition).
        if lower == "pg_get_indexdef" && !bound.is_empty() {
            const PER_INDEX: i64 = 1000;
            let column = bound.remove(0);
            by_id = by_id
                .into_iter()
                .map(|(oid, def)| (oid * PER_INDEX, def))
                .chain(
                    objects
                        .index_columns()
                        .into_iter()
                        .map(|((oid, k), name)| (oid * PER_INDEX + k, name)),
                )
                .collect();
            x = Expr::Arith(
                ArithOp::Add,
                Box::new(Expr::Arith(
                    ArithOp::Mul,
                    Box::new(x),
                    Box::new(Expr::Literal(Value::Int(PER_INDEX))),
                )),
                Box::new(column),
            );
        }
        let mut reads_rows = false;
        x.visit(&mut |e| {
            reads_rows |= matches!(e, Expr::Column(_) | Expr::Outer(_) | Expr::Subquery(_));
        });
        if !reads_rows {
            let v = self.value_now(&x)?;
            return Ok(Some(Expr::Literal(match v {
                Value::Null => Value::Null,
                Value::Text(t) if lower.ends_with("regclass") => {
                    let wanted = t
                        .trim_start_matches("public.")
                        .trim_start_matches("pg_catalog.")
                        .trim_matches('"');
                    match by_id.iter().find(|(_, n)| n.eq_ignore_ascii_case(wanted)) {
                        Some((oid, _)) => Value::Int(*oid),
                        // `to_regclass` answers NULL where the cast is an error.
                        None if lower == "to_regclass" => Value::Null,
                        None => {
                            return Err(Error::NotFound(format!(
                                "relation \"{t}\" does not exist"
                            )));
                        }
                    }
                }
                v => {
                    let oid = crate::types::to_integer(&v);
                    match by_id.into_iter().find(|(id, _)| *id == oid) {
                        Some((_, text)) => Value::Text(text),
                        None if lower.ends_with("regclass") => Value::Text(oid.to_string()),
                        None => Value::Null,
                    }
                }
            })));
        }
        let otherwise = lower.ends_with("regclass").then(|| {
            Box::new(Expr::Cast(
                Box::new(x.clone()),
                crate::types::DataType::Text,
            ))
        });
        let whens = by_id
            .into_iter()
            .map(|(oid, text)| {
                (
                    Expr::Literal(Value::Int(oid)),
                    Expr::Literal(Value::Text(text)),
                )
            })
            .collect();
        Ok(Some(Expr::Case(Some(Box::new(x)), whens, otherwise)))
    }

    /// Plans a subquery as an expression node; it runs when the statement executes. Names
    /// it cannot resolve itself are looked up in `scope`, the enclosing query's columns:
    /// then it is correlated and runs once per row.
    pub(super) fn subquery(
        &mut self,
        q: &'a ast::Query,
        kind: SubqueryKind,
        scope: &Scope,
    ) -> Result<Expr> {
        let mut sub = self.sub();
        sub.outer = Some(Rc::new(scope.clone()));
        let plan = sub.plan_query(q)?;
        let correlated = sub.correlated.get();
        if correlated && self.aggregate_query {
            return Err(Error::Unsupported(
                "a correlated subquery in the select list, HAVING or ORDER BY of an aggregate \
                 query (use it in WHERE, or join)"
                    .into(),
            ));
        }
        if !matches!(kind, SubqueryKind::Exists { .. }) && plan.columns.len() != 1 {
            return Err(Error::InvalidInput(format!(
                "subquery returns {} columns, expected 1",
                plan.columns.len()
            )));
        }
        Ok(Expr::Subquery(Box::new(Subquery {
            plan: Arc::new(plan),
            kind,
            correlated,
        })))
    }
}

/// `x IS [NOT] TRUE/FALSE`: `x IS [NOT] DISTINCT FROM` the boolean, never NULL.
pub(super) fn is_bool(x: Box<Expr>, value: bool, is: bool) -> Expr {
    Expr::IsDistinct(x, Box::new(Expr::Literal(Value::Bool(value))), is)
}
