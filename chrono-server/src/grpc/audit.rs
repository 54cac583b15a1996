//! `chronodb.v1.Audit` and `chronodb.v1.Optimizer`: the audit trail and the learned
//! optimizer for gRPC clients, while the server runs (the CLI cannot open a database the
//! server holds).

use chrono_audit::{Hash, signing};
use chrono_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{CallLog, Shared, convert};
use crate::{Error, Result};

/// `chronodb.v1.Audit`.
pub struct AuditService(pub(super) Shared);

fn hash(bytes: &[u8], what: &str) -> Result<Hash> {
    <[u8; 32]>::try_from(bytes)
        .map_err(|_| Error::InvalidInput(format!("{what} must be 32 bytes (SHA3-256)")))
}

#[tonic::async_trait]
impl pb::audit_server::Audit for AuditService {
    async fn verify(
        &self,
        _req: Request<pb::VerifyRequest>,
    ) -> Result<Response<pb::VerifyResponse>, Status> {
        let _log = CallLog::new("Audit/Verify");
        let db = self.0.db.clone();
        let (database, report) = self
            .0
            .blocking(move |_| {
                let database = db.audit_trail()?.database().to_string();
                Ok((database, db.verify_audit_integrity()?))
            })
            .await?;
        let (kind, position) = match &report.failure {
            Some(f) => (format!("{:?}", f.kind), f.position.clone()),
            None => (String::new(), String::new()),
        };
        Ok(Response::new(pb::VerifyResponse {
            ok: report.failure.is_none(),
            database,
            transactions: report.transactions,
            entries: report.entries,
            versions: report.versions,
            failure_kind: kind,
            failure_position: position,
            elapsed_ms: report.elapsed.as_secs_f64() * 1e3,
        }))
    }

    async fn report(
        &self,
        req: Request<pb::AuditReportRequest>,
    ) -> Result<Response<pb::AuditReportResponse>, Status> {
        let _log = CallLog::new("Audit/Report");
        let pb::AuditReportRequest {
            table,
            from_micros,
            to_micros,
        } = req.into_inner();
        let db = self.0.db.clone();
        let entries = self
            .0
            .blocking(move |_| {
                let from = u64::try_from(from_micros).unwrap_or(0);
                let to = u64::try_from(to_micros).unwrap_or(0);
                Ok(db.audit_trail()?.generate_audit_report(&table, from, to)?)
            })
            .await?;
        let entries = entries
            .into_iter()
            .map(|e| pb::AuditEntry {
                entry: e.seq,
                transaction: e.tx,
                commit_ts_micros: e.commit_ts as i64,
                table: e.table,
                operation: convert::operation(e.op) as i32,
                key: chrono_storage::encoding::decode_key(&e.key)
                    .map(|vals| vals.iter().map(convert::value).collect())
                    .unwrap_or_default(),
                principal: e.principal,
                before_sha3: e.before.map(|h| h.to_vec()),
                after_sha3: e.after.map(|h| h.to_vec()),
                statements_sha3: e.statements.to_vec(),
            })
            .collect();
        Ok(Response::new(pb::AuditReportResponse { entries }))
    }

    async fn verify_transaction(
        &self,
        req: Request<pb::VerifyTransactionRequest>,
    ) -> Result<Response<pb::VerifyTransactionResponse>, Status> {
        let _log = CallLog::new("Audit/VerifyTransaction");
        let tx_hash = req.into_inner().tx_hash;
        let db = self.0.db.clone();
        let (tx, failure) = self
            .0
            .blocking(move |_| {
                let h = hash(&tx_hash, "tx_hash")?;
                Ok(db.audit_trail()?.verify_transaction(&h)?)
            })
            .await?;
        let (kind, position) = match &failure {
            Some(f) => (format!("{:?}", f.kind), f.position.clone()),
            None => (String::new(), String::new()),
        };
        Ok(Response::new(pb::VerifyTransactionResponse {
            ok: failure.is_none(),
            transaction: tx.seq,
            commit_ts_micros: tx.commit_ts as i64,
            entries: tx.entries,
            principal: tx.principal,
            failure_kind: kind,
            failure_position: position,
        }))
    }

