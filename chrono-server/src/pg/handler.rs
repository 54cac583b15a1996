//! One PostgreSQL connection: its ChronoDB session, the simple and extended query
//! protocols over it, and the transaction state PostgreSQL clients expect.
//!
//! Statements run on tokio's blocking pool under the server's statement timeout, with a
//! cancel token that a `CancelRequest`, the timeout or a client that goes away fires. As in
//! PostgreSQL, an error inside `BEGIN … COMMIT` fails the transaction: later statements are
//! refused (`25P02`) until `ROLLBACK` (a `COMMIT` then rolls back, and says so).

use std::collections::HashMap;
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
use pgwire::api::copy::CopyHandler;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler, send_describe_response};
use pgwire::api::results::CopyResponse;
use pgwire::api::results::{
    DescribePortalResponse, DescribeStatementResponse, FieldFormat, FieldInfo, QueryResponse,
    Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, METADATA_USER, Type};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::copy::{CopyData, CopyDone, CopyFail};
use pgwire::messages::data::DataRow;
use pgwire::messages::extendedquery::Describe;
use pgwire::messages::startup::ParameterStatus;

use super::copy::{self, CopySpec};
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
    /// Answered by the connection itself.
    Own(Own),
}

/// A statement the connection answers itself ([`Parser::own_statement`]).
#[derive(Clone, Debug)]
enum Own {
    /// See [`settings`].
    Special(Special),
    /// `COPY … FROM STDIN` / `COPY … TO STDOUT`.
    Copy(Arc<CopySpec>),
    /// `DECLARE name CURSOR FOR query`: the query's parse and description.
    Declare {
        name: String,
        hold: bool,
        parsed: Arc<Vec<Prepared>>,
        description: Arc<Description>,
    },
}

/// A cursor: `DECLARE` runs its query, `FETCH` hands its rows out. It is closed at the end
/// of its transaction unless declared `WITH HOLD`.
struct Cursor {
    columns: Vec<(String, Option<DataType>)>,
    rows: std::collections::VecDeque<Vec<Value>>,
    hold: bool,
}

/// A `COPY … FROM STDIN` in progress: rows are decoded as data arrives and inserted in
/// batches of [`COPY_BATCH_ROWS`] into the transaction (one opened for it when none was).
struct CopyIn {
    spec: Arc<CopySpec>,
    table: Arc<str>,
    columns: Arc<[String]>,
    types: Vec<Option<DataType>>,
    decoder: copy::Decoder,
    batch: Vec<Vec<Value>>,
    rows: u64,
    /// The COPY opened the transaction (and commits or rolls it back at the end).
    began: bool,
    /// The first error: later data is read and dropped, the error ends the COPY.
    error: Option<PgWireError>,
}

/// Rows a COPY inserts at a time.
const COPY_BATCH_ROWS: usize = 1000;

/// The connection's cursors by name (the parser reads their columns to describe a FETCH).
type Cursors = Arc<Mutex<HashMap<String, Cursor>>>;

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
    cursors: Cursors,
    copy_in: Mutex<Option<CopyIn>>,
    session: Arc<Mutex<Session>>,
    state: Mutex<State>,
    timeout: Duration,
    /// Whether users are authenticated (their name is then the audited principal).
    authenticated: bool,
}

/// Parses statements for the extended protocol (shares the database's parse cache).
pub struct Parser {
    db: Arc<ChronoDb>,
    cursors: Cursors,
}

