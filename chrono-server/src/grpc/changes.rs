//! `chronodb.v1.Changes`: the change feed ([`crate::changes::follow`]) as a gRPC stream.

use chrono_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{Shared, convert};
use crate::changes::{CommitChanges, follow};

fn event(c: CommitChanges) -> pb::CommitEvent {
    pb::CommitEvent {
        commit_ts_micros: c.commit_ts as i64,
        changes: c
            .changes
            .into_iter()
            .map(|r| pb::ChangeEvent {
                table: r.table,
                operation: convert::operation(r.op) as i32,
                before: r.before.as_deref().map(convert::row),
                after: r.after.as_deref().map(convert::row),
            })
            .collect(),
    }
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
        let mut feed = follow(
            self.0.db.clone(),
            &tables,
            Some(&predicate),
            from_micros.map(|f| f.max(0) as u64),
            self.0.stopping.clone(),
        )
        .await
        .map_err(|e| convert::status(&e))?;
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(async move {
            while let Some(next) = feed.recv().await {
                let item = next.map(event).map_err(|e| convert::status(&e));
                let stop = item.is_err();
                if tx.send(item).await.is_err() || stop {
                    return;
                }
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }
}
