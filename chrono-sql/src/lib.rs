//! # chrono-sql
//!
//! ChronoDB's SQL engine over the [`chrono_storage`] MVCC store. One statement's way through
//! it:
//!
//! ```text
//! SQL text ─► parse/      limits.max_sql_bytes, tokens, timetravel::lift (AS OF / FOR
//!                         SYSTEM_TIME out of the tokens), shape check, sqlparser, then
//!                         translate into ChronoDB's own ast.rs (nothing after it imports
//!                         sqlparser) ─► Prepared
//!          ─► planner/    names bound against the catalog (cached by catalog generation);
//!                         parameters become slots, subqueries plan nodes; the query as
//!                         written: WHERE above a Join of the FROM list; INSERT/UPDATE/DELETE
//!                         are write nodes over the plan that finds their rows; CREATE,
//!                         ALTER, DROP and ANALYZE are plan roots of their own ─► plan::Root
//!          ─► optimizer/  named passes: constant_folding, predicate_pushdown, access_path
//!                         (typed key bounds), join_order, join_method; estimates from cost/
//!          ─► plan_cache  kept with the Prepared statement until the catalog or the
//!                         statistics change: the next execution starts here
//!          ─► execution/  pull-based operators over the kept plan itself, each binding
//!                         its own parameters when built (a plan with subqueries is first
//!                         copied with their results in), rows streamed to the caller or a
//!                         RowSink; writes through execution/write.rs, schema changes
//!                         through execution/schema.rs
//!          ─► table.rs    key bounds → key bytes, rows and index entries over the store
//! ```
//!
//! Take `SELECT name FROM users WHERE id = ?` run twice: the first time it is parsed (and
//! the text's parse cached), planned to `Project name ← Filter id = $1 ← Scan users`; predicate
//! pushdown moves the condition into the scan, the access-path pass makes the scan a primary-key lookup on `[$1]`, and the plan is kept.
//! The second time the kept plan's key (catalog generation, statistics version) still
//! matches, so execution copies the plan with `$1` filled in, `table.rs` encodes the key and
//! the store answers with one point read. Every statement runs under a
//! [`limits::StatementGuard`]: a memory budget charged by each operator that holds rows, a
//! cancel token and a deadline checked in every operator loop, and a cap on values
//! functions build; at most `max_concurrent_statements` run at once. See [`limits`].
//! Writes and schema changes serialize through commit-time checks ([`catalog`],
//! [`schema_gate`]).
//!
//! Time travel: `AS OF TIMESTAMP <unix seconds | 'ISO-8601' | ?>` after a table (that
//! table) or after the FROM/JOIN list (every table of that SELECT), and SQL:2011
//! `FOR SYSTEM_TIME AS OF | BETWEEN … AND … | FROM … TO … | ALL` after a table; the range
//! forms give one row per version with `_system_from` and `_system_to` (NULL while current).
//!
//! ## Example
//!
//! ```
//! use chrono_sql::{Database, Outcome};
//! use chrono_storage::Value;
//!
//! # fn main() -> chrono_sql::Result<()> {
//! let db = Database::in_memory();
//! let mut s = db.session();
//! s.execute("CREATE TABLE accounts (user_id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)")?;
//! s.execute("INSERT INTO accounts VALUES (1, 100)")?;
//! let Outcome::Affected { commit_ts: Some(before), .. } =
//!     s.execute("UPDATE accounts SET balance = balance + 100 WHERE user_id = 1")?.remove(0)
//! else { unreachable!() };
//! // Seconds with microseconds: exactly the version that commit wrote.
//! let as_of = format!("{}.{:06}", before / 1_000_000, before % 1_000_000);
//! let sql = format!("SELECT balance FROM accounts AS OF TIMESTAMP {as_of} WHERE user_id = 1");
//! let Outcome::Rows { rows, .. } = s.execute(&sql)?.remove(0) else { unreachable!() };
//! assert_eq!(rows, vec![vec![Value::Int(200)]]);
//! # Ok(())
//! # }
//! ```

pub mod ast;
pub mod catalog;
pub mod cost;
pub mod error;
pub mod execution;
pub mod expr;
pub mod limits;
pub mod optimizer;
pub mod parse;
pub mod plan;
pub mod plan_cache;
pub mod planner;
pub mod schema_gate;
pub mod session;
pub mod statements;
mod stored_test;
pub mod system_catalog;
pub mod table;
pub mod types;

pub use cost::{CardinalityEstimator, Feedback, StatisticsEstimator, TableStats};
pub use error::{Error, Result};
pub use limits::{CancelToken, Limits};
pub use parse::{Prepared, parse, parse_with, timetravel};
pub use session::{
    AutoAnalyze, Database, Description, Outcome, RowIter, RowSink, RowVersion, Session,
};
