//! One PostgreSQL connection: its ChronoDB session, the simple and extended query
//! protocols over it, and the transaction state PostgreSQL clients expect.
//!
//! Statements run on tokio's blocking pool under the server's statement timeout, with a
//! cancel token that a `CancelRequest`, the timeout or a client that goes away fires. As in
//! PostgreSQL, an error inside `BEGIN … COMMIT` fails the transaction: later statements are
//! refused (`25P02`) until `ROLLBACK` (a `COMMIT` then rolls back, and says so).

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::BytesMut;
use chrono_sql::types::DataType;
use chrono_sql::{CancelToken, Description, Outcome, Prepared, Session, ast};
use chrono_storage::Value;
use futures::{Sink, SinkExt};
use parking_lot::Mutex;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    DescribeStatementResponse, FieldFormat, FieldInfo, QueryResponse, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, METADATA_USER, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::DataRow;
use pgwire::messages::startup::ParameterStatus;

use super::settings::{self, Read, Special};
use super::sqlstate;
use super::sqlstate::user_error;
use super::types::{pg_type, put_field};
use crate::ChronoDb;

/// A statement as the extended protocol keeps it (Parse → Bind → Execute).
#[derive(Clone, Debug)]
pub struct Statement {
    kind: Kind,
}

#[derive(Clone, Debug)]
enum Kind {
    /// For the SQL engine: the parse (one statement) and its description.
    Sql(Arc<Vec<Prepared>>, Arc<Description>),
    /// Answered by the connection (see [`settings`]).
    Special(Special),
}

/// A COMMIT or ROLLBACK answered without running (see `Backend::end_without_commit`).
enum End {
    /// The failed transaction was rolled back.
    RolledBack,
    /// No transaction was open: the statement's own tag, after a warning.
    NoneOpen(&'static str),
}

/// What a connection remembers between statements.
struct State {
    /// An error failed the open transaction.
    failed: bool,
    /// Session parameters (`SET`, `SHOW`).
    settings: std::collections::BTreeMap<String, String>,
}

/// The connection's handler of both query protocols.
pub struct Backend {
    db: Arc<ChronoDb>,
    parser: Arc<Parser>,
    session: Arc<Mutex<Session>>,
    state: Mutex<State>,
    timeout: Duration,
    /// Whether users are authenticated (their name is then the audited principal).
    authenticated: bool,
}

/// Parses statements for the extended protocol (shares the database's parse cache).
pub struct Parser {
    db: Arc<ChronoDb>,
}

impl Backend {
    pub fn new(db: Arc<ChronoDb>, timeout: Duration, authenticated: bool) -> Self {
        let session = db.session();
        Self {
            parser: Arc::new(Parser { db: db.clone() }),
            db,
            session: Arc::new(Mutex::new(session)),
            state: Mutex::new(State {
                failed: false,
                settings: settings::defaults(),
            }),
            timeout,
            authenticated,
        }
    }

    /// Runs `f` on the session on the blocking pool (or here, when `inline`: a statement
    /// known to cost a key lookup): stopped at the statement timeout, or when the caller's
    /// future is dropped (a cancel request, a client gone).
    async fn blocking<T: Send + 'static>(
        &self,
        principal: Option<String>,
        inline: bool,
        f: impl FnOnce(&mut Session) -> T + Send + 'static,
    ) -> PgWireResult<T> {
        let token = CancelToken::new();
        let on_drop = crate::grpc::CancelOnDrop::new(token.clone());
        let session = self.session.clone();
        let timeout = self.timeout;
        let authenticated = self.authenticated;
        let run = move || {
            let mut s = session.lock();
            s.set_cancel_token(token);
            s.set_statement_timeout(Some(timeout));
            if authenticated {
                s.set_principal(principal);
            }
            f(&mut s)
        };
        let r = if inline {
            run()
        } else {
            tokio::task::spawn_blocking(run)
                .await
                .map_err(|e| user_error("XX000", format!("the statement failed: {e}")))?
        };
        on_drop.disarm();
        Ok(r)
    }

    fn principal<C: ClientInfo>(client: &C) -> Option<String> {
        client.metadata().get(METADATA_USER).cloned()
    }

