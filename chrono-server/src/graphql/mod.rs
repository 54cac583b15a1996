//! GraphQL at `/graphql` on the HTTP server (`server.http`, `chronodb serve --http ADDR`).
//!
//! The schema is built from the catalog (and built again when the catalog changes): one
//! object type per table with a typed field per column; a root field per table taking the
//! primary key or any column as an equality filter, `orderBy` (`"column"` or `"column
//! DESC"`), `limit`, `offset` and `asOf` (Unix seconds or ISO-8601: the whole tree below it
//! is read as of that time); and relations from `REFERENCES` in both directions (the
//! referenced row as a field named after the referencing column without `_id`, and the
//! referencing rows as a field named after their table), fetched in one query per relation
//! and level, never one per parent row. `<table>History(<columns>)` lists every version
//! with `_systemFrom`/`_systemTo`; mutations `insert_<table>`, `update_<table>(…, set:
//! {…})` and `delete_<table>` run as the request's principal and return the commit time.
//! Subscriptions `<table>(from:, where:)` follow the change feed over a WebSocket
//! (graphql-transport-ws; see [`crate::http`]). Query depth and complexity are limited
//! (`server.graphql_max_depth`, `server.graphql_max_complexity`). Errors follow the GraphQL
//! spec, with the SQL error's kind in `extensions.kind`.
//!
//! ```graphql
//! query { users(id: 1) { name email orders { total status } } }
//! ```

pub mod limits;
pub mod names;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::dynamic::{
    Field, FieldFuture, FieldValue, InputObject, InputValue, Object, ResolverContext, Scalar,
    Schema, Subscription, SubscriptionField, SubscriptionFieldFuture, TypeRef,
};
use async_graphql::{ErrorExtensions, Value as Gql};
use chrono_sql::catalog::{Snapshot, TableDef, ViewDef};
use chrono_sql::types::DataType;
use chrono_storage::{Timestamp, Value, encoding};
use parking_lot::Mutex;

use crate::{ChronoDb, Error, Outcome};
use names::{TIME, WRITTEN, type_name};

/// A row as a GraphQL object's parent value: its values and the time it was read at.
#[derive(Clone)]
struct Row {
    values: Arc<Vec<Value>>,
    as_of: Option<i64>,
}

/// A schema and what it was built from: the tables and the views.
type Built = (Vec<TableDef>, Vec<ViewDef>, Schema);

/// The schema and the catalog it was built from.
pub struct GraphQl {
    db: Arc<ChronoDb>,
    max_depth: usize,
    max_complexity: usize,
    limits: limits::GraphQlLimits,
    lists: ListLimits,
    /// `server.statement_timeout_ms`.
    timeout: Duration,
    /// Ends subscriptions when the server stops.
    stopping: tokio::sync::watch::Receiver<bool>,
    /// The schema and what it was built from.
    built: Mutex<Option<Built>>,
}

fn gql_error(e: &Error) -> async_graphql::Error {
    async_graphql::Error::new(e.to_string()).extend_with(|_, ext| {
        ext.set("kind", format!("{:?}", e.kind()));
    })
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn scalar(t: DataType) -> &'static str {
    match t {
        DataType::Int => TypeRef::INT,
        DataType::Float => TypeRef::FLOAT,
        DataType::Bool => TypeRef::BOOLEAN,
        _ => TypeRef::STRING,
    }
}

/// A value as GraphQL (`None` for NULL); converted directly, per field of every row.
fn to_gql(v: &Value) -> Option<Gql> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => Gql::from(*b),
        Value::Int(i) => Gql::from(*i),
        Value::Float(f) => async_graphql::Number::from_f64(*f).map_or(Gql::Null, Gql::Number),
        Value::Text(s) => Gql::from(s.as_str()),
        // Base64 for BLOBs and ISO-8601 for times, as in every JSON the server writes.
        Value::Blob(_) | Value::Timestamp(_) => match crate::output::json_value(v) {
            serde_json::Value::String(s) => Gql::from(s),
            _ => Gql::Null,
        },
    })
}

fn from_gql(
    v: &async_graphql::dynamic::ValueAccessor<'_>,
    t: DataType,
) -> async_graphql::Result<Value> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    Ok(match t {
        DataType::Int => Value::Int(v.i64()?),
        DataType::Float => Value::Float(v.f64()?),
        DataType::Bool => Value::Bool(v.boolean()?),
        _ => Value::Text(v.string()?.to_string()),
    })
}

/// `asOf`: a time in any form [`Timestamp::parse`] reads.
fn as_of(ctx: &ResolverContext<'_>) -> async_graphql::Result<Option<i64>> {
    Ok(time_arg(ctx, "asOf")?.map(|t| t as i64))
}

/// A `Time` argument in microseconds, in any form [`Timestamp::parse`] reads: Unix seconds
/// (a number or a string), a commit timestamp in microseconds as `commitTs` gives it, or
/// ISO-8601 as `commitTime` and `_systemFrom` give it.
fn time_arg(ctx: &ResolverContext<'_>, name: &str) -> async_graphql::Result<Option<u64>> {
    let Some(v) = ctx.args.get(name) else {
        return Ok(None);
    };
    let text = match v.as_value() {
        Gql::Null => return Ok(None),
        Gql::Number(n) => n.to_string(),
        Gql::String(s) => s.clone(),
        _ => String::new(),
    };
    let ts = Timestamp::parse(&text).map_err(|e| {
        async_graphql::Error::new(format!("{name}: {e}"))
            .extend_with(|_, ext| ext.set("kind", "InvalidInput"))
    })?;
    Ok(Some(ts.as_micros()))
}

