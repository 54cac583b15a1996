//! `chronodb.v1.Changes`: replay from the stored history, then follow live commits.
//!
//! The subscriber joins the live broadcast *before* reading history up to a snapshot `T`;
//! live commits at or before the last timestamp sent are skipped. So every commit after the
//! requested time is sent exactly once, in commit order: those up to `T` from history, the
//! rest live. A subscriber that falls behind the broadcast buffer catches up from history
//! the same way.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono_proto::v1 as pb;
use chrono_sql::catalog::TableDef;
use chrono_sql::expr::Expr;
use chrono_storage::{Commit, KeyRange, Operation, TimeWindow, Value};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status};

use super::{Shared, convert};
use crate::{ChronoDb, Error, Result};

/// A subscribed table and its optional filter.
struct Target {
    def: TableDef,
    predicate: Option<Expr>,
}

impl Target {
    fn keeps(&self, before: Option<&[Value]>, after: Option<&[Value]>) -> bool {
        let Some(p) = &self.predicate else {
            return true;
        };
        let holds = |row: Option<&[Value]>| {
            row.is_some_and(|r| {
                matches!(
                    p.eval(r).map(|v| chrono_sql::types::truth(&v)),
                    Ok(Ok(Some(true)))
                )
            })
        };
        holds(before) || holds(after)
    }

    fn event(
        &self,
        op: Operation,
        before: Option<Vec<Value>>,
        after: Option<Vec<Value>>,
    ) -> Option<pb::ChangeEvent> {
        if !self.keeps(before.as_deref(), after.as_deref()) {
            return None;
        }
        Some(pb::ChangeEvent {
            table: self.def.name.clone(),
            operation: convert::operation(op) as i32,
            before: before.as_deref().map(convert::row),
            after: after.as_deref().map(convert::row),
        })
    }
}

/// The events of one live commit for the targets.
fn live_event(commit: &Commit, targets: &[Target]) -> Result<Option<pb::CommitEvent>> {
    let mut changes = Vec::new();
    for c in &commit.changes {
        let Some(t) = targets.iter().find(|t| t.def.keyspace == c.keyspace) else {
            continue;
        };
        let before = c
            .before
            .as_deref()
            .map(|raw| t.def.decode_row(raw))
            .transpose()?;
        let after = c
            .after
            .as_deref()
            .map(|raw| t.def.decode_row(raw))
            .transpose()?;
        changes.extend(t.event(c.op, before, after));
    }
    Ok((!changes.is_empty()).then_some(pb::CommitEvent {
        commit_ts_micros: commit.commit_ts as i64,
        changes,
    }))
}

/// The commits after `from` up to the newest, from the stored history; and that newest time.
fn history(db: &ChronoDb, targets: &[Target], from: u64) -> Result<(Vec<pb::CommitEvent>, u64)> {
    let store = db.database().store();
    let upto = store.current_ts();
    let mut commits: BTreeMap<u64, Vec<pb::ChangeEvent>> = BTreeMap::new();
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
                if let Some(e) = t.event(v.op, before, after) {
                    commits.entry(v.commit_ts).or_default().push(e);
                }
            }
            group.clear();
            Ok(())
        };
        for v in store.versions(t.def.keyspace, KeyRange::All, upto, TimeWindow::All)? {
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
        .map(|(ts, changes)| pb::CommitEvent {
            commit_ts_micros: ts as i64,
            changes,
        })
        .collect();
    Ok((events, upto))
}

/// `chronodb.v1.Changes`.
pub struct ChangesService(pub(super) Shared);

#[tonic::async_trait]
impl pb::changes_server::Changes for ChangesService {
    type SubscribeStream = tokio_stream::wrappers::ReceiverStream<Result<pb::CommitEvent, Status>>;

    async fn subscribe(
        &self,
        req: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let _log = super::CallLog::new("Changes/Subscribe");
        let pb::SubscribeRequest {
            tables,
            predicate,
            from_micros,
        } = req.into_inner();
        if tables.is_empty() {
            return Err(Status::invalid_argument("name at least one table"));
        }
        let db = self.0.db.clone();
        let all = db
            .database()
            .tables()
            .map_err(|e| convert::sql_status(&e))?;
        let mut targets = Vec::new();
        for name in &tables {
            let def = all
                .iter()
                .find(|t| t.name.eq_ignore_ascii_case(name))
                .cloned()
                .ok_or_else(|| Status::not_found(format!("no such table: {name}")))?;
            let predicate = if predicate.trim().is_empty() {
                None
            } else {
                Some(
                    db.database()
                        .row_predicate(&def, &predicate)
                        .map_err(|e| convert::sql_status(&e))?,
                )
            };
            targets.push(Target { def, predicate });
        }
        let targets = Arc::new(targets);
        // The subscriber's position holds retention back (its catch-up reads history from
        // there); a position before the GC horizon is refused, not silently shortened.
        let store = db.database().store().clone();
        let start = from_micros.map_or_else(|| store.current_ts(), |f| f.max(0) as u64);
        let mut pin = store
            .pin(start)
            .map_err(|e| convert::status(&Error::from(e)))?;
        // Join the live broadcast before reading history, so nothing falls between.
        let mut live = db.subscribe_commits();
        let (tx, rx) = mpsc::channel(64);
        let mut stopping = self.0.stopping.clone();
        tokio::spawn(async move {
            let catch_up = |from: u64| {
                let (db, targets) = (db.clone(), targets.clone());
                async move {
                    tokio::task::spawn_blocking(move || history(&db, &targets, from))
                        .await
                        .map_err(|e| Status::internal(e.to_string()))?
                        .map_err(|e: Error| convert::status(&e))
                }
            };
            let mut last = match from_micros {
                Some(from) => match catch_up(from.max(0) as u64).await {
                    Ok((events, upto)) => {
                        for e in events {
                            if tx.send(Ok(e)).await.is_err() {
                                return;
                            }
                        }
                        upto
                    }
                    Err(s) => {
                        let _ = tx.send(Err(s)).await;
                        return;
                    }
                },
                None => db.database().store().current_ts(),
            };
            loop {
                let next = tokio::select! {
                    r = live.recv() => r,
                    _ = stopping.wait_for(|s| *s) => return,
                };
                match next {
                    Ok(commit) => {
                        if commit.commit_ts <= last {
                            continue;
                        }
                        last = commit.commit_ts;
                        pin.advance(last);
                        match live_event(&commit, &targets) {
                            Ok(Some(e)) => {
                                if tx.send(Ok(e)).await.is_err() {
                                    return;
                                }
                            }
                            Ok(None) => {}
                            Err(e) => {
                                let _ = tx.send(Err(convert::status(&e))).await;
                                return;
                            }
                        }
                    }
                    Err(RecvError::Lagged(_)) => match catch_up(last).await {
                        Ok((events, upto)) => {
                            for e in events {
                                if tx.send(Ok(e)).await.is_err() {
                                    return;
                                }
                            }
                            last = upto;
                            pin.advance(last);
                        }
                        Err(s) => {
                            let _ = tx.send(Err(s)).await;
                            return;
                        }
                    },
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }
}