    /// A transaction's end that runs nothing: COMMIT or ROLLBACK of a failed transaction
    /// (rolled back, tag ROLLBACK), or with none open (one whose commit failed has ended:
    /// PostgreSQL warns and goes on, and clients rely on it — pgbench rolls back after a
    /// serialization failure at COMMIT). In a failed transaction anything else is refused.
    fn end_without_commit(&self, statement: &ast::Statement) -> PgWireResult<Option<End>> {
        let ends = matches!(statement, ast::Statement::Commit | ast::Statement::Rollback);
        let mut state = self.state.lock();
        if state.failed && !ends {
            return Err(user_error(
                "25P02",
                "current transaction is aborted, commands ignored until end of transaction block"
                    .into(),
            ));
        }
        if !ends {
            return Ok(None);
        }
        let mut session = self.session.lock();
        if state.failed {
            state.failed = false;
            if session.in_transaction() {
                // Dropping the transaction's writes: no I/O.
                let _ = session.execute("ROLLBACK");
            }
            return Ok(Some(End::RolledBack));
        }
        if session.in_transaction() {
            return Ok(None);
        }
        Ok(Some(End::NoneOpen(
            if matches!(statement, ast::Statement::Commit) {
                "COMMIT"
            } else {
                "ROLLBACK"
            },
        )))
    }

    /// Runs one parsed statement with `params`: its outcome, or an error (which fails an
    /// open transaction).
    async fn run_one<C>(
        &self,
        client: &mut C,
        parsed: Arc<Vec<Prepared>>,
        index: usize,
        params: Vec<Value>,
    ) -> PgWireResult<(Outcome, Tag)>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement = parsed[index].statement().clone();
        if let Some(end) = self.end_without_commit(&statement)? {
            let tag = match end {
                End::RolledBack => "ROLLBACK",
                End::NoneOpen(tag) => {
                    client
                        .feed(PgWireBackendMessage::NoticeResponse(
                            pgwire::error::ErrorInfo::new(
                                "WARNING".into(),
                                "25P01".into(),
                                "there is no transaction in progress".into(),
                            )
                            .into(),
                        ))
                        .await?;
                    tag
                }
            };
            return Ok((
                Outcome::Done {
                    tag: tag.into(),
                    commit_ts: None,
                },
                Tag::new(tag),
            ));
        }
        let principal = Self::principal(client);
        // A point read by a kept plan costs a key lookup: it runs on this thread rather
        // than paying two thread hand-offs to the blocking pool.
        let inline = self.db.database().is_kept_point_read(&parsed[index]);
        let (outcome, in_txn) = self
            .blocking(principal, inline, move |s| {
                (s.run(&parsed[index], &params), s.in_transaction())
            })
            .await?;
        let outcome = outcome.inspect_err(|_| {
            if in_txn {
                self.state.lock().failed = true;
            }
        });
        let outcome = outcome.map_err(|e| sqlstate::sql_error(&e))?;
        let commit = match &outcome {
            Outcome::Affected { commit_ts, .. } | Outcome::Done { commit_ts, .. } => *commit_ts,
            Outcome::Rows { .. } => None,
        };
        if let Some(ts) = commit {
            let at = chrono_storage::Timestamp::from_micros(ts).iso();
            self.state
                .lock()
                .settings
                .insert("chronodb.last_commit".into(), at.clone());
            client
                .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                    "chronodb.last_commit".into(),
                    at,
                )))
                .await?;
        }
        let tag = tag_of(&statement, &outcome);
        Ok((outcome, tag))
    }

    /// The response to a [`Special`] statement.
    fn special(
        &self,
        client_user: Option<String>,
        special: &Special,
        format: &Format,
    ) -> PgWireResult<Response> {
        let mut state = self.state.lock();
        let rows = match special {
            Special::Set(name, value) => {
                let name = name.to_ascii_lowercase();
                if !settings::fixed(&name) {
                    state.settings.insert(name, value.clone());
                }
                return Ok(Response::Execution(Tag::new("SET")));
            }
            Special::Reset(name) => {
                let defaults = settings::defaults();
                match name {
                    None => state.settings.extend(defaults),
                    Some(n) => {
                        if let Some(v) = defaults.get(n) {
                            state.settings.insert(n.clone(), v.clone());
                        }
                    }
                }
                return Ok(Response::Execution(Tag::new("RESET")));
            }
            Special::Tag(t) => return Ok(Response::Execution(Tag::new(t))),
            Special::ShowAll => state
                .settings
                .iter()
                .map(|(k, v)| vec![Value::Text(k.clone()), Value::Text(v.clone()), Value::Null])
                .collect(),
            Special::Value { what, .. } => {
                let value = match what {
                    Read::Version => settings::version(),
                    Read::User => client_user.unwrap_or_else(|| "chronodb".into()),
                    Read::Setting(name) => {
                        let key = name.to_ascii_lowercase();
                        state.settings.get(&key).cloned().ok_or_else(|| {
                            user_error(
                                "42704",
                                format!("unrecognized configuration parameter \"{name}\""),
                            )
                        })?
                    }
                };
                vec![vec![Value::Text(value)]]
            }
        };
        rows_response(&text_columns(special), rows, format)
    }

    fn response(
        &self,
        outcome: Outcome,
        tag: Tag,
        fields: Option<&[(String, Option<DataType>)]>,
        format: &Format,
    ) -> PgWireResult<Response> {
        Ok(match outcome {
            Outcome::Rows { columns, rows } => {
                let described: Vec<(String, Option<DataType>)> = match fields {
                    Some(f) => f.to_vec(),
                    None => value_types(&columns, &rows),
                };
                rows_response(&described, rows, format)?
            }
            Outcome::Done { tag: t, .. } if t == "BEGIN" => Response::TransactionStart(tag),
            Outcome::Done { tag: t, .. } if t == "COMMIT" || t == "ROLLBACK" => {
                self.state.lock().failed = false;
                Response::TransactionEnd(tag)
            }
            _ => Response::Execution(tag),
        })
    }
}

