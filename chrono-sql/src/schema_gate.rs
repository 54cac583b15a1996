//! The schema gate: schema changes and writes take turns, so a schema change on a busy
//! table is not starved.
//!
//! Correctness does not rest on the gate: a write commits only if the definition it was
//! planned against is unchanged, and an index build or column fill commits only if no row
//! of its table was written meanwhile ([`crate::catalog::depend_on_definition`],
//! [`crate::catalog::depend_on_rows`]; first committer wins). But an index build reads
//! every row, and on a table that takes a write every few microseconds some write always
//! lands first: the build would conflict forever. So an autocommitted schema change holds
//! the gate exclusively from its snapshot to its commit, and an autocommitted write holds
//! it shared for the same span. Inside `BEGIN … COMMIT` a statement holds it only while it
//! runs; the commit checks settle any race (one side gets a conflict to retry).
//!
//! Waiting for the gate counts against the statement's deadline and stops when it is
//! cancelled.

use std::time::Duration;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::Result;
use crate::limits::StatementGuard;

/// How a statement relates to the schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaRole {
    /// It only reads (queries, transaction control).
    Reads,
    /// It writes rows (INSERT, UPDATE, DELETE).
    Writes,
    /// It changes the schema (CREATE, ALTER, DROP).
    Changes,
}

/// Held while a statement may not interleave with schema changes.
pub enum GateHold<'a> {
    /// Nothing held.
    Open,
    /// Shared with other writers.
    Shared(RwLockReadGuard<'a, ()>),
    /// Alone.
    Exclusive(RwLockWriteGuard<'a, ()>),
}

/// See the module documentation.
#[derive(Default)]
pub struct SchemaGate(RwLock<()>);

const POLL: Duration = Duration::from_millis(10);

impl SchemaGate {
    /// Waits for the gate as `role` needs it, checking `guard` (deadline, cancel) while
    /// waiting.
    pub fn enter(&self, role: SchemaRole, guard: &StatementGuard) -> Result<GateHold<'_>> {
        loop {
            let held = match role {
                SchemaRole::Reads => return Ok(GateHold::Open),
                SchemaRole::Writes => self.0.try_read_for(POLL).map(GateHold::Shared),
                SchemaRole::Changes => self.0.try_write_for(POLL).map(GateHold::Exclusive),
            };
            if let Some(h) = held {
                return Ok(h);
            }
            guard.check()?;
        }
    }
}
