//! The change hub: a commit observer that hands every commit to live subscribers through a
//! bounded broadcast buffer. A subscriber that falls behind the buffer is told so (it then
//! catches up from the stored history), so a slow reader never holds writers back and never
//! makes the server's memory grow without bound.
//!
//! [`follow`] is the change feed every streaming interface serves (gRPC's `Changes`, the
//! WebSocket monitor): history from a commit timestamp, then live commits, each exactly once
//! and in order, decoded into [`CommitChanges`].

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono_sql::catalog::TableDef;
use chrono_sql::expr::Expr;
use chrono_storage::{Commit, CommitObserver, KeyRange, Operation, TimeWindow, Value, WriteBatch};
use tokio::sync::{broadcast, mpsc};

use crate::{ChronoDb, Error, Result};

/// Commits kept for subscribers that have not read them yet.
pub const BUFFERED_COMMITS: usize = 1024;

/// Publishes commits to subscribers.
pub struct ChangeHub {
    sender: broadcast::Sender<Arc<Commit>>,
    /// The newest commit another server made that this one has seen (shared engines):
    /// feeds read those commits from the stored history.
    foreign: tokio::sync::watch::Sender<u64>,
}

impl ChangeHub {
    /// A hub with an empty buffer.
    pub fn new() -> Self {
        Self {
            sender: broadcast::channel(BUFFERED_COMMITS).0,
            foreign: tokio::sync::watch::channel(0).0,
        }
    }

    /// Told of every commit other servers make (shared engines).
    pub fn foreign(&self) -> tokio::sync::watch::Receiver<u64> {
        self.foreign.subscribe()
    }

    /// Commits buffered for subscribers that have not read them (never above
    /// [`BUFFERED_COMMITS`]).
    pub fn queued(&self) -> usize {
        self.sender.len()
    }

    /// A receiver of every commit from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Commit>> {
        self.sender.subscribe()
    }
}

impl Default for ChangeHub {
    fn default() -> Self {
        Self::new()
    }
}

impl CommitObserver for ChangeHub {
    fn on_commit(&self, _commit: &Commit, _batch: &mut WriteBatch) -> chrono_storage::Result<()> {
        Ok(())
    }

    fn foreign_commits(&self, upto_ts: u64) {
        self.foreign.send_replace(upto_ts);
    }