impl Backend {
    pub fn new(db: Arc<ChronoDb>, timeout: Duration, authenticated: bool) -> Self {
        let session = db.session();
        let cursors = Cursors::default();
        Self {
            parser: Arc::new(Parser {
                db: db.clone(),
                cursors: cursors.clone(),
            }),
            cursors,
            copy_in: Mutex::new(None),
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
        // `ROLLBACK TO SAVEPOINT` runs in a failed transaction too, and ends its failure.
        if state.failed && !ends && !matches!(statement, ast::Statement::RollbackTo(_)) {
            return Err(aborted());
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
            self.close_transaction_cursors();
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
        if !in_txn {
            self.close_transaction_cursors();
        }
        let outcome = outcome.inspect_err(|_| {
            if in_txn {
                self.state.lock().failed = true;
            }
        });
        let outcome = outcome.map_err(|e| sqlstate::sql_error(&e))?;
        if is_rollback_to(&outcome) {
            self.state.lock().failed = false;
        }
        let commit = match &outcome {
            Outcome::Affected { commit_ts, .. }
            | Outcome::Done { commit_ts, .. }
            | Outcome::Rows { commit_ts, .. } => *commit_ts,
        };
        if let Some(ts) = commit {
            self.announce_commit(client, ts).await?;
        }
        let tag = tag_of(&statement, &outcome);
        Ok((outcome, tag))
    }

    /// Starts a `COPY`: out, the rows of its query; in, the wait for the client's data.
    async fn copy_start<C>(&self, client: &mut C, spec: Arc<CopySpec>) -> PgWireResult<Response>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if self.state.lock().failed {
            return Err(aborted());
        }
        let Some((parsed, description)) = parse_one(&self.db, spec.query.clone()).await? else {
            return Err(user_error("42601", "COPY without a query".into()));
        };
        let columns = description.columns.len();
        let Some(table) = spec.into.as_ref().map(|(t, _)| t.clone()) else {
            let (outcome, _) = self.run_one(client, parsed, 0, Vec::new()).await?;
            let Outcome::Rows {
                rows,
                columns: names,
                ..
            } = outcome
            else {
                return Err(user_error("42601", "COPY TO takes a query".into()));
            };
            let mut data = Vec::with_capacity(rows.len() + 1);
            if spec.header {
                let mut line = Vec::new();
                copy::encode_header(&spec, &names, &mut line);
                data.push(Ok(CopyData::new(line.into())));
            }
            data.extend(rows.iter().map(|row| {
                let mut line = Vec::new();
                copy::encode_row(&spec, row, &mut line);
                Ok(CopyData::new(line.into()))
            }));
            return Ok(Response::CopyOut(CopyResponse::new(
                0,
                columns,
                futures::stream::iter(data),
            )));
        };
        let began = !self.session.lock().in_transaction();
        if began {
            let principal = Self::principal(client);
            self.blocking(principal, false, |s| s.execute("BEGIN"))
                .await?
                .map_err(|e| sqlstate::sql_error(&e))?;
        }
        let (names, types): (Vec<String>, _) = description.columns.iter().cloned().unzip();
        *self.copy_in.lock() = Some(CopyIn {
            spec,
            table: table.into(),
            columns: names.into(),
            types,
            decoder: copy::Decoder::default(),
            batch: Vec::new(),
            rows: 0,
            began,
            error: None,
        });
        Ok(Response::CopyIn(CopyResponse::new(
            0,
            columns,
            futures::stream::empty(),
        )))
    }

    /// Decodes incoming COPY data; returns a batch that is due for insertion.
    fn copy_decode(&self, data: &[u8], last: bool) -> PgWireResult<Option<Vec<Vec<Value>>>> {
        let mut guard = self.copy_in.lock();
        let c = guard
            .as_mut()
            .ok_or_else(|| user_error("08P01", "no COPY is in progress".into()))?;
        if c.error.is_some() {
            return Ok(None);
        }
        let decoded = c.decoder.feed(&c.spec, data, last).and_then(|rows| {
            for (line, fields) in rows {
                if fields.len() != c.columns.len() {
                    return Err(format!(
                        "line {line}: {} fields where the COPY takes {}",
                        fields.len(),
                        c.columns.len()
                    ));
                }
                let row = fields
                    .into_iter()
                    .zip(&c.types)
                    .map(|(f, t)| copy::value(f, *t))
                    .collect::<Result<Vec<Value>, String>>()
                    .map_err(|e| format!("line {line}: {e}"))?;
                c.batch.push(row);
            }
            Ok(())
        });
        if let Err(e) = decoded {
            c.error = Some(user_error("22P04", format!("COPY {}: {e}", c.table)));
            return Ok(None);
        }
        Ok((last || c.batch.len() >= COPY_BATCH_ROWS).then(|| std::mem::take(&mut c.batch)))
    }

    /// Inserts a batch of COPY rows into the transaction.
    async fn copy_insert(&self, principal: Option<String>, rows: Vec<Vec<Value>>) {
        let (table, columns) = match self.copy_in.lock().as_ref() {
            Some(c) if !rows.is_empty() => (c.table.clone(), c.columns.clone()),
            _ => return,
        };
        let n = rows.len() as u64;
        let r = self
            .blocking(principal, false, move |s| {
                s.insert_rows(&table, &columns, rows)
            })
            .await
            .and_then(|r| r.map_err(|e| sqlstate::sql_error(&e)));
        if let Some(c) = self.copy_in.lock().as_mut() {
            match r {
                Ok(_) => c.rows += n,
                Err(e) => c.error = c.error.take().or(Some(e)),
            }
        }
    }

    /// Ends a COPY in: the transaction it opened commits (or rolls back on an error); an
    /// error in the connection's own transaction fails that transaction.
    async fn copy_end(
        &self,
        principal: Option<String>,
        failed: Option<PgWireError>,
    ) -> PgWireResult<(u64, Option<u64>)> {
        let Some(c) = self.copy_in.lock().take() else {
            return Err(user_error("08P01", "no COPY is in progress".into()));
        };
        let error = failed.or(c.error);
        let end = match (&error, c.began) {
            (None, true) => "COMMIT",
            (Some(_), true) => "ROLLBACK",
            (None, false) => return Ok((c.rows, None)),
            (Some(_), false) => {
                self.state.lock().failed = true;
                return Err(error.unwrap_or_else(aborted));
            }
        };
        let ended = self
            .blocking(principal, false, move |s| s.execute(end))
            .await?
            .map_err(|e| sqlstate::sql_error(&e));
        if let Some(e) = error {
            return Err(e);
        }
        let commit_ts = match ended?.pop() {
            Some(Outcome::Done { commit_ts, .. }) => commit_ts,
            _ => None,
        };
        Ok((c.rows, commit_ts))
    }

    /// Remembers and announces a commit's time (`chronodb.last_commit`).
    async fn announce_commit<C>(&self, client: &mut C, ts: u64) -> PgWireResult<()>
    where
        C: Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
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
        Ok(())
    }

