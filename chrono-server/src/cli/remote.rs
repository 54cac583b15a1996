//! `--connect HOST:PORT`: the command-line tool talking to a running `chronodb serve` over
//! gRPC instead of opening the database itself (a database is open in one process at a
//! time, so beside a running server this is the way in).
//!
//! SQL goes through `Sql/Execute`; `BEGIN` / `START TRANSACTION`, `COMMIT` / `END` and
//! `ROLLBACK` typed in the shell become `Sql/Begin`, `Commit` and `Rollback`, and the
//! statements between them run in that transaction. `.tables` and `.schema` use
//! `Sql/Tables`, `.health` and `chronodb health` `Monitor/HealthReport`, `chronodb audit
//! verify` `Audit/Verify`. The token is `--token` or `CHRONODB_TOKEN` (sent as
//! `Authorization: Bearer …`); `https://HOST:PORT` (or `--tls-ca FILE`) speaks TLS, checking
//! the server's certificate against the system's roots or that CA.

use std::time::Duration;

use chrono_proto::v1 as pb;
use chrono_sql::Outcome;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

use crate::error::{Error, Result};
use crate::grpc::convert;

/// How to reach a server.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// `HOST:PORT`, `http://HOST:PORT` or `https://HOST:PORT`.
    pub address: String,
    /// The bearer token, if the server has tokens.
    pub token: Option<String>,
    /// A PEM CA certificate to check the server's certificate with (implies TLS).
    pub tls_ca: Option<std::path::PathBuf>,
}

/// A connection to a running server, with the shell's open transaction.
pub struct Remote {
    runtime: tokio::runtime::Runtime,
    channel: Channel,
    token: Option<String>,
    transaction: Option<String>,
    /// What the connection is to, for the prompt and messages.
    pub address: String,
}

fn status(e: tonic::Status) -> Error {
    Error::Remote(convert::kind_of(e.code()), e.message().to_string())
}