/// The database the resolvers run statements on, and the statement timeout they run
/// under (`server.statement_timeout_ms`).
#[derive(Clone)]
pub struct Statements {
    db: Arc<ChronoDb>,
    timeout: Duration,
}

/// Runs a query on a blocking thread; its rows.
async fn query(
    db: &Statements,
    sql: String,
    params: Vec<Value>,
) -> async_graphql::Result<Vec<Vec<Value>>> {
    match run(db, sql, params, None).await? {
        Outcome::Rows { rows, .. } => Ok(rows),
        _ => Ok(Vec::new()),
    }
}

/// Cancels a statement whose request went away (the future that awaited it was dropped).
struct CancelOnDrop(Option<chrono_sql::CancelToken>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(t) = self.0.take() {
            t.cancel();
        }
    }
}

/// Runs one statement on a blocking thread, as `principal` (recorded by the audit trail),
/// within the server's statement timeout (`server.statement_timeout_ms`) and the session's
/// memory budget; a request that goes away cancels it.
async fn run(
    db: &Statements,
    sql: String,
    params: Vec<Value>,
    principal: Option<String>,
) -> async_graphql::Result<Outcome> {
    let (db, timeout) = (db.db.clone(), db.timeout);
    let cancel = chrono_sql::CancelToken::new();
    let mut on_drop = CancelOnDrop(Some(cancel.clone()));
    let out = tokio::task::spawn_blocking(move || {
        let mut session = db.session();
        session.set_principal(principal);
        session.set_cancel_token(cancel);
        session.set_statement_timeout(Some(timeout));
        session.execute_with_params(&sql, &params)
    })
    .await
    .map_err(|e| async_graphql::Error::new(e.to_string()))?
    .map_err(|e| gql_error(&Error::from(e)))?;
    on_drop.0 = None;
    out.into_iter()
        .last()
        .ok_or_else(|| async_graphql::Error::new("no statement ran"))
}

/// A list field's rows: the query's rows, charged to the answer's budget, as objects read
/// as of `as_of`.
async fn rows_list(
    db: &Statements,
    ctx: &ResolverContext<'_>,
    sql: String,
    params: Vec<Value>,
    as_of: Option<i64>,
) -> async_graphql::Result<Option<FieldValue<'static>>> {
    let rows = query(db, sql, params).await?;
    limits::charge_rows(ctx, rows.len())?;
    Ok(Some(FieldValue::list(
        rows.into_iter().map(move |r| row_value(Arc::new(r), as_of)),
    )))
}

/// A list field's arguments: a filter per column, `limit` and `offset`.
fn filtered_and_paged(mut field: Field, def: &TableDef) -> Field {
    for col in names::filters(def) {
        field = field.argument(InputValue::new(
            col.name.clone(),
            TypeRef::named(scalar(col.data_type)),
        ));
    }
    field
        .argument(InputValue::new("limit", TypeRef::named(TypeRef::INT)))
        .argument(InputValue::new("offset", TypeRef::named(TypeRef::INT)))
}

/// Who sends the request (the token's principal), for the audit trail of mutations.
#[derive(Clone, Default)]
pub struct Principal(pub Option<String>);

/// `col = ?` conditions from the column arguments given (`IS NULL` for a null).
fn conditions(
    ctx: &ResolverContext<'_>,
    def: &TableDef,
    params: &mut Vec<Value>,
) -> async_graphql::Result<Vec<String>> {
    let mut out = Vec::new();
    for col in names::filters(def) {
        if let Some(v) = ctx.args.get(&col.name) {
            let value = from_gql(&v, col.data_type)?;
            if value.is_null() {
                out.push(format!("{} IS NULL", quote(&col.name)));
            } else {
                out.push(format!("{} = ?", quote(&col.name)));
                params.push(value);
            }
        }
    }
    Ok(out)
}

/// What a mutation returns.
#[derive(Clone)]
struct Written {
    affected: u64,
    commit_ts: Option<u64>,
    /// The rows as written (RETURNING), when the request asks for them.
    rows: Vec<Arc<Vec<Value>>>,
}

/// `<Type>Written`: what a mutation of `def` did — rows changed, the commit's time, and
/// `rows`, the rows as written (a DELETE's as they were; read only when asked for).
fn written_type(def: &TableDef) -> Object {
    let field = |name: &str, ty: TypeRef, get: fn(&Written) -> Option<Gql>| {
        Field::new(name, ty, move |ctx| {
            FieldFuture::new(async move {
                let w = ctx.parent_value.try_downcast_ref::<Written>()?;
                Ok(get(w).map(FieldValue::value))
            })
        })
    };
    Object::new(written_name(def))
        .description("What a mutation did: rows changed, the commit's time, the rows as written")
        .field(Field::new(
            "rows",
            TypeRef::named_nn_list_nn(type_name(&def.name)),
            |ctx| {
                FieldFuture::new(async move {
                    let w = ctx.parent_value.try_downcast_ref::<Written>()?;
                    limits::charge_rows(&ctx, w.rows.len())?;
                    Ok(Some(FieldValue::list(
                        w.rows.iter().map(|r| row_value(r.clone(), None)),
                    )))
                })
            },
        ))
        .field(field("affected", TypeRef::named_nn(TypeRef::INT), |w| {
            Some(Gql::from(w.affected))
        }))
        .field(field("commitTs", TypeRef::named(TypeRef::STRING), |w| {
            w.commit_ts.map(|t| Gql::from(t.to_string()))
        }))
        .field(field("commitTime", TypeRef::named(TypeRef::STRING), |w| {
            w.commit_ts
                .map(|t| Gql::from(Timestamp::from_micros(t).to_string()))
        }))
}