    async fn inclusion_proof(
        &self,
        req: Request<pb::InclusionProofRequest>,
    ) -> Result<Response<pb::InclusionProofResponse>, Status> {
        let _log = CallLog::new("Audit/InclusionProof");
        let pb::InclusionProofRequest {
            transaction,
            tree_size,
        } = req.into_inner();
        let db = self.0.db.clone();
        let (database, p) = self
            .0
            .blocking(move |_| {
                let trail = db.audit_trail()?;
                Ok((
                    trail.database().to_string(),
                    trail.inclusion_proof(transaction, tree_size)?,
                ))
            })
            .await?;
        Ok(Response::new(pb::InclusionProofResponse {
            database,
            index: p.index,
            tree_size: p.size,
            tx_hash: p.tx_hash.to_vec(),
            path: p.path.iter().map(|h| h.to_vec()).collect(),
            root: p.root.to_vec(),
        }))
    }

    async fn consistency_proof(
        &self,
        req: Request<pb::ConsistencyProofRequest>,
    ) -> Result<Response<pb::ConsistencyProofResponse>, Status> {
        let _log = CallLog::new("Audit/ConsistencyProof");
        let pb::ConsistencyProofRequest { old_size, new_size } = req.into_inner();
        let db = self.0.db.clone();
        let (database, old_root, new_root, path) = self
            .0
            .blocking(move |_| {
                let trail = db.audit_trail()?;
                Ok((
                    trail.database().to_string(),
                    trail.root_at(old_size)?,
                    trail.root_at(new_size)?,
                    trail.consistency_proof(old_size, new_size)?,
                ))
            })
            .await?;
        Ok(Response::new(pb::ConsistencyProofResponse {
            database,
            old_root: old_root.to_vec(),
            new_root: new_root.to_vec(),
            path: path.iter().map(|h| h.to_vec()).collect(),
        }))
    }

    async fn checkpoint(
        &self,
        _req: Request<pb::CheckpointRequest>,
    ) -> Result<Response<pb::CheckpointResponse>, Status> {
        let _log = CallLog::new("Audit/Checkpoint");
        let db = self.0.db.clone();
        let (cp, note) = self
            .0
            .blocking(move |_| {
                let cp = db.audit_trail()?.checkpoint();
                let note = match &db.config().features.audit.signing_key_file {
                    Some(file) => {
                        let hex = std::fs::read_to_string(file).map_err(|e| {
                            Error::Config(format!(
                                "features.audit.signing_key_file {}: {e}",
                                file.display()
                            ))
                        })?;
                        signing::sign(&cp, &signing::signing_key(hex.trim())?)
                    }
                    None => String::new(),
                };
                Ok((cp, note))
            })
            .await?;
        Ok(Response::new(pb::CheckpointResponse {
            database: cp.database.map(|d| d.to_string()).unwrap_or_default(),
            size: cp.size,
            root: cp.root.to_vec(),
            timestamp_micros: cp.timestamp as i64,
            signed_note: note,
        }))
    }
}

/// `chronodb.v1.Optimizer`.
pub struct OptimizerService(pub(super) Shared);

fn learned_off() -> Status {
    Status::failed_precondition(if crate::ml::BUILT_IN {
        "the learned optimizer is off (features.ml_optimizer.enabled: false)"
    } else {
        "this chronodb is built without the learned optimizer (cargo feature ml)"
    })
}

#[tonic::async_trait]
impl pb::optimizer_server::Optimizer for OptimizerService {
    async fn performance_metrics(
        &self,
        _req: Request<pb::PerformanceMetricsRequest>,
    ) -> Result<Response<pb::PerformanceMetricsResponse>, Status> {
        let _log = CallLog::new("Optimizer/PerformanceMetrics");
        let Some(ml) = self.0.db.ml_optimizer() else {
            return Err(learned_off());
        };
        let metrics = ml.get_performance_metrics();
        Ok(Response::new(pb::PerformanceMetricsResponse {
            json: serde_json::to_string(&metrics).unwrap_or_default(),
            text: metrics.to_string(),
        }))
    }

    async fn training_report(
        &self,
        _req: Request<pb::TrainingReportRequest>,
    ) -> Result<Response<pb::TrainingReportResponse>, Status> {
        let _log = CallLog::new("Optimizer/TrainingReport");
        if self.0.db.ml_optimizer().is_none() {
            return Err(learned_off());
        }
        let db = self.0.db.clone();
        let text = self
            .0
            .blocking(move |_| {
                let ml = db
                    .ml_optimizer()
                    .ok_or_else(|| Error::Config("the learned optimizer is off".into()))?;
                Ok(ml.generate_training_report()?.to_string())
            })
            .await?;
        Ok(Response::new(pb::TrainingReportResponse { text }))
    }
}