/// Runs `f` (parsing, describing: it reads the catalog) on the blocking pool.
async fn on_pool<T: Send + 'static>(
    f: impl FnOnce() -> chrono_sql::Result<T> + Send + 'static,
) -> PgWireResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| user_error("XX000", e.to_string()))?
        .map_err(|e| sqlstate::sql_error(&e))
}

/// The types of a result's columns from its values (the simple protocol sends the
/// description after running): the one type all non-NULL values share, DOUBLE for a mix of
/// numbers, else text.
fn value_types(columns: &[String], rows: &[Vec<Value>]) -> Vec<(String, Option<DataType>)> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut t = None;
            let mut mixed = false;
            for r in rows {
                let v = chrono_sql::plan::types::value_type(&r[i]);
                if v.is_some() && t.is_some() && v != t {
                    let m = chrono_sql::plan::types::merge(t, v);
                    mixed |= m.is_none();
                    t = m;
                } else if t.is_none() {
                    t = v;
                }
            }
            (c.clone(), if mixed { None } else { t })
        })
        .collect()
}

/// The columns of a special statement's rows, all text.
fn text_columns(special: &Special) -> Vec<(String, Option<DataType>)> {
    special.columns().into_iter().map(|c| (c, None)).collect()
}

/// Field descriptions of a result in `format`.
fn fields(columns: &[(String, Option<DataType>)], format: &Format) -> Vec<FieldInfo> {
    columns
        .iter()
        .enumerate()
        .map(|(i, (name, t))| {
            FieldInfo::new(
                name.clone(),
                None,
                None,
                pg_type(*t),
                field_format(format, i),
            )
        })
        .collect()
}

/// Column `i`'s format (a format list shorter than the columns means text).
fn field_format(format: &Format, i: usize) -> FieldFormat {
    match format {
        Format::Individual(codes) => FieldFormat::from(codes.get(i).copied().unwrap_or(0)),
        f => f.format_for(i),
    }
}

/// Rows as a query response of `columns` in `format`.
fn rows_response(
    columns: &[(String, Option<DataType>)],
    rows: Vec<Vec<Value>>,
    format: &Format,
) -> PgWireResult<Response> {
    let fields = Arc::new(fields(columns, format));
    let schema = fields.clone();
    let encoded = rows.into_iter().map(move |row| {
        let mut data = BytesMut::with_capacity(16 * row.len());
        for (v, f) in row.iter().zip(schema.iter()) {
            put_field(
                &mut data,
                v,
                f.datatype(),
                f.format() == FieldFormat::Binary,
            )?;
        }
        Ok(DataRow::new(data, row.len() as i16))
    });
    Ok(Response::Query(QueryResponse::new(
        fields,
        futures::stream::iter(encoded),
    )))
}

/// The command tag PostgreSQL gives a statement's outcome.
fn tag_of(statement: &ast::Statement, outcome: &Outcome) -> Tag {
    match outcome {
        Outcome::Rows { rows, .. } => match statement {
            ast::Statement::Insert(_) => Tag::new("INSERT").with_oid(0).with_rows(rows.len()),
            ast::Statement::Update(_) => Tag::new("UPDATE").with_rows(rows.len()),
            ast::Statement::Delete(_) => Tag::new("DELETE").with_rows(rows.len()),
            _ => Tag::new("SELECT").with_rows(rows.len()),
        },
        Outcome::Affected { affected, .. } => {
            let n = *affected as usize;
            match statement {
                ast::Statement::Insert(_) => Tag::new("INSERT").with_oid(0).with_rows(n),
                ast::Statement::Update(_) => Tag::new("UPDATE").with_rows(n),
                _ => Tag::new("DELETE").with_rows(n),
            }
        }
        Outcome::Done { tag, .. } => Tag::new(tag),
    }
}