/// A field of a row type: the row's value at `i`.
fn value_field(name: String, ty: TypeRef, i: usize) -> Field {
    Field::new(name, ty, move |ctx| {
        FieldFuture::new(async move {
            let row = ctx.parent_value.try_downcast_ref::<Row>()?;
            Ok(row.values.get(i).and_then(to_gql).map(FieldValue::value))
        })
    })
}

fn written_name(def: &TableDef) -> String {
    format!("{}{WRITTEN}", type_name(&def.name))
}

fn from_clause(def: &TableDef, as_of: Option<i64>, params: &mut Vec<Value>) -> String {
    match as_of {
        Some(ts) => {
            params.push(Value::Timestamp(ts));
            format!("{} AS OF TIMESTAMP ?", quote(&def.name))
        }
        None => quote(&def.name),
    }
}

/// A relation lookup: the rows of `table` whose `column` holds `value`, as of `as_of`.
#[derive(Clone, PartialEq, Eq, Hash)]
struct RelKey {
    table: String,
    column: usize,
    /// The value, key-encoded (hashable, and decoded back for the query).
    value: Vec<u8>,
    as_of: Option<i64>,
}

/// Loads the rows of relations in batches (one query per relation, level and time).
pub struct Relations {
    db: Statements,
    tables: HashMap<String, Arc<TableDef>>,
}

impl Loader<RelKey> for Relations {
    type Value = Vec<Arc<Vec<Value>>>;
    type Error = async_graphql::Error;

    async fn load(&self, keys: &[RelKey]) -> Result<HashMap<RelKey, Self::Value>, Self::Error> {
        let mut groups: HashMap<(String, usize, Option<i64>), Vec<&RelKey>> = HashMap::new();
        for k in keys {
            groups
                .entry((k.table.clone(), k.column, k.as_of))
                .or_default()
                .push(k);
        }
        let mut out: HashMap<RelKey, Self::Value> = HashMap::new();
        for ((table, column, as_of), keys) in groups {
            let def = self
                .tables
                .get(&table)
                .ok_or_else(|| async_graphql::Error::new(format!("no such table: {table}")))?;
            let mut params = Vec::new();
            let from = from_clause(def, as_of, &mut params);
            let mut marks = Vec::new();
            for k in &keys {
                let v = encoding::decode_key(&k.value)
                    .map_err(|e| async_graphql::Error::new(e.to_string()))?;
                params.extend(v);
                marks.push("?");
            }
            let sql = format!(
                "SELECT * FROM {from} WHERE {} IN ({})",
                quote(&def.columns[column].name),
                marks.join(", ")
            );
            for row in query(&self.db, sql, params).await? {
                let key = RelKey {
                    table: table.clone(),
                    column,
                    value: encoding::encode_key(std::slice::from_ref(&row[column])),
                    as_of,
                };
                out.entry(key).or_default().push(Arc::new(row));
            }
            for k in keys {
                out.entry(k.clone()).or_default();
            }
        }
        Ok(out)
    }
}

fn row_value<'a>(values: Arc<Vec<Value>>, as_of: Option<i64>) -> FieldValue<'a> {
    FieldValue::owned_any(Row { values, as_of })
}

/// The rows of a list field: `server.graphql_default_limit` without `limit`, at most
/// `server.graphql_max_limit`.
#[derive(Debug, Clone, Copy)]
struct ListLimits {
    default: u64,
    max: u64,
}

impl ListLimits {
    /// ` LIMIT n[ OFFSET m]` for a list field's `limit` and `offset`.
    fn page(&self, ctx: &ResolverContext<'_>) -> async_graphql::Result<String> {
        let mut sql = format!(" LIMIT {}", self.of(ctx)?);
        if let Some(offset) = ctx.args.get("offset")
            && !offset.is_null()
        {
            sql += &format!(" OFFSET {}", offset.u64()?);
        }
        Ok(sql)
    }

    /// The `limit` of a root list field: as given (refused above the maximum) or the default.
    fn of(&self, ctx: &ResolverContext<'_>) -> async_graphql::Result<u64> {
        match ctx.args.get("limit") {
            None => Ok(self.default),
            Some(v) if v.is_null() => Ok(self.default),
            Some(v) => {
                let limit = v.u64()?;
                if limit > self.max {
                    return Err(async_graphql::Error::new(format!(
                        "limit {limit} is above {} (limit: server.graphql_max_limit); page with offset",
                        self.max
                    ))
                    .extend_with(|_, e| e.set("kind", "ResourceExhausted")));
                }
                Ok(limit)
            }
        }
    }
}

