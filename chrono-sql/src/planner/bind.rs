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
        _ => return None,
    })
}

pub(super) fn function_args(f: &sql::Function) -> Result<(Vec<&sql::FunctionArgExpr>, bool)> {
    match &f.args {
        sql::FunctionArguments::None => Ok((vec![], false)),
        sql::FunctionArguments::List(list) => {
            let distinct = matches!(
                list.duplicate_treatment,
                Some(sql::DuplicateTreatment::Distinct)
            );
            let mut out = Vec::new();
            for a in &list.args {
                match a {
                    sql::FunctionArg::Unnamed(e) => out.push(e),
                    other => return Err(Error::Unsupported(format!("named argument {other}"))),
                }
            }
            Ok((out, distinct))
        }
        sql::FunctionArguments::Subquery(_) => {
            Err(Error::Unsupported("subquery as function argument".into()))
        }
    }
}

/// If `e` is an aggregate call: (function, argument, distinct).
pub(super) fn as_aggregate(e: &sql::Expr) -> Result<Option<(AggFunc, Option<&sql::Expr>, bool)>> {
    let sql::Expr::Function(f) = e else {
        return Ok(None);
    };
    let name = object_name(&f.name)?;
    let Some(func) = is_aggregate_name(&name) else {
        return Ok(None);
    };
    let (args, distinct) = function_args(f)?;
    if matches!(func, AggFunc::Min | AggFunc::Max) && args.len() != 1 {
        return Ok(None); // scalar MIN/MAX of several arguments
    }
    if f.over.is_some() {
        return Err(Error::Unsupported("window functions".into()));
    }
    match args.as_slice() {
        [sql::FunctionArgExpr::Wildcard] if func == AggFunc::Count => {
            Ok(Some((AggFunc::CountStar, None, false)))
        }
        [] if func == AggFunc::Count => Ok(Some((AggFunc::CountStar, None, false))),
        [sql::FunctionArgExpr::Expr(a)] => Ok(Some((func, Some(a), distinct))),
        _ => Err(Error::InvalidInput(format!(
            "wrong number of arguments to function {name}()"
        ))),
    }
}

/// Whether an expression contains an aggregate call (not looking into subqueries).
#[recursive::recursive]
pub(super) fn contains_aggregate(e: &sql::Expr) -> bool {
    if matches!(as_aggregate(e), Ok(Some(_))) {
        return true;
    }
    use sql::Expr as E;
    match e {
        E::BinaryOp { left, right, .. } => contains_aggregate(left) || contains_aggregate(right),
        E::UnaryOp { expr, .. }
        | E::Nested(expr)
        | E::IsNull(expr)
        | E::IsNotNull(expr)
        | E::IsTrue(expr)
        | E::IsFalse(expr)
        | E::Cast { expr, .. } => contains_aggregate(expr),
        E::Between {
            expr, low, high, ..
        } => contains_aggregate(expr) || contains_aggregate(low) || contains_aggregate(high),
        E::In { expr, target, .. } => {
            contains_aggregate(expr)
                || matches!(target, sql::InTarget::List(l) if l.iter().any(contains_aggregate))
        }
        E::Like { expr, pattern, .. } | E::ILike { expr, pattern, .. } => {
            contains_aggregate(expr) || contains_aggregate(pattern)
        }
        E::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            operand.as_deref().is_some_and(contains_aggregate)
                || conditions
                    .iter()
                    .any(|c| contains_aggregate(&c.condition) || contains_aggregate(&c.result))
                || else_result.as_deref().is_some_and(contains_aggregate)
        }
        E::Function(f) => match function_args(f) {
            Ok((args, _)) => args
                .iter()
                .any(|a| matches!(a, sql::FunctionArgExpr::Expr(x) if contains_aggregate(x))),
            Err(_) => false,
        },
        _ => false,
    }
}

impl<'a> Planner<'a> {
    // ----------------------------------------------------------------------------------
    // Expressions
    // ----------------------------------------------------------------------------------