/// The first word of a statement, upper-cased.
fn first_word(sql: &str) -> String {
    sql.trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

impl Remote {
    /// Connects (within 10 seconds).
    pub fn connect(target: &Target) -> Result<Remote> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Io(format!("runtime: {e}")))?;
        let tls = target.tls_ca.is_some() || target.address.starts_with("https://");
        let uri = if target.address.contains("://") {
            target.address.clone()
        } else if tls {
            format!("https://{}", target.address)
        } else {
            format!("http://{}", target.address)
        };
        let mut endpoint = Endpoint::from_shared(uri.clone())
            .map_err(|e| Error::InvalidInput(format!("--connect {}: {e}", target.address)))?
            .connect_timeout(Duration::from_secs(10));
        if tls {
            let mut config = ClientTlsConfig::new().with_enabled_roots();
            if let Some(ca) = &target.tls_ca {
                let pem = std::fs::read(ca)
                    .map_err(|e| Error::Io(format!("cannot read {}: {e}", ca.display())))?;
                config = config.ca_certificate(tonic::transport::Certificate::from_pem(pem));
            }
            endpoint = endpoint
                .tls_config(config)
                .map_err(|e| Error::InvalidInput(format!("--tls-ca: {e}")))?;
        }
        let channel = runtime.block_on(endpoint.connect()).map_err(|e| {
            Error::Io(format!(
                "cannot connect to {uri}: {e} (is `chronodb serve` running there?)"
            ))
        })?;
        Ok(Remote {
            runtime,
            channel,
            token: target.token.clone(),
            transaction: None,
            address: target.address.clone(),
        })
    }

    fn request<T>(&self, message: T) -> Result<tonic::Request<T>> {
        let mut request = tonic::Request::new(message);
        if let Some(token) = &self.token {
            let value = format!("Bearer {token}").parse().map_err(|_| {
                Error::InvalidInput("the token has characters a header cannot hold".into())
            })?;
            request.metadata_mut().insert("authorization", value);
        }
        Ok(request)
    }

    /// True while a transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.transaction.is_some()
    }

    /// Runs SQL text (transaction control as the RPCs, anything else through `Execute`);
    /// its outcomes in order.
    pub fn execute(&mut self, sql: &str) -> Result<Vec<Outcome>> {
        let mut client = pb::sql_client::SqlClient::new(self.channel.clone())
            .max_decoding_message_size(usize::MAX);
        let word = first_word(sql);
        let word = match word.as_str() {
            "START" => "BEGIN".to_string(),
            "END" => "COMMIT".to_string(),
            _ => word,
        };
        match word.as_str() {
            "BEGIN" if self.transaction.is_none() => {
                let request = self.request(pb::BeginRequest {})?;
                let id = self
                    .runtime
                    .block_on(client.begin(request))
                    .map_err(status)?
                    .into_inner()
                    .transaction_id;
                self.transaction = Some(id);
                Ok(vec![Outcome::Done {
                    tag: "BEGIN".into(),
                    commit_ts: None,
                }])
            }
            "COMMIT" if self.transaction.is_some() => {
                let id = self.transaction.take().unwrap_or_default();
                let request = self.request(pb::TransactionRef { transaction_id: id })?;
                let done = self
                    .runtime
                    .block_on(client.commit(request))
                    .map_err(status)?
                    .into_inner();
                Ok(vec![Outcome::Done {
                    tag: "COMMIT".into(),
                    commit_ts: done.commit_ts_micros.map(|t| t.max(0) as u64),
                }])
            }
            "ROLLBACK" if self.transaction.is_some() => {
                let id = self.transaction.take().unwrap_or_default();
                let request = self.request(pb::TransactionRef { transaction_id: id })?;
                self.runtime
                    .block_on(client.rollback(request))
                    .map_err(status)?;
                Ok(vec![Outcome::Done {
                    tag: "ROLLBACK".into(),
                    commit_ts: None,
                }])
            }
            _ => {
                let request = self.request(pb::ExecuteRequest {
                    sql: sql.to_string(),
                    params: vec![],
                    transaction_id: self.transaction.clone().unwrap_or_default(),
                })?;
                // Ctrl-C drops the call, which cancels the statement on the server.
                let answer = self.runtime.block_on(async {
                    tokio::select! {
                        a = client.execute(request) => a,
                        _ = async {
                            loop {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                                if crate::cli::shell::interrupted() {
                                    break;
                                }
                            }
                        } => Err(tonic::Status::cancelled("cancelled (Ctrl-C)")),
                    }
                });
                let answer = match answer {
                    Ok(a) => a,
                    Err(e) => {
                        // The server rolled an idle transaction back: say so once.
                        if e.code() == tonic::Code::NotFound && self.transaction.is_some() {
                            self.transaction = None;
                        }
                        return Err(status(e));
                    }
                };
                Ok(answer
                    .into_inner()
                    .results
                    .into_iter()
                    .map(convert::from_outcome)
                    .collect())
            }
        }
    }

    /// The server's tables.
    pub fn tables(&self) -> Result<Vec<pb::TableInfo>> {
        let mut client = pb::sql_client::SqlClient::new(self.channel.clone());
        let request = self.request(pb::TablesRequest {})?;
        Ok(self
            .runtime
            .block_on(client.tables(request))
            .map_err(status)?
            .into_inner()
            .tables)
    }

    /// The server's health report: JSON, or text.
    pub fn health(&self, json: bool) -> Result<String> {
        let mut client = pb::monitor_client::MonitorClient::new(self.channel.clone())
            .max_decoding_message_size(usize::MAX);
        let request = self.request(pb::HealthReportRequest {})?;
        let report = self
            .runtime
            .block_on(client.health_report(request))
            .map_err(status)?
            .into_inner();
        Ok(if json { report.json } else { report.text })
    }

    /// The server's audited changes to `table` in `[from, to]` (microseconds).
    pub fn report(
        &self,
        table: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<chrono_audit::EntryRecord>> {
        let mut client = pb::audit_client::AuditClient::new(self.channel.clone())
            .max_decoding_message_size(usize::MAX);
        let request = self.request(pb::AuditReportRequest {
            table: table.to_string(),
            from_micros: from.min(i64::MAX as u64) as i64,
            to_micros: to.min(i64::MAX as u64) as i64,
        })?;
        let entries = self
            .runtime
            .block_on(client.report(request))
            .map_err(status)?
            .into_inner()
            .entries;
        let hash = |b: &[u8]| -> Option<chrono_audit::Hash> { b.try_into().ok() };
        Ok(entries
            .into_iter()
            .map(|e| chrono_audit::EntryRecord {
                seq: e.entry,
                tx: e.transaction,
                commit_ts: e.commit_ts_micros.max(0) as u64,
                op: match pb::Operation::try_from(e.operation) {
                    Ok(pb::Operation::Insert) => chrono_storage::Operation::Insert,
                    Ok(pb::Operation::Delete) => chrono_storage::Operation::Delete,
                    _ => chrono_storage::Operation::Update,
                },
                key: chrono_storage::encoding::encode_key(
                    &e.key
                        .into_iter()
                        .map(convert::from_value)
                        .collect::<Vec<_>>(),
                ),
                table: e.table,
                keyspace: 0,
                principal: e.principal,
                before: e.before_sha3.as_deref().and_then(hash),
                after: e.after_sha3.as_deref().and_then(hash),
                statements: hash(&e.statements_sha3).unwrap_or_default(),
            })
            .collect())
    }

    /// Verifies the server's audit trail: whether it holds, and what was checked or failed.
    pub fn verify(&self) -> Result<(bool, String)> {
        let mut client = pb::audit_client::AuditClient::new(self.channel.clone());
        let request = self.request(pb::VerifyRequest {})?;
        let answer = self
            .runtime
            .block_on(client.verify(request))
            .map_err(status)?
            .into_inner();
        let mut text = format!(
            "database {}: checked {} transactions, {} entries, {} row versions in {:.1} ms\n",
            answer.database,
            answer.transactions,
            answer.entries,
            answer.versions,
            answer.elapsed_ms
        );
        if answer.ok {
            text += "audit trail OK\n";
        } else {
            text += &format!(
                "FAILED: {} at {}\n",
                answer.failure_kind, answer.failure_position
            );
        }
        Ok((answer.ok, text))
    }
}