impl GraphQl {
    /// GraphQL over `db` with the limits of `config` (`server.graphql_*`, and the statement
    /// timeout every resolver's statement runs under).
    pub fn new(
        db: Arc<ChronoDb>,
        config: &crate::config::ServerConfig,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> GraphQl {
        GraphQl {
            db,
            max_depth: config.graphql_max_depth,
            max_complexity: config.graphql_max_complexity,
            limits: limits::GraphQlLimits {
                max_query_bytes: config.graphql_max_query_bytes,
                max_nesting: config.graphql_max_nesting,
                max_selections: config.graphql_max_selections,
                max_result_values: config.graphql_max_result_values,
            },
            lists: ListLimits {
                default: config.graphql_default_limit,
                max: config.graphql_max_limit,
            },
            timeout: Duration::from_millis(config.statement_timeout_ms.max(1)),
            stopping,
            built: Mutex::new(None),
        }
    }

    fn statements(&self) -> Statements {
        Statements {
            db: self.db.clone(),
            timeout: self.timeout,
        }
    }

    /// Runs one GraphQL request (the schema follows the catalog as it is now).
    pub async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        match self.current().await {
            Ok((schema, loader)) => schema.execute(request.data(loader)).await,
            Err(e) => {
                async_graphql::Response::from_errors(vec![e.into_server_error(Default::default())])
            }
        }
    }

    /// The schema of the catalog as it is now (built again when it changed), and a fresh
    /// relation loader for one request or connection.
    pub async fn current(&self) -> async_graphql::Result<(Schema, DataLoader<Relations>)> {
        let db = self.db.clone();
        let (tables, views) = tokio::task::spawn_blocking(move || {
            let database = db.database();
            let txn = database.store().begin_read_only(u64::MAX);
            let views = chrono_sql::catalog::list_views(Snapshot::Transaction(&txn))?;
            Ok::<_, chrono_sql::Error>((database.tables()?, views))
        })
        .await
        .map_err(|e| async_graphql::Error::new(e.to_string()))?
        .map_err(|e| gql_error(&Error::from(e)))?;
        let cached = match self.built.lock().as_ref() {
            Some((t, v, schema)) if *t == tables && *v == views => Some(schema.clone()),
            _ => None,
        };
        let schema = match cached {
            Some(schema) => schema,
            // The catalog changed: the views' columns are worked out (each view's query
            // planned) only now, not on every request.
            None => {
                let (db, listed) = (self.db.clone(), views.clone());
                let described = tokio::task::spawn_blocking(move || view_defs(&db, listed))
                    .await
                    .map_err(|e| async_graphql::Error::new(e.to_string()))?;
                let schema = self
                    .build(&tables, &described)
                    .map_err(|e| async_graphql::Error::new(format!("schema: {e}")))?;
                *self.built.lock() = Some((tables.clone(), views, schema.clone()));
                schema
            }
        };
        let loader = DataLoader::new(
            Relations {
                db: self.statements(),
                tables: tables
                    .iter()
                    .map(|t| (t.name.to_ascii_lowercase(), Arc::new(t.clone())))
                    .collect(),
            },
            tokio::spawn,
        );
        Ok((schema, loader))
    }

    /// `<name>(<column filters>, orderBy, limit, offset, asOf)`: the rows of a table or a
    /// view, as of now or `asOf`.
    fn root_field(&self, def: &Arc<TableDef>) -> Field {
        let db = self.statements();
        let root_def = def.clone();
        let lists = self.lists;
        let root = Field::new(
            def.name.clone(),
            TypeRef::named_nn_list_nn(type_name(&def.name)),
            move |ctx| {
                let (db, def) = (db.clone(), root_def.clone());
                FieldFuture::new(async move {
                    let as_of = as_of(&ctx)?;
                    let mut params = Vec::new();
                    let from = from_clause(&def, as_of, &mut params);
                    let conditions = self::conditions(&ctx, &def, &mut params)?;
                    let mut sql = format!("SELECT * FROM {from}");
                    if !conditions.is_empty() {
                        sql += &format!(" WHERE {}", conditions.join(" AND "));
                    }
                    if let Some(order) = ctx.args.get("orderBy") {
                        let order = order.string()?;
                        let mut parts = order.split_whitespace();
                        let column = parts.next().unwrap_or_default();
                        let direction = match parts.next().map(str::to_ascii_uppercase).as_deref() {
                            None | Some("ASC") => "ASC",
                            Some("DESC") => "DESC",
                            Some(other) => {
                                return Err(async_graphql::Error::new(format!(
                                    "orderBy: ASC or DESC, not {other}"
                                )));
                            }
                        };
                        let Some(c) = def.column_index(column) else {
                            return Err(async_graphql::Error::new(format!(
                                "orderBy: {} has no column {column}",
                                def.name
                            ))
                            .extend_with(|_, e| e.set("kind", "NotFound")));
                        };
                        sql += &format!(" ORDER BY {} {direction}", quote(&def.columns[c].name));
                    }
                    sql += &lists.page(&ctx)?;
                    rows_list(&db, &ctx, sql, params, as_of).await
                })
            },
        );
        filtered_and_paged(root, def)
            .argument(InputValue::new("orderBy", TypeRef::named(TypeRef::STRING)))
            .argument(InputValue::new("asOf", TypeRef::named(TIME)))
    }