#[async_trait]
impl SimpleQueryHandler for Backend {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some(special) = settings::special(query) {
            return Ok(vec![self.special(
                Self::principal(client),
                &special,
                &Format::UnifiedText,
            )?]);
        }
        let db = self.db.clone();
        let text = query.to_string();
        let parsed = on_pool(move || db.database().parse_cached(&text)).await?;
        let mut responses = Vec::new();
        for i in 0..parsed.len() {
            match self.run_one(client, parsed.clone(), i, Vec::new()).await {
                Ok((outcome, tag)) => {
                    responses.push(self.response(outcome, tag, None, &Format::UnifiedText)?)
                }
                Err(PgWireError::UserError(info)) => {
                    // The statements before it stand; the rest of the text does not run.
                    responses.push(Response::Error(info));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(responses)
    }
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = Statement;

    async fn parse_sql<C>(
        &self,
        _client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Statement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        if let Some(special) = settings::special(sql) {
            return Ok(Some(Statement {
                kind: Kind::Special(special),
            }));
        }
        let db = self.db.clone();
        let text = sql.to_string();
        let parsed = on_pool(move || {
            let parsed = db.database().parse_cached(&text)?;
            if parsed.len() > 1 {
                return Err(chrono_sql::Error::Syntax(
                    "cannot insert multiple commands into a prepared statement".into(),
                ));
            }
            let Some(p) = parsed.first() else {
                return Ok(None);
            };
            let description = db.database().describe(p)?;
            Ok(Some((parsed, description)))
        })
        .await?;
        Ok(parsed.map(|(parsed, description)| Statement {
            kind: Kind::Sql(parsed, Arc::new(description)),
        }))
    }

    fn get_parameter_types(&self, stmt: &Statement) -> PgWireResult<Vec<Type>> {
        Ok(match &stmt.kind {
            Kind::Sql(_, d) => d.params.iter().map(|t| pg_type(*t)).collect(),
            Kind::Special(_) => Vec::new(),
        })
    }

    fn get_result_schema(
        &self,
        stmt: &Statement,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let format = column_format.cloned().unwrap_or(Format::UnifiedText);
        Ok(match &stmt.kind {
            Kind::Sql(_, d) if d.gives_rows => fields(&d.columns, &format),
            Kind::Sql(..) => Vec::new(),
            Kind::Special(special) => fields(&text_columns(special), &format),
        })
    }
}

#[async_trait]
impl ExtendedQueryHandler for Backend {
    type Statement = Statement;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        self.parser.clone()
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Statement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let (parsed, description) = match &portal.statement.statement.kind {
            Kind::Special(special) => {
                return self.special(
                    Self::principal(client),
                    special,
                    &portal.result_column_format,
                );
            }
            Kind::Sql(p, d) => (p.clone(), d.clone()),
        };
        let params = bind_params(&portal.statement, portal, &description)?;
        let (outcome, tag) = self.run_one(client, parsed, 0, params).await?;
        let columns = description.gives_rows.then_some(&description.columns[..]);
        self.response(outcome, tag, columns, &portal.result_column_format)
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        stmt: &StoredStatement<Statement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let ours = self.parser.get_parameter_types(&stmt.statement)?;
        let params = (0..ours.len().max(stmt.parameter_types.len()))
            .map(|i| {
                stmt.parameter_types
                    .get(i)
                    .cloned()
                    .flatten()
                    .filter(|t| *t != Type::UNKNOWN)
                    .or_else(|| ours.get(i).cloned())
                    .unwrap_or(Type::TEXT)
            })
            .collect();
        let fields = self.parser.get_result_schema(&stmt.statement, None)?;
        Ok(DescribeStatementResponse::new(params, fields))
    }
}

/// The portal's parameter values, read by the types the client declared at Parse or the
/// statement gives them.
fn bind_params(
    stmt: &StoredStatement<Statement>,
    portal: &Portal<Statement>,
    description: &Description,
) -> PgWireResult<Vec<Value>> {
    let count = description.params.len();
    if portal.parameters.len() != count {
        return Err(user_error(
            "08P01",
            format!(
                "bind message supplies {} parameters, but the statement takes {count}",
                portal.parameters.len()
            ),
        ));
    }
    (0..count)
        .map(|i| {
            let binary = field_format(&portal.parameter_format, i) == FieldFormat::Binary;
            super::types::param(
                i,
                portal.parameters[i].as_deref(),
                binary,
                stmt.parameter_types.get(i).and_then(|t| t.as_ref()),
                description.params[i],
            )
        })
        .collect()
}
