//! Every conversion between protocol messages and ChronoDB's types, and the one mapping
//! from ChronoDB's errors to gRPC status codes.

use chrono_proto::v1 as pb;
use chrono_sql::Outcome;
use chrono_storage::{ErrorKind, Operation, Value};
use tonic::{Code, Status};

use crate::Error;

/// A value for the wire.
pub fn value(v: &Value) -> pb::Value {
    use pb::value::Kind;
    let kind = match v {
        Value::Null => Kind::Null(true),
        Value::Bool(b) => Kind::Bool(*b),
        Value::Int(i) => Kind::Int64(*i),
        Value::Float(f) => Kind::Double(*f),
        Value::Text(s) => Kind::String(s.clone()),
        Value::Blob(b) => Kind::Bytes(b.clone()),
        Value::Timestamp(t) => Kind::TimestampMicros(*t),
    };
    pb::Value { kind: Some(kind) }
}

/// A value from the wire (an unset value is NULL).
pub fn from_value(v: pb::Value) -> Value {
    use pb::value::Kind;
    match v.kind {
        None | Some(Kind::Null(_)) => Value::Null,
        Some(Kind::Bool(b)) => Value::Bool(b),
        Some(Kind::Int64(i)) => Value::Int(i),
        Some(Kind::Double(f)) => Value::Float(f),
        Some(Kind::String(s)) => Value::Text(s),
        Some(Kind::Bytes(b)) => Value::Blob(b),
        Some(Kind::TimestampMicros(t)) => Value::Timestamp(t),
    }
}

/// A row for the wire.
pub fn row(values: &[Value]) -> pb::Row {
    pb::Row {
        values: values.iter().map(value).collect(),
    }
}

fn micros(ts: Option<u64>) -> Option<i64> {
    ts.map(|t| t as i64)
}

/// A statement's outcome for the wire.
pub fn outcome(o: Outcome) -> pb::StatementResult {
    use pb::statement_result::Result as R;
    let result = match o {
        Outcome::Rows { columns, rows, .. } => R::Query(pb::QueryResult {
            columns,
            rows: rows.iter().map(|r| row(r)).collect(),
        }),
        Outcome::Affected {
            affected,
            commit_ts,
        } => R::Write(pb::WriteResult {
            affected,
            commit_ts_micros: micros(commit_ts),
        }),
        Outcome::Done { tag, commit_ts } => R::Done(pb::DoneResult {
            tag,
            commit_ts_micros: micros(commit_ts),
        }),
    };
    pb::StatementResult {
        result: Some(result),
    }
}

/// A statement's outcome from the wire (a client's view).
pub fn from_outcome(r: pb::StatementResult) -> Outcome {
    use pb::statement_result::Result as R;
    let ts = |t: Option<i64>| t.map(|t| t.max(0) as u64);
    match r.result {
        Some(R::Query(q)) => Outcome::Rows {
            columns: q.columns,
            rows: q
                .rows
                .into_iter()
                .map(|r| r.values.into_iter().map(from_value).collect())
                .collect(),
            commit_ts: None,
        },
        Some(R::Write(w)) => Outcome::Affected {
            affected: w.affected,
            commit_ts: ts(w.commit_ts_micros),
        },
        Some(R::Done(d)) => Outcome::Done {
            tag: d.tag,
            commit_ts: ts(d.commit_ts_micros),
        },
        None => Outcome::Done {
            tag: String::new(),
            commit_ts: None,
        },
    }
}

/// The kind of failure a status code stands for (a client's view of [`code`]).
pub fn kind_of(code: Code) -> ErrorKind {
    match code {
        Code::InvalidArgument => ErrorKind::InvalidInput,
        Code::NotFound => ErrorKind::NotFound,
        Code::AlreadyExists => ErrorKind::AlreadyExists,
        Code::Aborted => ErrorKind::Conflict,
        Code::Unimplemented => ErrorKind::Unsupported,
        Code::DataLoss => ErrorKind::Corruption,
        Code::FailedPrecondition | Code::Unauthenticated | Code::PermissionDenied => {
            ErrorKind::FailedPrecondition
        }
        Code::ResourceExhausted => ErrorKind::ResourceExhausted,
        Code::Cancelled => ErrorKind::Cancelled,
        Code::DeadlineExceeded => ErrorKind::DeadlineExceeded,
        _ => ErrorKind::Unavailable,
    }
}

/// An operation for the wire.
pub fn operation(op: Operation) -> pb::Operation {
    match op {
        Operation::Insert => pb::Operation::Insert,
        Operation::Update => pb::Operation::Update,
        Operation::Delete => pb::Operation::Delete,
    }
}

/// The status for a SQL error.
pub fn sql_status(e: &chrono_sql::Error) -> Status {
    Status::new(code(e.kind()), e.to_string())
}

/// The status for any error of the facade.
pub fn status(e: &Error) -> Status {
    Status::new(code(e.kind()), e.to_string())
}

/// The one map from a kind of failure to a gRPC status code.
pub fn code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidInput | ErrorKind::Constraint => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::Conflict => Code::Aborted,
        ErrorKind::Unsupported => Code::Unimplemented,
        ErrorKind::Corruption => Code::DataLoss,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
        ErrorKind::Cancelled => Code::Cancelled,
        ErrorKind::DeadlineExceeded => Code::DeadlineExceeded,
        ErrorKind::Unavailable => Code::Unavailable,
    }
}