    fn build(
        &self,
        tables: &[TableDef],
        views: &[TableDef],
    ) -> Result<Schema, async_graphql::dynamic::SchemaError> {
        // Tables and views share the names of types and fields: one check over both.
        let all: Vec<TableDef> = tables.iter().chain(views).cloned().collect();
        let (served, warnings) = names::servable(&all);
        for w in &warnings {
            tracing::warn!("graphql: {w}");
        }
        let is_view = |d: &TableDef| views.iter().any(|v| v.name.eq_ignore_ascii_case(&d.name));
        let (served_views, served_tables): (Vec<&TableDef>, Vec<&TableDef>) =
            served.into_iter().partition(|d| is_view(d));
        let view_defs: Vec<Arc<TableDef>> =
            served_views.into_iter().cloned().map(Arc::new).collect();
        let defs: Vec<Arc<TableDef>> = served_tables.into_iter().cloned().map(Arc::new).collect();
        let by_name: HashMap<String, Arc<TableDef>> = defs
            .iter()
            .map(|d| (d.name.to_ascii_lowercase(), d.clone()))
            .collect();
        let mut query_root = Object::new("Query");
        let mut mutation_root = Object::new("Mutation");
        let mut objects = Vec::new();
        let mut inputs = Vec::new();
        for def in &defs {
            let mut obj = Object::new(type_name(&def.name));
            // Field names of this type so far: a relation whose name is taken is left out.
            let mut taken: std::collections::HashSet<String> =
                names::columns(def).map(|(_, c)| c.name.clone()).collect();
            for (i, col) in names::columns(def) {
                let ty = if col.nullable {
                    TypeRef::named(scalar(col.data_type))
                } else {
                    TypeRef::named_nn(scalar(col.data_type))
                };
                obj = obj.field(value_field(col.name.clone(), ty, i));
                // The referenced row, named after the column (without `_id`).
                if let Some((parent, parent_col)) = &col.references
                    && let Some(pdef) = by_name.get(&parent.to_ascii_lowercase())
                    && let Some(pc) = pdef.column_index(parent_col)
                {
                    let mut name = col
                        .name
                        .strip_suffix("_id")
                        .unwrap_or(&col.name)
                        .to_string();
                    if name == col.name || def.column_index(&name).is_some() {
                        name = format!("{}Row", col.name);
                    }
                    if !names::valid(&name) || !taken.insert(name.clone()) {
                        continue;
                    }
                    let pdef = pdef.clone();
                    obj = obj.field(Field::new(
                        name,
                        TypeRef::named(type_name(&pdef.name)),
                        move |ctx| {
                            let pdef = pdef.clone();
                            FieldFuture::new(async move {
                                let row = ctx.parent_value.try_downcast_ref::<Row>()?;
                                let v = &row.values[i];
                                if v.is_null() {
                                    return Ok(None);
                                }
                                let key = RelKey {
                                    table: pdef.name.to_ascii_lowercase(),
                                    column: pc,
                                    value: encoding::encode_key(std::slice::from_ref(v)),
                                    as_of: row.as_of,
                                };
                                let loader = ctx.data::<DataLoader<Relations>>()?;
                                let found = loader.load_one(key).await?.unwrap_or_default();
                                limits::charge_rows(&ctx, found.len().min(1))?;
                                Ok(found.into_iter().next().map(|r| row_value(r, row.as_of)))
                            })
                        },
                    ));
                }
            }
            // The rows that reference this table, named after their table.
            for child in &defs {
                for (ci, ccol) in child.columns.iter().enumerate() {
                    let Some((parent, parent_col)) = &ccol.references else {
                        continue;
                    };
                    if !parent.eq_ignore_ascii_case(&def.name) {
                        continue;
                    }
                    let Some(pc) = def.column_index(parent_col) else {
                        continue;
                    };
                    let mut name = child.name.clone();
                    if def.column_index(&name).is_some() {
                        name = format!("{name}List");
                    }
                    if !taken.insert(name.clone()) {
                        continue;
                    }
                    let child = child.clone();
                    obj = obj.field(Field::new(
                        name,
                        TypeRef::named_nn_list_nn(type_name(&child.name)),
                        move |ctx| {
                            let child = child.clone();
                            FieldFuture::new(async move {
                                let row = ctx.parent_value.try_downcast_ref::<Row>()?;
                                let v = &row.values[pc];
                                if v.is_null() {
                                    return Ok(Some(FieldValue::list(Vec::<FieldValue>::new())));
                                }
                                let key = RelKey {
                                    table: child.name.to_ascii_lowercase(),
                                    column: ci,
                                    value: encoding::encode_key(std::slice::from_ref(v)),
                                    as_of: row.as_of,
                                };
                                let loader = ctx.data::<DataLoader<Relations>>()?;
                                let rows = loader.load_one(key).await?.unwrap_or_default();
                                limits::charge_rows(&ctx, rows.len())?;
                                Ok(Some(FieldValue::list(
                                    rows.into_iter().map(|r| row_value(r, row.as_of)),
                                )))
                            })
                        },
                    ));
                }
            }
            objects.push(obj);
            let (history, history_type) = history_field(&self.statements(), self.lists, def);
            objects.push(history_type);
            query_root = query_root.field(history);
            objects.push(written_type(def));
            let (fields, set_type) = mutation_fields(&self.statements(), def);
            inputs.push(set_type);
            for f in fields {
                mutation_root = mutation_root.field(f);
            }

            query_root = query_root.field(self.root_field(def));
        }
        // Views: a type of their columns and a read-only root field, `asOf` included (the
        // view as defined then, over its tables as they were).
        for def in &view_defs {
            let mut obj = Object::new(type_name(&def.name))
                .description(format!("The view {} (read-only)", def.name));
            for (i, col) in names::columns(def) {
                let ty = TypeRef::named(scalar(col.data_type));
                obj = obj.field(value_field(col.name.clone(), ty, i));
            }
            objects.push(obj);
            query_root = query_root.field(self.root_field(def));
        }
        query_root = query_root.field(
            Field::new(
                names::WARNINGS,
                TypeRef::named_nn_list_nn(TypeRef::STRING),
                move |_| {
                    let warnings = warnings.clone();
                    FieldFuture::new(async move {
                        Ok(Some(FieldValue::list(
                            warnings.into_iter().map(|w| FieldValue::value(Gql::from(w))),
                        )))
                    })
                },
            )
            .description("Tables left out of this schema, and why (their names clash or are not GraphQL names)"),
        );
        if defs.is_empty() {
            // A schema needs one field: say what there is to ask for.
            query_root = query_root.field(Field::new(
                "tables",
                TypeRef::named_nn_list_nn(TypeRef::STRING),
                |_| {
                    FieldFuture::new(async { Ok(Some(FieldValue::list(Vec::<FieldValue>::new()))) })
                },
            ));
        }
        let time = Scalar::new(TIME)
            .description(
                "A point in time: Unix seconds (a number or a string), a commit timestamp in \
                 microseconds (as commitTs), or ISO-8601 (as commitTime and _systemFrom)",
            )
            .validator(|v| matches!(v, Gql::Number(_) | Gql::String(_)));
        let mutation = (!defs.is_empty()).then_some("Mutation");
        let mut subscription_root = Subscription::new("Subscription");
        for def in &defs {
            let (field, change) = subscription_field(&self.db, def, self.stopping.clone());
            subscription_root = subscription_root.field(field);
            objects.push(change);
        }
        let mut builder = Schema::build("Query", mutation, mutation.map(|_| "Subscription"))
            .register(time)
            .limit_depth(self.max_depth)
            .limit_complexity(self.max_complexity)
            .extension(limits::Guard(self.limits));
        for o in objects {
            builder = builder.register(o);
        }
        for i in inputs {
            builder = builder.register(i);
        }
        if mutation.is_some() {
            builder = builder.register(mutation_root).register(subscription_root);
        }
        builder.register(query_root).finish()
    }
}