    fn after_commit(&self, commit: &Commit) {
        // Copying the commit costs only when somebody listens.
        if self.sender.receiver_count() > 0 {
            let _ = self.sender.send(Arc::new(commit.clone()));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Change feeds: what every streaming interface (gRPC, WebSocket) serves.
// ---------------------------------------------------------------------------------------

/// One changed row of a commit, decoded.
#[derive(Debug, Clone)]
pub struct RowChange {
    /// The table, as declared.
    pub table: String,
    /// Its column names, in order (the rows' values follow them).
    pub columns: Arc<[String]>,
    /// What the commit did to the row.
    pub op: Operation,
    /// The row before (`None` for an insert).
    pub before: Option<Vec<Value>>,
    /// The row after (`None` for a delete).
    pub after: Option<Vec<Value>>,
}

/// The changes one commit made to the followed tables.
#[derive(Debug, Clone)]
pub struct CommitChanges {
    /// The commit timestamp (microseconds); resuming from it misses and repeats nothing.
    pub commit_ts: u64,
    /// Its changes, table by table.
    pub changes: Vec<RowChange>,
}

/// A followed table and its optional filter.
struct Target {
    def: TableDef,
    columns: Arc<[String]>,
    predicate: Option<Expr>,
}

impl Target {
    fn keeps(&self, before: Option<&[Value]>, after: Option<&[Value]>) -> bool {
        let Some(p) = &self.predicate else {
            return true;
        };
        let holds =
            |row: Option<&[Value]>| row.is_some_and(|r| matches!(p.test(r), Ok(Some(true))));
        holds(before) || holds(after)
    }

    fn change(
        &self,
        op: Operation,
        before: Option<Vec<Value>>,
        after: Option<Vec<Value>>,
    ) -> Option<RowChange> {
        if !self.keeps(before.as_deref(), after.as_deref()) {
            return None;
        }
        Some(RowChange {
            table: self.def.name.clone(),
            columns: self.columns.clone(),
            op,
            before,
            after,
        })
    }
}

/// The changes of one live commit to the targets.
fn live_changes(commit: &Commit, targets: &[Target]) -> Result<Option<CommitChanges>> {
    let mut changes = Vec::new();
    for c in &commit.changes {
        let Some(t) = targets.iter().find(|t| t.def.keyspace == c.keyspace) else {
            continue;
        };
        let decode = |raw: Option<&Vec<u8>>| raw.map(|r| t.def.decode_row(r)).transpose();
        let before = decode(c.before.as_ref())?;
        let after = decode(c.after.as_ref())?;
        changes.extend(t.change(c.op, before, after));
    }
    Ok((!changes.is_empty()).then_some(CommitChanges {
        commit_ts: commit.commit_ts,
        changes,
    }))
}

/// How a replay from the stored history is bounded.
#[derive(Clone)]
struct Replay {
    /// `server.max_replay_changes`.
    max_changes: usize,
    /// Ends the replay early when its subscriber went away.
    gone: tokio::sync::mpsc::Sender<Result<CommitChanges>>,
}

/// The commits after `from` up to the newest, from the stored history; and that newest time.
/// Refused past `server.max_replay_changes` row changes; stops early (with an empty
/// answer) once the subscriber went away.
fn history(
    db: &ChronoDb,
    targets: &[Target],
    from: u64,
    replay: &Replay,
) -> Result<(Vec<CommitChanges>, u64)> {
    let store = db.database().store();
    let upto = store.current_ts();
    let mut commits: BTreeMap<u64, Vec<RowChange>> = BTreeMap::new();
    let mut kept = 0usize;
    let too_many = || {
        Error::Sql(chrono_sql::Error::ResourceExhausted(format!(
            "the history after {from} holds more than {} row changes (limit: server.max_replay_changes); \
             subscribe from a later time",
            replay.max_changes
        )))
    };
    for t in targets {
        let mut group: Vec<chrono_storage::Version> = Vec::new();
        let mut flush = |group: &mut Vec<chrono_storage::Version>| -> Result<()> {
            // Newest first: each version's "before" is the next one in the group.
            for (i, v) in group.iter().enumerate() {
                if v.commit_ts <= from {
                    break;
                }
                let before = group
                    .get(i + 1)
                    .and_then(|older| older.value.as_deref())
                    .map(|raw| t.def.decode_row(raw))
                    .transpose()?;
                let after = v
                    .value
                    .as_deref()
                    .map(|raw| t.def.decode_row(raw))
                    .transpose()?;
                if let Some(e) = t.change(v.op, before, after) {
                    kept += 1;
                    if kept > replay.max_changes {
                        return Err(too_many());
                    }
                    commits.entry(v.commit_ts).or_default().push(e);
                }
            }
            group.clear();
            Ok(())
        };
        for (n, v) in store
            .versions(t.def.keyspace, KeyRange::All, upto, TimeWindow::All)?
            .enumerate()
        {
            if n % 4096 == 0 && replay.gone.is_closed() {
                return Ok((Vec::new(), upto));
            }
            let v = v?;
            if group.last().is_some_and(|g| g.key != v.key) {
                flush(&mut group)?;
            }
            group.push(v);
        }
        flush(&mut group)?;
    }
    let events = commits
        .into_iter()
        .map(|(commit_ts, changes)| CommitChanges { commit_ts, changes })
        .collect();
    Ok((events, upto))
}

/// Row changes read per batch of a replay through the audit trail (whole commits; a
/// commit larger than this is read whole).
const REPLAY_BATCH_CHANGES: usize = 1024;

/// Transactions per table read from the audit trail's (table, time) index per batch.
const REPLAY_BATCH_COMMITS: usize = 256;

/// A batch of a replay: its commits, and the position (commit time, transaction number) it
/// ended at when there is more.
type Batch = (Vec<CommitChanges>, Option<(u64, u64)>);

/// One batch of a replay through the audit trail: the commits to the targets after
/// position `after` (commit time, transaction number) up to commit time `upto`, whole, until
/// about [`REPLAY_BATCH_CHANGES`] row changes; and the position it ended at, `None` when it
/// reached `upto`. Each change's rows are read from the versions (one seek each), so a
/// replay holds one batch in memory however far back it starts.
fn audited_batch(db: &ChronoDb, targets: &[Target], after: (u64, u64), upto: u64) -> Result<Batch> {
    let trail = db.audit_trail()?;
    let store = db.database().store();
    let mut commits: Vec<(u64, u64)> = Vec::new();
    // A table whose index gave a full batch may have more commits after its last one: the
    // batch ends there, so commits of the other tables are not delivered out of order.
    let mut cutoff: Option<(u64, u64)> = None;
    for t in targets {
        let found = trail.table_commits_after(&t.def.name, after, upto, REPLAY_BATCH_COMMITS)?;
        if found.len() == REPLAY_BATCH_COMMITS
            && let Some(last) = found.last()
        {
            cutoff = Some(cutoff.map_or(*last, |c| c.min(*last)));
        }
        commits.extend(found);
    }
    commits.sort_unstable();
    commits.dedup();
    if let Some(c) = cutoff {
        commits.retain(|p| *p <= c);
    }
    let mut events = Vec::new();
    let mut changes_read = 0usize;
    let mut position = after;
    for (ts, seq) in commits {
        let tx = trail.transaction(seq)?;
        let mut changes = Vec::new();
        for entry in trail.entries_of(&tx) {
            let entry = entry?;
            let Some(t) = targets.iter().find(|t| t.def.keyspace == entry.keyspace) else {
                continue;
            };
            let row = |at: u64| -> Result<Option<Vec<Value>>> {
                match store.get_at(entry.keyspace, &entry.key, at)? {
                    Some((_, raw)) => Ok(Some(t.def.decode_row(&raw)?)),
                    None => Ok(None),
                }
            };
            let before = match entry.op {
                Operation::Insert => None,
                _ => row(ts.saturating_sub(1))?,
            };
            let after_row = match entry.op {
                Operation::Delete => None,
                _ => row(ts)?,
            };
            changes.extend(t.change(entry.op, before, after_row));
        }
        changes_read += changes.len();
        if !changes.is_empty() {
            events.push(CommitChanges {
                commit_ts: ts,
                changes,
            });
        }
        position = (ts, seq);
        if changes_read >= REPLAY_BATCH_CHANGES {
            return Ok((events, Some(position)));
        }
    }
    let more = cutoff.is_some();
    Ok((events, more.then_some(position)))
}

/// Replays the commits to the targets after `from` up to the newest one into `tx`, and
/// returns that newest commit's time. Through the audit trail (when it is on) a batch at a
/// time, each read holding one of `server.max_concurrent_replays` places and sent with
/// back-pressure, so a subscriber that does not read holds one batch; without the audit
/// trail, from a scan of the versions (at most `server.max_replay_changes` changes).
/// `Ok(None)`: the subscriber went away.
async fn replay(
    db: &Arc<ChronoDb>,
    targets: &Arc<Vec<Target>>,
    from: u64,
    tx: &mpsc::Sender<Result<CommitChanges>>,
    bounded: &Replay,
) -> Result<Option<u64>> {
    let joined = |e: tokio::task::JoinError| Error::Io(format!("change feed: {e}"));
    let place = || async {
        db.replays()
            .acquire_owned()
            .await
            .map_err(|e| Error::Io(format!("change feed: {e}")))
    };
    if db.audit_trail().is_err() {
        let _place = place().await?;
        let (db, targets, bounded) = (db.clone(), targets.clone(), bounded.clone());
        let (events, upto) =
            tokio::task::spawn_blocking(move || history(&db, &targets, from, &bounded))
                .await
                .map_err(joined)??;
        for e in events {
            if tx.send(Ok(e)).await.is_err() {
                return Ok(None);
            }
        }
        return Ok(Some(upto));
    }
    let upto = db.database().store().current_ts();
    let mut position = (from, u64::MAX);
    loop {
        let batch = {
            let _place = place().await?;
            let (db, targets) = (db.clone(), targets.clone());
            tokio::task::spawn_blocking(move || audited_batch(&db, &targets, position, upto))
                .await
                .map_err(joined)??
        };
        let (events, next) = batch;
        for e in events {
            if tx.send(Ok(e)).await.is_err() {
                return Ok(None);
            }
        }
        match next {
            Some(p) => position = p,
            None => return Ok(Some(upto)),
        }
    }
}

/// Follows the commits to `tables` (rows where `predicate` holds before or after, when
/// given): from the stored history after `from` (microseconds) if given, then live, each
/// commit exactly once and in commit order, until the receiver is dropped or `stopping`
/// turns true. The feed's position holds retention back; a `from` before the GC horizon is
/// an error naming the earliest readable time.
///
/// Bounded: the filter is bound (its subqueries run) on a blocking thread under the
/// statement timeout (`server.statement_timeout_ms`), and a filter is tested on live
/// commits on a blocking thread, so neither holds up the server's async workers; a replay
/// from the history streams a batch at a time (see `replay`) and stops when its
/// subscriber goes away; the feed runs one commit ahead of its subscriber.
///
/// How: the feed joins the live broadcast *before* reading history up to a snapshot `T`,
/// and skips live commits at or before the last timestamp sent; a feed that falls behind the
/// broadcast buffer catches up from history the same way, and so does one that hears of
/// other servers' commits (a shared engine: their commits are read from history).
pub async fn follow(
    db: Arc<ChronoDb>,
    tables: &[String],
    predicate: Option<&str>,
    from: Option<u64>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> Result<mpsc::Receiver<Result<CommitChanges>>> {
    if tables.is_empty() {
        return Err(Error::InvalidInput("name at least one table".into()));
    }
    let timeout = std::time::Duration::from_millis(db.config().server.statement_timeout_ms.max(1));
    let targets = {
        let (db, tables) = (db.clone(), tables.to_vec());
        let predicate = predicate.map(str::to_string);
        tokio::task::spawn_blocking(move || targets_of(&db, &tables, predicate.as_deref(), timeout))
            .await
            .map_err(|e| Error::Io(format!("change feed: {e}")))??
    };
    let filtered = targets.iter().any(|t| t.predicate.is_some());
    let targets = Arc::new(targets);
    let store = db.database().store().clone();
    // Join the live broadcast (and hear of other servers' commits) before reading history
    // or the newest commit's time, so nothing falls between: a commit is visible before it
    // is broadcast, so one missed by the subscription is at or before `start`.
    let mut live = db.subscribe_commits();
    let mut foreign = db.foreign_commits();
    // Without a start, "now" is the newest commit anywhere: on a shared engine this
    // server's view may lag other servers' commits, which would then be delivered as news.
    let start = match from {
        Some(from) => from,
        None => store.sync_head()?,
    };
    let mut pin = store.pin(start)?;
    // One commit ahead: a subscriber that stops reading holds little (the broadcast
    // buffer, shared by every feed, absorbs bursts; past it a feed catches up from history).
    let (tx, rx) = mpsc::channel(1);
    let replay_limits = Replay {
        max_changes: db.config().server.max_replay_changes.max(1),
        gone: tx.clone(),
    };
    tokio::spawn(async move {
        let mut last = match from {
            Some(from) => match replay(&db, &targets, from, &tx, &replay_limits).await {
                Ok(Some(upto)) => upto,
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            },
            None => start,
        };
        loop {
            let next = tokio::select! {
                // Other servers' commits first: one of them may be older than a live
                // commit of this server that is already waiting.
                biased;
                Ok(()) = foreign.changed() => Err(broadcast::error::RecvError::Lagged(0)),
                r = live.recv() => r,
                _ = stopping.wait_for(|s| *s) => return,
                _ = tx.closed() => return,
            };
            match next {
                Ok(commit) => {
                    if commit.commit_ts <= last {
                        continue;
                    }
                    last = commit.commit_ts;
                    pin.advance(last);
                    let changes = if filtered {
                        let targets = targets.clone();
                        tokio::task::spawn_blocking(move || live_changes(&commit, &targets))
                            .await
                            .unwrap_or_else(|e| Err(Error::Io(format!("change feed: {e}"))))
                    } else {
                        live_changes(&commit, &targets)
                    };
                    match changes {
                        Ok(Some(e)) => {
                            if tx.send(Ok(e)).await.is_err() {
                                return;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    match replay(&db, &targets, last, &tx, &replay_limits).await {
                        Ok(Some(upto)) => {
                            last = upto;
                            pin.advance(last);
                        }
                        Ok(None) => return,
                        Err(e) => {
                            let _ = tx.send(Err(e)).await;
                            return;
                        }
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Ok(rx)
}

/// The followed tables and their filters (subqueries run now, within `timeout`).
fn targets_of(
    db: &ChronoDb,
    tables: &[String],
    predicate: Option<&str>,
    timeout: std::time::Duration,
) -> Result<Vec<Target>> {
    let mut targets = Vec::new();
    for name in tables {
        let def = db.table(name)?;
        let predicate = match predicate.map(str::trim) {
            None | Some("") => None,
            Some(p) => Some(db.database().row_predicate_within(&def, p, Some(timeout))?),
        };
        let columns: Arc<[String]> = def.columns.iter().map(|c| c.name.clone()).collect();
        targets.push(Target {
            def,
            columns,
            predicate,
        });
    }
    Ok(targets)
}