    /// Runs a statement the connection answers itself ([`Parser::own_statement`]);
    /// `params` are a DECLARE's query's.
    async fn run_own<C>(
        &self,
        client: &mut C,
        own: &Own,
        params: Vec<Value>,
        format: &Format,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match own {
            Own::Special(special) => self.special(Self::principal(client), special, format),
            Own::Copy(spec) => self.copy_start(client, spec.clone()).await,
            Own::Declare {
                name,
                hold,
                parsed,
                description,
            } => {
                self.declare(client, name, *hold, parsed.clone(), description, params)
                    .await
            }
        }
    }

    /// Cursors not declared `WITH HOLD` end with their transaction.
    fn close_transaction_cursors(&self) {
        self.cursors.lock().retain(|_, c| c.hold);
    }

    /// `DECLARE`: runs the query (in the open transaction, as of its snapshot) and keeps its
    /// rows for `FETCH`.
    async fn declare<C>(
        &self,
        client: &mut C,
        name: &str,
        hold: bool,
        parsed: Arc<Vec<Prepared>>,
        description: &Description,
        params: Vec<Value>,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !parsed.first().is_some_and(|p| p.is_query()) {
            return Err(user_error(
                "42601",
                "DECLARE CURSOR takes a query (SELECT, VALUES, WITH …)".into(),
            ));
        }
        if !hold && !self.session.lock().in_transaction() {
            return Err(user_error(
                "25P01",
                "DECLARE CURSOR can only be used in transaction blocks".into(),
            ));
        }
        if self.cursors.lock().contains_key(name) {
            return Err(user_error(
                "42P03",
                format!("cursor \"{name}\" already exists"),
            ));
        }
        let (outcome, _) = self.run_one(client, parsed, 0, params).await?;
        let Outcome::Rows { rows, .. } = outcome else {
            return Err(user_error("42601", "DECLARE CURSOR takes a query".into()));
        };
        self.cursors.lock().insert(
            name.to_string(),
            Cursor {
                columns: description.columns.clone(),
                rows: rows.into(),
                hold,
            },
        );
        Ok(Response::Execution(Tag::new("DECLARE CURSOR")))
    }