/// The views, each as a table of the columns its query gives now (one that cannot be
/// read now — a table it reads changed — is left out, with a warning in the log).
fn view_defs(db: &ChronoDb, views: Vec<ViewDef>) -> Vec<TableDef> {
    let database = db.database();
    let mut out = Vec::with_capacity(views.len());
    for v in views {
        let described = chrono_sql::parse(&format!("SELECT * FROM {}", quote(&v.name)))
            .and_then(|mut p| database.describe(&p.remove(0)));
        match described {
            Ok(d) => out.push(TableDef {
                name: v.name,
                keyspace: 0,
                columns: d
                    .columns
                    .into_iter()
                    .map(|(name, t)| chrono_sql::catalog::ColumnDef {
                        name,
                        data_type: t.unwrap_or(DataType::Text),
                        nullable: true,
                        default: None,
                        references: None,
                    })
                    .collect(),
                primary_key: Vec::new(),
                indexes: Vec::new(),
            }),
            Err(e) => tracing::warn!(view = %v.name, error = %e, "graphql: a view is left out"),
        }
    }
    out
}

/// `<table>History(<key columns>)`: every version of the rows matched, oldest first, each
/// with `_systemFrom` and `_systemTo` (ISO-8601; `_systemTo` null for the current one),
/// `_operation` (INSERT or UPDATE) and `_principal` (who committed it).
fn history_field(db: &Statements, lists: ListLimits, def: &Arc<TableDef>) -> (Field, Object) {
    let type_name = format!("{}Version", self::type_name(&def.name));
    let width = def.columns.len();
    let mut obj = Object::new(type_name.clone());
    let versions = ["_systemFrom", "_systemTo", "_operation", "_principal"];
    for (i, col) in names::columns(def).filter(|(_, c)| !versions.contains(&c.name.as_str())) {
        let ty = TypeRef::named(scalar(col.data_type));
        obj = obj.field(value_field(col.name.clone(), ty, i));
    }
    for (name, offset) in [("_systemFrom", 0), ("_systemTo", 1)] {
        obj = obj.field(Field::new(
            name,
            TypeRef::named(TypeRef::STRING),
            move |ctx| {
                FieldFuture::new(async move {
                    let row = ctx.parent_value.try_downcast_ref::<Row>()?;
                    Ok(match row.values.get(width + offset) {
                        Some(Value::Timestamp(t)) => Some(FieldValue::value(Gql::from(
                            Timestamp::from_micros((*t).max(0) as u64).to_string(),
                        ))),
                        _ => None,
                    })
                })
            },
        ));
    }
    // What made the version (INSERT or UPDATE) and who committed it (the audit trail's
    // principal; null when anonymous).
    for (name, offset) in [("_operation", 2), ("_principal", 3)] {
        let ty = TypeRef::named(TypeRef::STRING);
        obj = obj.field(value_field(name.to_string(), ty, width + offset));
    }
    let (db, root_def) = (db.clone(), def.clone());
    let field = Field::new(
        format!("{}History", def.name),
        TypeRef::named_nn_list_nn(type_name),
        move |ctx| {
            let (db, def) = (db.clone(), root_def.clone());
            FieldFuture::new(async move {
                let mut params = Vec::new();
                let conditions = conditions(&ctx, &def, &mut params)?;
                let columns: Vec<String> = def.columns.iter().map(|c| quote(&c.name)).collect();
                // The principal costs a lookup per commit: read only when asked for.
                let principal = if ctx.look_ahead().field("_principal").exists() {
                    "_principal"
                } else {
                    "NULL"
                };
                let mut sql = format!(
                    "SELECT {}, _system_from, _system_to, _operation, {principal} FROM {} \
                     FOR SYSTEM_TIME ALL",
                    columns.join(", "),
                    quote(&def.name)
                );
                if !conditions.is_empty() {
                    sql += &format!(" WHERE {}", conditions.join(" AND "));
                }
                sql += " ORDER BY _system_from";
                sql += &lists.page(&ctx)?;
                rows_list(&db, &ctx, sql, params, None).await
            })
        },
    );
    (filtered_and_paged(field, def), obj)
}

