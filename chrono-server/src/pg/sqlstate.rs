//! ChronoDB's errors as PostgreSQL errors: one SQLSTATE per condition, from one exhaustive
//! match on the SQL engine's error (a new variant does not compile until it has its code).
//! Clients act on these codes: `40001` (a write conflict) is retried by ORMs and retry
//! loops, `23505` is a duplicate key, `57014` a cancelled or timed-out statement.

use pgwire::error::{ErrorInfo, PgWireError};

/// The SQLSTATE of a SQL engine error.
pub fn code(e: &chrono_sql::Error) -> &'static str {
    use chrono_sql::Error as E;
    match e {
        E::Syntax(_) => "42601",
        E::NotFound(m) => {
            if m.contains("column") {
                "42703" // undefined_column
            } else if m.contains("function") {
                "42883" // undefined_function
            } else if m.starts_with("no such table") || m.starts_with("no such view") {
                "42P01" // undefined_table
            } else {
                "42704" // undefined_object
            }
        }
        E::AlreadyExists(m) => {
            if m.starts_with("table") || m.starts_with("view") {
                "42P07" // duplicate_table
            } else {
                "42710" // duplicate_object
            }
        }
        E::InvalidInput(m) => {
            if m.contains("type mismatch") {
                "42804" // datatype_mismatch
            } else if m.contains("overflow") {
                "22003" // numeric_value_out_of_range
            } else if m.contains("parameters but") {
                "08P01" // protocol_violation: wrong number of parameters
            } else {
                "22023" // invalid_parameter_value
            }
        }
        E::Constraint(m) => {
            if m.starts_with("NOT NULL") {
                "23502"
            } else if m.starts_with("UNIQUE") {
                "23505"
            } else if m.contains("FOREIGN") || m.contains("references") {
                "23503"
            } else if m.starts_with("CHECK") {
                "23514"
            } else {
                "23000"
            }
        }
        E::Conflict(_) => "40001", // serialization_failure: retry the transaction
        E::Unsupported(_) => "0A000",
        E::Corruption(_) => "XX001", // data_corrupted
        E::TransactionState(m) => {
            if m.contains("already open") {
                "25001" // active_sql_transaction
            } else if m.contains("no transaction") {
                "25P01" // no_active_sql_transaction
            } else {
                "25000"
            }
        }
        E::Storage(_) => "58000",     // system_error
        E::Unavailable(_) => "57P03", // cannot_connect_now
        E::ResourceExhausted(m) => {
            if m.contains("memory") {
                "53200" // out_of_memory
            } else if m.contains("concurrent") || m.contains("queue") {
                "53300" // too_many_connections (admission)
            } else {
                "54000" // program_limit_exceeded
            }
        }
        E::Cancelled(_) | E::DeadlineExceeded(_) => "57014", // query_canceled
    }
}

/// A SQL engine error as the client sees it.
pub fn sql_error(e: &chrono_sql::Error) -> PgWireError {
    user_error(code(e), e.to_string())
}

/// An error with SQLSTATE `code` for the client.
pub fn user_error(code: &str, message: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        code.into(),
        message,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_sql::Database;

    fn code_of(db: &Database, sql: &str) -> &'static str {
        code(&db.execute(sql).unwrap_err())
    }

    #[test]
    fn conditions_get_the_codes_clients_act_on() {
        let db = Database::in_memory();
        db.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT NOT NULL)")
            .unwrap();
        db.execute("INSERT INTO t VALUES (1, 'a')").unwrap();
        assert_eq!(code_of(&db, "INSERT INTO t VALUES (1, 'b')"), "23505");
        assert_eq!(code_of(&db, "INSERT INTO t VALUES (2, NULL)"), "23502");
        assert_eq!(code_of(&db, "SELECT * FROM nope"), "42P01");
        assert_eq!(code_of(&db, "SELECT nope FROM t"), "42703");
        assert_eq!(code_of(&db, "SELEC 1"), "42601");
        assert_eq!(code_of(&db, "CREATE TABLE t (a INT PRIMARY KEY)"), "42P07");
        assert_eq!(code_of(&db, "COMMIT"), "25P01");
        assert_eq!(
            code(&chrono_sql::Error::Conflict("write conflict".into())),
            "40001"
        );
        assert_eq!(code(&chrono_sql::Error::Cancelled("x".into())), "57014");
    }
}