    /// `FETCH` / `MOVE` forward through a cursor.
    fn fetch(
        &self,
        name: &str,
        count: Option<u64>,
        moving: bool,
        format: &Format,
    ) -> PgWireResult<Response> {
        let mut cursors = self.cursors.lock();
        let cursor = cursors.get_mut(name).ok_or_else(|| no_cursor(name))?;
        let n = count.map_or(cursor.rows.len(), |n| {
            usize::try_from(n)
                .unwrap_or(usize::MAX)
                .min(cursor.rows.len())
        });
        let rows: Vec<Vec<Value>> = cursor.rows.drain(..n).collect();
        if moving {
            return Ok(Response::Execution(Tag::new("MOVE").with_rows(n)));
        }
        let mut response = rows_response(&cursor.columns, rows, format)?;
        if let Response::Query(q) = &mut response {
            q.set_command_tag("FETCH");
        }
        Ok(response)
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
            Special::Fetch {
                name,
                count,
                moving,
            } => return self.fetch(name, *count, *moving, format),
            Special::Close(name) => {
                let mut cursors = self.cursors.lock();
                match name {
                    None => cursors.clear(),
                    Some(n) => {
                        cursors.remove(n).ok_or_else(|| no_cursor(n))?;
                    }
                }
                return Ok(Response::Execution(Tag::new("CLOSE CURSOR")));
            }
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
            Outcome::Rows { columns, rows, .. } => {
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

impl Parser {
    /// A statement the connection answers itself rather than the SQL engine: `COPY`,
    /// `DECLARE` (its query parsed and described), or a [`Special`]. `None`: SQL.
    async fn own_statement(&self, sql: &str) -> PgWireResult<Option<Own>> {
        if let Some(spec) = copy::parse(sql) {
            let spec = spec.map_err(|e| user_error("0A000", e))?;
            return Ok(Some(Own::Copy(Arc::new(spec))));
        }
        if let Some(d) = settings::declare(sql) {
            let Some((parsed, description)) = parse_one(&self.db, d.query).await? else {
                return Err(user_error("42601", "DECLARE without a query".into()));
            };
            return Ok(Some(Own::Declare {
                name: d.name,
                hold: d.hold,
                parsed,
                description: Arc::new(description),
            }));
        }
        Ok(settings::special(sql).map(Own::Special))
    }
}

/// Parses one statement (on the pool: it reads the catalog) and describes it; a text of
/// several statements is refused (one prepared statement is one statement).
async fn parse_one(
    db: &Arc<ChronoDb>,
    text: String,
) -> PgWireResult<Option<(Arc<Vec<Prepared>>, Description)>> {
    let db = db.clone();
    on_pool(move || {
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
    .await
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

fn aborted() -> PgWireError {
    user_error(
        "25P02",
        "current transaction is aborted, commands ignored until end of transaction block".into(),
    )
}

fn no_cursor(name: &str) -> PgWireError {
    user_error("34000", format!("cursor \"{name}\" does not exist"))
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
/// Whether `outcome` is a `ROLLBACK TO SAVEPOINT`'s (which ends a failed transaction's
/// failure).
fn is_rollback_to(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Done { tag, .. } if tag == ROLLBACK_TO)
}

/// The session's tag for `ROLLBACK TO SAVEPOINT`; PostgreSQL's is `ROLLBACK`.
const ROLLBACK_TO: &str = "ROLLBACK TO";

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
        Outcome::Done { tag, .. } if tag == ROLLBACK_TO => Tag::new("ROLLBACK"),
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
        if let Some(own) = self.parser.own_statement(query).await? {
            return Ok(vec![
                self.run_own(client, &own, Vec::new(), &Format::UnifiedText)
                    .await?,
            ]);
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
        if let Some(own) = self.own_statement(sql).await? {
            return Ok(Some(Statement {
                kind: Kind::Own(own),
            }));
        }
        Ok(parse_one(&self.db, sql.to_string())
            .await?
            .map(|(parsed, description)| Statement {
                kind: Kind::Sql(parsed, Arc::new(description)),
            }))
    }

    fn get_parameter_types(&self, stmt: &Statement) -> PgWireResult<Vec<Type>> {
        Ok(match &stmt.kind {
            Kind::Sql(_, d) | Kind::Own(Own::Declare { description: d, .. }) => {
                d.params.iter().map(|t| pg_type(*t)).collect()
            }
            Kind::Own(_) => Vec::new(),
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
            Kind::Sql(..) | Kind::Own(Own::Declare { .. } | Own::Copy(_)) => Vec::new(),
            Kind::Own(Own::Special(Special::Fetch {
                name,
                moving: false,
                ..
            })) => match self.cursors.lock().get(name) {
                Some(c) => fields(&c.columns, &format),
                None => Vec::new(),
            },
            Kind::Own(Own::Special(special)) => fields(&text_columns(special), &format),
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
            Kind::Sql(parsed, description) => (parsed.clone(), description.clone()),
            Kind::Own(own) => {
                let params = match own {
                    Own::Declare { description, .. } => {
                        bind_params(&portal.statement, portal, description)?
                    }
                    _ => Vec::new(),
                };
                return self
                    .run_own(client, own, params, &portal.result_column_format)
                    .await;
            }
        };
        let params = bind_params(&portal.statement, portal, &description)?;
        let (outcome, tag) = self.run_one(client, parsed, 0, params).await?;
        let columns = description.gives_rows.then_some(&description.columns[..]);
        self.response(outcome, tag, columns, &portal.result_column_format)
    }

    /// A cursor made by `DECLARE` is a portal too (PostgreSQL's clients describe it by
    /// name before they `FETCH` from it).
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == b'P'
            && let Some(name) = message.name.as_deref()
            && client.portal_store().get_portal(name).is_none()
        {
            let columns = self.cursors.lock().get(name).map(|c| c.columns.clone());
            if let Some(columns) = columns {
                let response = DescribePortalResponse::new(fields(&columns, &Format::UnifiedText));
                return send_describe_response(client, &response).await;
            }
        }
        // A statement with parameters and no result columns (an INSERT with `$1`) is
        // described as PostgreSQL does, ParameterDescription then NoData; an empty
        // RowDescription there tells JDBC the statement returns rows.
        if message.target_type == b'S'
            && let name = message.name.as_deref().unwrap_or(pgwire::api::DEFAULT_NAME)
            && let Some(pgwire::api::store::Entry::Value(stmt)) =
                client.portal_store().get_statement(name)
        {
            let response = self.do_describe_statement(client, &stmt).await?;
            if response.fields.is_empty() {
                use pgwire::messages::data::{NoData, ParameterDescription};
                let oids = response.parameters.iter().map(|t| t.oid()).collect();
                client
                    .feed(PgWireBackendMessage::ParameterDescription(
                        ParameterDescription::new(oids),
                    ))
                    .await?;
                client
                    .feed(PgWireBackendMessage::NoData(NoData::new()))
                    .await?;
                return Ok(());
            }
            return send_describe_response(client, &response).await;
        }
        self._on_describe(client, message).await
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

#[async_trait]
impl CopyHandler for Backend {
    async fn on_copy_data<C>(&self, client: &mut C, data: CopyData) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if let Some(batch) = self.copy_decode(&data.data, false)? {
            self.copy_insert(Self::principal(client), batch).await;
        }
        Ok(())
    }

    async fn on_copy_done<C>(&self, client: &mut C, _done: CopyDone) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let principal = Self::principal(client);
        if let Some(batch) = self.copy_decode(&[], true)? {
            self.copy_insert(principal.clone(), batch).await;
        }
        let (rows, commit) = self.copy_end(principal, None).await?;
        if let Some(ts) = commit {
            self.announce_commit(client, ts).await?;
        }
        client
            .send(PgWireBackendMessage::CommandComplete(
                Tag::new("COPY").with_rows(rows as usize).into(),
            ))
            .await?;
        Ok(())
    }

    async fn on_copy_fail<C>(&self, client: &mut C, fail: CopyFail) -> PgWireError
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let error = user_error("57014", format!("COPY from stdin failed: {}", fail.message));
        match self.copy_end(Self::principal(client), Some(error)).await {
            Err(e) => e,
            Ok(_) => user_error("57014", "COPY from stdin failed".into()),
        }
    }
}