/// `insert_<table>(<columns>)`, `update_<table>(<columns to match>, set: {…})` and
/// `delete_<table>(<columns to match>)`, each one statement in its own transaction, run as
/// the request's principal; they return `<Type>Written` (rows changed, commit time, and
/// the rows as written when asked for: the statement then has `RETURNING *`).
fn mutation_fields(db: &Statements, def: &Arc<TableDef>) -> (Vec<Field>, InputObject) {
    let set_name = format!("{}Set", type_name(&def.name));
    let mut set = InputObject::new(set_name.clone());
    for (_, col) in names::columns(def) {
        set = set.field(InputValue::new(
            col.name.clone(),
            TypeRef::named(scalar(col.data_type)),
        ));
    }
    let written = |ctx: &ResolverContext<'_>| -> Option<String> {
        ctx.data::<Principal>().ok().and_then(|p| p.0.clone())
    };
    let outcome = |o: Outcome| -> FieldValue<'static> {
        let (affected, commit_ts, rows) = match o {
            Outcome::Affected {
                affected,
                commit_ts,
            } => (affected, commit_ts, Vec::new()),
            Outcome::Rows {
                rows, commit_ts, ..
            } => (
                rows.len() as u64,
                commit_ts,
                rows.into_iter().map(Arc::new).collect(),
            ),
            _ => (0, None, Vec::new()),
        };
        FieldValue::owned_any(Written {
            affected,
            commit_ts,
            rows,
        })
    };
    // The rows as written only when the request asks for them.
    let returning = |ctx: &ResolverContext<'_>| {
        if ctx.look_ahead().field("rows").exists() {
            " RETURNING *"
        } else {
            ""
        }
    };
    let written_ty = written_name(def);
    // Insert takes every column; update and delete take the filter columns.
    let with_columns = |mut f: Field, all: bool| {
        for (_, col) in names::columns(def) {
            if all || !names::ARGUMENTS.contains(&col.name.as_str()) {
                f = f.argument(InputValue::new(
                    col.name.clone(),
                    TypeRef::named(scalar(col.data_type)),
                ));
            }
        }
        f
    };

    let (d, t) = (db.clone(), def.clone());
    let insert = with_columns(
        Field::new(
            format!("insert_{}", def.name),
            TypeRef::named_nn(written_ty.clone()),
            move |ctx| {
                let (db, def) = (d.clone(), t.clone());
                FieldFuture::new(async move {
                    let (mut names, mut params) = (Vec::new(), Vec::new());
                    for (_, col) in names::columns(&def) {
                        if let Some(v) = ctx.args.get(&col.name) {
                            names.push(quote(&col.name));
                            params.push(from_gql(&v, col.data_type)?);
                        }
                    }
                    let marks = vec!["?"; names.len()].join(", ");
                    let sql = format!(
                        "INSERT INTO {} ({}) VALUES ({marks}){}",
                        quote(&def.name),
                        names.join(", "),
                        returning(&ctx)
                    );
                    Ok(Some(outcome(run(&db, sql, params, written(&ctx)).await?)))
                })
            },
        ),
        true,
    );

    let (d, t) = (db.clone(), def.clone());
    let update = with_columns(
        Field::new(
            format!("update_{}", def.name),
            TypeRef::named_nn(written_ty.clone()),
            move |ctx| {
                let (db, def) = (d.clone(), t.clone());
                FieldFuture::new(async move {
                    let set = ctx.args.try_get("set")?.object()?;
                    let (mut assignments, mut params) = (Vec::new(), Vec::new());
                    for (_, col) in names::columns(&def) {
                        if let Some(v) = set.get(&col.name) {
                            assignments.push(format!("{} = ?", quote(&col.name)));
                            params.push(from_gql(&v, col.data_type)?);
                        }
                    }
                    if assignments.is_empty() {
                        return Err(async_graphql::Error::new("set: name at least one column")
                            .extend_with(|_, e| e.set("kind", "InvalidInput")));
                    }
                    let conditions = conditions(&ctx, &def, &mut params)?;
                    let mut sql =
                        format!("UPDATE {} SET {}", quote(&def.name), assignments.join(", "));
                    if !conditions.is_empty() {
                        sql += &format!(" WHERE {}", conditions.join(" AND "));
                    }
                    sql += returning(&ctx);
                    Ok(Some(outcome(run(&db, sql, params, written(&ctx)).await?)))
                })
            },
        ),
        false,
    )
    .argument(InputValue::new("set", TypeRef::named_nn(set_name)));

    let (d, t) = (db.clone(), def.clone());
    let delete = with_columns(
        Field::new(
            format!("delete_{}", def.name),
            TypeRef::named_nn(written_ty.clone()),
            move |ctx| {
                let (db, def) = (d.clone(), t.clone());
                FieldFuture::new(async move {
                    let mut params = Vec::new();
                    let conditions = conditions(&ctx, &def, &mut params)?;
                    let mut sql = format!("DELETE FROM {}", quote(&def.name));
                    if !conditions.is_empty() {
                        sql += &format!(" WHERE {}", conditions.join(" AND "));
                    }
                    sql += returning(&ctx);
                    Ok(Some(outcome(run(&db, sql, params, written(&ctx)).await?)))
                })
            },
        ),
        false,
    );
    (vec![insert, update, delete], set)
}