    /// Binds an expression against `scope`. Its depth is bounded by the parser's shape
    /// check (`limits.max_expression_depth`), and the recursion grows its stack on demand.
    #[recursive::recursive]
    pub fn bind(&mut self, e: &'a sql::Expr, scope: &Scope) -> Result<Expr> {
        self.bind_inner(e, scope).map(Expr::fold)
    }

    pub(super) fn bind_plain(&mut self, e: &'a sql::Expr, scope: &Scope) -> Result<Expr> {
        let saved = self.agg.take();
        let r = self.bind(e, scope);
        self.agg = saved;
        r
    }

    pub(super) fn bind_inner(&mut self, e: &'a sql::Expr, scope: &Scope) -> Result<Expr> {
        use sql::Expr as E;
        if self.agg.is_some() {
            if let Some((func, arg, distinct)) = as_aggregate(e)? {
                let arg = match arg {
                    Some(a) => {
                        if contains_aggregate(a) {
                            return Err(Error::InvalidInput(format!(
                                "aggregate functions cannot be nested: {e}"
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
                }));
            }
            if !contains_aggregate(e)
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
                    }));
                }
            }
        } else if let Some((_, _, _)) = as_aggregate(e)? {
            return Err(Error::InvalidInput(format!(
                "aggregate function not allowed here: {e}"
            )));
        }
        let b = |p: &mut Self, x: &'a sql::Expr| p.bind(x, scope).map(Box::new);
        Ok(match e {
            E::Identifier(id) => self.column(None, &id.value, scope)?,
            E::CompoundIdentifier(parts) => {
                let n = parts.len();
                if n < 2 {
                    return Err(Error::Unsupported(format!("identifier {e}")));
                }
                self.column(Some(&parts[n - 2].value), &parts[n - 1].value, scope)?
            }
            E::Value(v) => self.literal(&v.value)?,
            E::TypedString(ts) => {
                let text = match &ts.value.value {
                    sql::Value::SingleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                let t = DataType::parse(&ts.data_type.to_string())?;
                Expr::Literal(t.coerce(Value::Text(text), "literal")?)
            }
            E::Nested(x) => self.bind(x, scope)?,
            E::UnaryOp { op, expr } => match op {
                sql::UnaryOperator::Not => Expr::Not(b(self, expr)?),
                sql::UnaryOperator::Minus => Expr::Neg(b(self, expr)?),
                sql::UnaryOperator::Plus => self.bind(expr, scope)?,
                other => return Err(Error::Unsupported(format!("operator {other}"))),
            },
            E::BinaryOp { left, op, right } => {
                use sql::BinaryOperator as B;
                let (l, r) = (b(self, left)?, b(self, right)?);
                match op {
                    B::Plus => Expr::Arith(ArithOp::Add, l, r),
                    B::Minus => Expr::Arith(ArithOp::Sub, l, r),
                    B::Multiply => Expr::Arith(ArithOp::Mul, l, r),
                    B::Divide => Expr::Arith(ArithOp::Div, l, r),
                    B::Modulo => Expr::Arith(ArithOp::Rem, l, r),
                    B::Eq => Expr::Cmp(CmpOp::Eq, l, r),
                    B::NotEq => Expr::Cmp(CmpOp::NotEq, l, r),
                    B::Lt => Expr::Cmp(CmpOp::Lt, l, r),
                    B::LtEq => Expr::Cmp(CmpOp::LtEq, l, r),
                    B::Gt => Expr::Cmp(CmpOp::Gt, l, r),
                    B::GtEq => Expr::Cmp(CmpOp::GtEq, l, r),
                    B::And => Expr::And(l, r),
                    B::Or => Expr::Or(l, r),
                    B::StringConcat => Expr::Concat(l, r),
                    other => return Err(Error::Unsupported(format!("operator {other}"))),
                }
            }
            E::IsNull(x) => Expr::IsNull(b(self, x)?, false),
            E::IsNotNull(x) => Expr::IsNull(b(self, x)?, true),
            E::IsTrue(x) => is_bool(b(self, x)?, true, true),
            E::IsFalse(x) => is_bool(b(self, x)?, false, true),
            E::IsNotTrue(x) => is_bool(b(self, x)?, true, false),
            E::IsNotFalse(x) => is_bool(b(self, x)?, false, false),
            E::IsDistinctFrom(x, y) => Expr::IsDistinct(b(self, x)?, b(self, y)?, false),
            E::IsNotDistinctFrom(x, y) => Expr::IsDistinct(b(self, x)?, b(self, y)?, true),
            E::Between {
                expr,
                negated,
                low,
                high,
            } => Expr::Between(b(self, expr)?, b(self, low)?, b(self, high)?, *negated),
            E::In {
                expr,
                target,
                negated,
                ..
            } => {
                let x = b(self, expr)?;
                match target {
                    sql::InTarget::List(list) => {
                        let items = list
                            .iter()
                            .map(|i| self.bind(i, scope))
                            .collect::<Result<_>>()?;
                        Expr::InList(x, items, *negated)
                    }
                    sql::InTarget::Subquery(q) => self.subquery(
                        q,
                        SubqueryKind::In {
                            operand: x,
                            negated: *negated,
                        },
                        scope,
                    )?,
                    other => return Err(Error::Unsupported(format!("IN {other}"))),
                }
            }
            E::Like {
                negated,
                expr,
                pattern,
                escape_char,
                any,
                ..
            }
            | E::ILike {
                negated,
                expr,
                pattern,
                escape_char,
                any,
                ..
            } => {
                if *any {
                    return Err(Error::Unsupported("LIKE ANY".into()));
                }
                let esc = match escape_char.as_deref() {
                    None => None,
                    Some(sql::Expr::Value(v)) => match &v.value {
                        sql::Value::SingleQuotedString(s) if s.chars().count() == 1 => {
                            s.chars().next()
                        }
                        _ => {
                            return Err(Error::InvalidInput("ESCAPE expects one character".into()));
                        }
                    },
                    Some(_) => {
                        return Err(Error::InvalidInput("ESCAPE expects one character".into()));
                    }
                };
                Expr::Like(b(self, expr)?, b(self, pattern)?, *negated, esc)
            }
            E::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let operand = operand.as_deref().map(|o| b(self, o)).transpose()?;
                let mut whens = Vec::with_capacity(conditions.len());
                for c in conditions {
                    whens.push((
                        self.bind(&c.condition, scope)?,
                        self.bind(&c.result, scope)?,
                    ));
                }
                let otherwise = else_result.as_deref().map(|x| b(self, x)).transpose()?;
                Expr::Case(operand, whens, otherwise)
            }
            E::Cast {
                expr, data_type, ..
            } => Expr::Cast(b(self, expr)?, DataType::parse(&data_type.to_string())?),
            E::Function(f) => self.bind_function(f, scope)?,
            E::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                let mut args = vec![self.bind(expr, scope)?];
                args.push(match substring_from {
                    Some(x) => self.bind(x, scope)?,
                    None => Expr::Literal(Value::Int(1)),
                });
                if let Some(x) = substring_for {
                    args.push(self.bind(x, scope)?);
                }
                Expr::Func(Func::Substr, args)
            }
            E::Trim {
                expr,
                trim_where,
                trim_what,
                ..
            } => {
                if trim_what.is_some() {
                    return Err(Error::Unsupported("TRIM(… FROM …)".into()));
                }
                let f = match trim_where {
                    Some(sql::TrimWhereField::Leading) => Func::LTrim,
                    Some(sql::TrimWhereField::Trailing) => Func::RTrim,
                    _ => Func::Trim,
                };
                Expr::Func(f, vec![self.bind(expr, scope)?])
            }
            E::Ceil { expr, .. } => Expr::Func(Func::Ceil, vec![self.bind(expr, scope)?]),
            E::Floor { expr, .. } => Expr::Func(Func::Floor, vec![self.bind(expr, scope)?]),
            E::Subquery(q) => self.subquery(q, SubqueryKind::Scalar, scope)?,
            E::Exists { subquery, negated } => {
                self.subquery(subquery, SubqueryKind::Exists { negated: *negated }, scope)?
            }
            other => return Err(Error::Unsupported(format!("expression {other}"))),
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

    pub(super) fn literal(&self, v: &sql::Value) -> Result<Expr> {
        Ok(Expr::Literal(match v {
            sql::Value::Number(n, _) => match n.parse::<i64>() {
                Ok(i) => Value::Int(i),
                Err(_) => Value::Float(
                    n.parse::<f64>()
                        .map_err(|_| Error::InvalidInput(format!("invalid number {n}")))?,
                ),
            },
            sql::Value::SingleQuotedString(s) | sql::Value::DoubleQuotedString(s) => {
                Value::Text(s.clone())
            }
            sql::Value::Boolean(b) => Value::Bool(*b),
            sql::Value::Null => Value::Null,
            sql::Value::HexStringLiteral(h) => Value::Blob(decode_hex(h)?),
            sql::Value::Placeholder(p) => {
                let n: usize = p
                    .trim_start_matches('$')
                    .parse()
                    .map_err(|_| Error::Syntax(format!("unsupported parameter {p}")))?;
                if n == 0 || n > self.params.len() {
                    return Err(Error::InvalidInput(format!(
                        "parameter ${n} has no value ({} given)",
                        self.params.len()
                    )));
                }
                return Ok(Expr::Param(n - 1));
            }
            other => return Err(Error::Unsupported(format!("literal {other}"))),
        }))
    }

    pub(super) fn bind_function(&mut self, f: &'a sql::Function, scope: &Scope) -> Result<Expr> {
        let name = object_name(&f.name)?;
        let (args, distinct) = function_args(f)?;
        if distinct {
            return Err(Error::InvalidInput(format!(
                "DISTINCT is only allowed in aggregates, not {name}()"
            )));
        }
        let func = Func::by_name(&name, args.len())
            .ok_or_else(|| Error::NotFound(format!("no such function: {name}")))?;
        func.check_arity(&name, args.len())?;
        let mut bound = Vec::with_capacity(args.len());
        for a in args {
            match a {
                sql::FunctionArgExpr::Expr(x) => bound.push(self.bind(x, scope)?),
                _ => return Err(Error::InvalidInput(format!("{name}(*) is not valid"))),
            }
        }
        Ok(Expr::Func(func, bound))
    }

    /// Plans a subquery as an expression node; it runs when the statement executes. Names
    /// it cannot resolve itself are looked up in `scope`, the enclosing query's columns:
    /// then it is correlated and runs once per row.
    pub(super) fn subquery(
        &mut self,
        q: &'a sql::Query,
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

/// Decodes `x'…'`; works on bytes, so any character in the literal is an error, not a
/// slice through the middle of one.
pub(super) fn decode_hex(h: &str) -> Result<Vec<u8>> {
    let bad = || Error::InvalidInput(format!("invalid hex literal x'{h}'"));
    let digit = |b: u8| (b as char).to_digit(16).ok_or_else(bad);
    let bytes = h.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return Err(bad());
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Ok((digit(pair[0])? * 16 + digit(pair[1])?) as u8))
        .collect()
}

/// A column name for an unaliased select item, like SQLite's (the expression's text).
pub(super) fn display_name(e: &sql::Expr) -> String {
    match e {
        sql::Expr::Identifier(i) => i.value.clone(),
        sql::Expr::CompoundIdentifier(parts) => {
            parts.last().map(|p| p.value.clone()).unwrap_or_default()
        }
        other => other.to_string(),
    }
}
