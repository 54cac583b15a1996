//! [`Database::describe`]: what a statement gives and takes, without running it.

use super::*;
use crate::plan::types;
use crate::types::DataType;

/// A statement's result columns and parameters, from its plan (see [`crate::plan::types`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    /// The columns of the rows it gives, with their types (`None`: known only from the
    /// values). Empty for a statement that gives no rows.
    pub columns: Vec<(String, Option<DataType>)>,
    /// One per parameter (`$1`… or `?`), its type where the statement decides it.
    pub params: Vec<Option<DataType>>,
    /// It gives rows (a query, EXPLAIN, or a write with RETURNING).
    pub gives_rows: bool,
}

impl Database {
    /// Describes `p` against the current catalog without running it: nothing is read but
    /// table definitions and nothing is written.
    pub fn describe(&self, p: &Prepared) -> Result<Description> {
        let count = p.param_count;
        let mut params = vec![None; count];
        let no_rows = |params: Vec<Option<DataType>>| Description {
            columns: Vec::new(),
            params,
            gives_rows: false,
        };
        let statement = p.statement();
        if let ast::Statement::Explain {
            analyze,
            optimizers,
            ..
        } = statement
        {
            let columns = super::pipeline::explain_columns(*analyze, *optimizers)
                .iter()
                .map(|&n| {
                    let t = match n {
                        "estimated_rows" | "actual_rows" => DataType::Int,
                        "time_ms" => DataType::Float,
                        _ => DataType::Text,
                    };
                    (n.to_string(), Some(t))
                })
                .collect();
            return Ok(Description {
                columns,
                params,
                gives_rows: true,
            });
        }
        if !matches!(
            statement,
            ast::Statement::Query(_)
                | ast::Statement::Insert(_)
                | ast::Statement::Update(_)
                | ast::Statement::Delete(_)
        ) {
            return Ok(no_rows(params));
        }
        let values = vec![Value::Null; count];
        let txn = self.store().begin();
        let limits = self.limits();
        let guard = Rc::new(StatementGuard::new(&limits, CancelToken::new(), None));
        let _entered = guard.enter();
        let estimator = self.shared.estimator.read().clone();
        let s = Stmt {
            p,
            params: &values,
            est: estimator.as_ref(),
            guard: &guard,
        };
        let mut planner = self.planner(&txn, &s);
        let plan = match statement {
            ast::Statement::Query(q) => planner.plan_query(q)?,
            ast::Statement::Insert(i) => planner.plan_insert(i)?,
            ast::Statement::Update(u) => planner.plan_update(u)?,
            ast::Statement::Delete(d) => planner.plan_delete(d)?,
            _ => return Ok(no_rows(params)),
        };
        let column_types = types::output_types(&plan, &mut params);
        let gives_rows = statement.is_query() || !plan.columns.is_empty();
        Ok(Description {
            columns: plan
                .columns
                .iter()
                .zip(column_types)
                .map(|(c, t)| (c.name.clone(), t))
                .collect(),
            params,
            gives_rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(db: &Database, sql: &str) -> Description {
        let p = crate::parse(sql).unwrap().remove(0);
        db.describe(&p).unwrap()
    }

    #[test]
    fn columns_and_parameters_take_the_types_of_what_they_meet() {
        let db = Database::in_memory();
        db.execute(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, name TEXT, price DOUBLE, seen TIMESTAMP, ok BOOLEAN)",
        )
        .unwrap();
        let d = describe(
            &db,
            "SELECT id, name || '!', price * 2, count(*) OVER (), seen FROM t \
             WHERE id = $1 AND name LIKE $2 AND price BETWEEN $3 AND 10 AND ok = $4",
        );
        use DataType::*;
        let types: Vec<_> = d.columns.iter().map(|c| c.1).collect();
        assert_eq!(
            types,
            vec![
                Some(Int),
                Some(Text),
                Some(Float),
                Some(Int),
                Some(Timestamp)
            ]
        );
        assert_eq!(
            d.params,
            vec![Some(Int), Some(Text), Some(Float), Some(Bool)]
        );
        assert!(d.gives_rows);

        let d = describe(&db, "INSERT INTO t (name, id) VALUES ($1, $2)");
        assert_eq!(d.params, vec![Some(Text), Some(Int)]);
        assert!(!d.gives_rows && d.columns.is_empty());

        let d = describe(
            &db,
            "UPDATE t SET seen = $1 WHERE id IN ($2, 3) RETURNING id, price",
        );
        assert_eq!(d.params, vec![Some(Timestamp), Some(Int)]);
        assert_eq!(
            d.columns,
            vec![("id".into(), Some(Int)), ("price".into(), Some(Float))]
        );

        let d = describe(&db, "SELECT count(*), avg(price), max(name), NULL FROM t");
        let types: Vec<_> = d.columns.iter().map(|c| c.1).collect();
        assert_eq!(types, vec![Some(Int), Some(Float), Some(Text), None]);

        let d = describe(
            &db,
            "SELECT * FROM t WHERE id IN (SELECT id FROM t WHERE name = $1)",
        );
        assert_eq!(d.params, vec![Some(Text)]);

        let d = describe(&db, "CREATE TABLE u (a INT PRIMARY KEY)");
        assert!(!d.gives_rows);
        // Nothing ran.
        assert!(db.execute("SELECT * FROM u").is_err());
    }
}