/// The subscriptions one WebSocket connection may hold at once
/// (`server.ws_max_subscriptions`).
#[derive(Clone)]
pub struct SubscriptionSlots {
    slots: Arc<tokio::sync::Semaphore>,
    max: usize,
}

impl SubscriptionSlots {
    /// `max` places.
    pub fn new(max: usize) -> Self {
        Self {
            slots: Arc::new(tokio::sync::Semaphore::new(max)),
            max,
        }
    }

    /// A place, held until the subscription ends; refused when all are taken.
    fn take(&self) -> async_graphql::Result<tokio::sync::OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().map_err(|_| {
            async_graphql::Error::new(format!(
                "this connection holds {} subscriptions already (limit: server.ws_max_subscriptions)",
                self.max
            ))
            .extend_with(|_, e| e.set("kind", "ResourceExhausted"))
        })
    }
}

/// One changed row, as a subscription's event.
struct Change {
    op: &'static str,
    before: Option<Arc<Vec<Value>>>,
    after: Option<Arc<Vec<Value>>>,
    commit_ts: u64,
}

/// Subscription `<table>(where: "<SQL condition>", from: <Time>)`: one `<Type>Change` per
/// changed row (`operation`, `before`, `after`, `commitTs`, `commitTime`), from the change
/// feed ([`crate::changes::follow`]): after `from` if given (then live), each commit once
/// and in order.
fn subscription_field(
    db: &Arc<ChronoDb>,
    def: &Arc<TableDef>,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> (SubscriptionField, Object) {
    use futures_util::StreamExt;

    let row_type = type_name(&def.name);
    let change_type = format!("{row_type}Change");
    let field = |name: &str, ty: TypeRef, pick: fn(&Change) -> Option<FieldValue<'static>>| {
        Field::new(name, ty, move |ctx| {
            FieldFuture::new(async move {
                let c = ctx.parent_value.try_downcast_ref::<Change>()?;
                Ok(pick(c))
            })
        })
    };
    let object = Object::new(change_type.clone())
        .field(field(
            "operation",
            TypeRef::named_nn(TypeRef::STRING),
            |c| Some(FieldValue::value(Gql::from(c.op))),
        ))
        .field(field("before", TypeRef::named(row_type.clone()), |c| {
            c.before.clone().map(|v| row_value(v, None))
        }))
        .field(field("after", TypeRef::named(row_type), |c| {
            c.after.clone().map(|v| row_value(v, None))
        }))
        .field(field("commitTs", TypeRef::named_nn(TypeRef::STRING), |c| {
            Some(FieldValue::value(Gql::from(c.commit_ts.to_string())))
        }))
        .field(field(
            "commitTime",
            TypeRef::named_nn(TypeRef::STRING),
            |c| {
                Some(FieldValue::value(Gql::from(
                    Timestamp::from_micros(c.commit_ts).to_string(),
                )))
            },
        ));
    let (db, table) = (db.clone(), def.name.clone());
    let field = SubscriptionField::new(
        def.name.clone(),
        TypeRef::named_nn(change_type),
        move |ctx| {
            let (db, table, stopping) = (db.clone(), table.clone(), stopping.clone());
            SubscriptionFieldFuture::new(async move {
                let predicate = match ctx.args.get("where") {
                    Some(w) if !w.is_null() => Some(w.string()?.to_string()),
                    _ => None,
                };
                let from = time_arg(&ctx, "from")?;
                // The connection's place for this subscription, held as long as it runs.
                let place = match ctx.data_opt::<SubscriptionSlots>() {
                    Some(slots) => Some(slots.take()?),
                    None => None,
                };
                let feed = crate::changes::follow(
                    db,
                    std::slice::from_ref(&table),
                    predicate.as_deref(),
                    from,
                    stopping,
                )
                .await
                .map_err(|e| gql_error(&e))?;
                let stream =
                    tokio_stream::wrappers::ReceiverStream::new(feed).flat_map(move |item| {
                        let _held = &place;
                        let events: Vec<async_graphql::Result<FieldValue<'static>>> = match item {
                            Err(e) => vec![Err(gql_error(&e))],
                            Ok(commit) => commit
                                .changes
                                .into_iter()
                                .map(|c| {
                                    Ok(FieldValue::owned_any(Change {
                                        op: c.op.as_str(),
                                        before: c.before.map(Arc::new),
                                        after: c.after.map(Arc::new),
                                        commit_ts: commit.commit_ts,
                                    }))
                                })
                                .collect(),
                        };
                        futures_util::stream::iter(events)
                    });
                Ok(stream)
            })
        },
    )
    .argument(InputValue::new("where", TypeRef::named(TypeRef::STRING)))
    .argument(InputValue::new("from", TypeRef::named(TIME)));
    (field, object)
}
