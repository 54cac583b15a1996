//! What PostgreSQL clients say besides SQL for ChronoDB's engine: `SET` / `RESET` /
//! `SHOW` of session parameters, `SELECT version()`, `current_setting(…)`,
//! `current_database()` and the like. Drivers send these when they connect (pgjdbc sets
//! `extra_float_digits` and `application_name`, psql asks for the version, SQLAlchemy for
//! `standard_conforming_strings` and the isolation level); they are answered here, per
//! connection, in both query protocols. Parameters ChronoDB has no use for are kept so
//! `SHOW` gives back what was set; `TimeZone` stays `UTC` (timestamps are sent as UTC
//! instants, which clients convert themselves).
//!
//! `SHOW chronodb.last_commit` gives the commit time of the connection's last write (also
//! sent as the `chronodb.last_commit` parameter status after each commit): ISO-8601 in UTC
//! with microseconds, ready for `AS OF TIMESTAMP '…'`.

use std::collections::BTreeMap;

/// A statement answered here rather than by the SQL engine.
#[derive(Debug, Clone, PartialEq)]
pub enum Special {
    /// `SET name = value` (also `SET SESSION …`, `SET LOCAL …`, `SET TIME ZONE …`).
    Set(String, String),
    /// `RESET name` / `RESET ALL` (`None`).
    Reset(Option<String>),
    /// A statement with nothing to do here: its command tag.
    Tag(&'static str),
    /// One row of one text column.
    Value {
        /// The column's name.
        column: String,
        /// What it reads.
        what: Read,
    },
    /// `SHOW ALL`.
    ShowAll,
    /// `FETCH [FORWARD|NEXT] [n|ALL] [FROM|IN] name`, or `MOVE …` (`moving`: no rows sent).
    Fetch {
        /// The cursor's name.
        name: String,
        /// Rows wanted (`None`: all that are left).
        count: Option<u64>,
        /// `MOVE`: skip the rows.
        moving: bool,
    },
    /// `CLOSE name` / `CLOSE ALL` (`None`).
    Close(Option<String>),
}

impl Special {
    /// The text columns of the rows it gives (none: it gives a command tag).
    pub fn columns(&self) -> Vec<String> {
        match self {
            Special::Value { column, .. } => vec![column.clone()],
            Special::ShowAll => ["name", "setting", "description"]
                .map(String::from)
                .to_vec(),
            Special::Set(..)
            | Special::Reset(_)
            | Special::Tag(_)
            | Special::Fetch { .. }
            | Special::Close(_) => Vec::new(),
        }
    }
}

/// What a [`Special::Value`] reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// A parameter's value.
    Setting(String),
    /// `version()`.
    Version,
    /// `current_user` / `session_user`.
    User,
}

/// The version `SELECT version()` gives.
pub fn version() -> String {
    format!(
        "PostgreSQL 15.0 (ChronoDB {}), compatible wire protocol",
        env!("CARGO_PKG_VERSION")
    )
}

/// The parameters a connection starts with.
pub fn defaults() -> BTreeMap<String, String> {
    [
        ("server_version", "15.0"),
        ("server_version_num", "150000"),
        ("server_encoding", "UTF8"),
        ("client_encoding", "UTF8"),
        ("datestyle", "ISO, MDY"),
        ("intervalstyle", "postgres"),
        ("timezone", "UTC"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
        ("transaction_isolation", "repeatable read"),
        ("default_transaction_isolation", "repeatable read"),
        ("transaction_read_only", "off"),
        ("default_transaction_read_only", "off"),
        ("in_hot_standby", "off"),
        ("max_identifier_length", "63"),
        ("search_path", "public"),
        ("application_name", ""),
        ("extra_float_digits", "1"),
        ("is_superuser", "off"),
        ("lc_collate", "C"),
        ("lc_ctype", "C"),
        ("chronodb.last_commit", ""),
        ("chronodb.database", "chronodb"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Parameters whose value does not change by `SET` (the server decides them).
pub fn fixed(name: &str) -> bool {
    matches!(
        name,
        "server_version"
            | "server_version_num"
            | "server_encoding"
            | "integer_datetimes"
            | "max_identifier_length"
            | "chronodb.last_commit"
            | "chronodb.database"
            | "in_hot_standby"
    )
}

/// The statement as a [`Special`], when it is one.
pub fn special(sql: &str) -> Option<Special> {
    let s = sql.trim().trim_end_matches(';').trim();
    let lower = s.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    match words.first().copied()? {
        "set" => {
            let mut rest = &words[1..];
            if matches!(rest.first(), Some(&"session") | Some(&"local"))
                && rest.get(1) != Some(&"characteristics")
            {
                rest = &rest[1..];
            }
            match rest {
                ["time", "zone", ..] => Some(Special::Set(
                    "timezone".into(),
                    unquote(&original_after(s, 3 + words.len() - rest.len() - 1)),
                )),
                ["transaction", ..] | ["session", "characteristics", ..] => {
                    Some(Special::Tag("SET"))
                }
                [name, ..] => {
                    let (name, value) = split_assignment(s, name)?;
                    Some(Special::Set(name, value))
                }
                [] => None,
            }
        }
        "reset" => match words.get(1) {
            Some(&"all") => Some(Special::Reset(None)),
            Some(name) => Some(Special::Reset(Some(name.to_string()))),
            None => None,
        },
        "show" => match words.get(1..) {
            Some(["all"]) => Some(Special::ShowAll),
            Some(["time", "zone"]) => Some(setting("TimeZone", "timezone")),
            Some(["transaction", "isolation", "level"]) => {
                Some(setting("transaction_isolation", "transaction_isolation"))
            }
            Some([name]) => Some(setting(name, name)),
            _ => None,
        },
        "discard" | "deallocate" | "listen" | "unlisten" => Some(Special::Tag(match words[0] {
            "discard" => "DISCARD ALL",
            "deallocate" => "DEALLOCATE",
            "listen" => "LISTEN",
            _ => "UNLISTEN",
        })),
        "fetch" | "move" => fetch(s, words[0] == "move"),
        "close" => {
            let tokens = tokens(s);
            match tokens.as_slice() {
                [_, all] if all.eq_ignore_ascii_case("all") => Some(Special::Close(None)),
                [_, name] => Some(Special::Close(Some(ident(name)))),
                _ => None,
            }
        }
        "select" => select_function(&lower),
        _ => None,
    }
}

fn setting(column: &str, name: &str) -> Special {
    Special::Value {
        column: column.to_string(),
        what: Read::Setting(name.to_string()),
    }
}

/// `SELECT version()`, `SELECT current_setting('x')` and the like, alone in a statement.
fn select_function(lower: &str) -> Option<Special> {
    let body = lower.strip_prefix("select")?.trim();
    let body = body.strip_prefix("pg_catalog.").unwrap_or(body);
    let (call, alias) = match body.split_once(" as ") {
        Some((c, a)) => (c.trim(), Some(a.trim().trim_matches('"').to_string())),
        None => (body, None),
    };
    let value = |default: &str, what: Read| {
        Some(Special::Value {
            column: alias.clone().unwrap_or_else(|| default.to_string()),
            what,
        })
    };
    match call {
        "version()" => value("version", Read::Version),
        "current_schema()" | "current_schema" => {
            value("current_schema", Read::Setting("search_path".into()))
        }
        "current_database()" => value(
            "current_database",
            Read::Setting("chronodb.database".into()),
        ),
        "current_user" | "session_user" | "user" => value(call, Read::User),
        _ => {
            let arg = call
                .strip_prefix("current_setting(")?
                .strip_suffix(')')?
                .trim();
            let name = arg.strip_prefix('\'')?.strip_suffix('\'')?;
            value("current_setting", Read::Setting(name.to_string()))
        }
    }
}

/// The words of `s`, a double-quoted name (spaces and all) being one word.
fn tokens(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let end = if rest.starts_with('"') {
            let mut i = 1;
            let b = rest.as_bytes();
            loop {
                match b.get(i) {
                    None => break b.len(),
                    Some(b'"') if b.get(i + 1) == Some(&b'"') => i += 2,
                    Some(b'"') => break i + 1,
                    Some(_) => i += 1,
                }
            }
        } else {
            rest.find(char::is_whitespace).unwrap_or(rest.len())
        };
        out.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    out
}

/// A name as written: `"Quoted"` keeps its case, a bare one is folded to lower case.
fn ident(word: &str) -> String {
    match word.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        Some(q) => q.replace("\"\"", "\""),
        None => word.to_ascii_lowercase(),
    }
}

/// `DECLARE name [NO SCROLL] CURSOR [WITH[OUT] HOLD] FOR query`: planned like the query, so
/// not a [`Special`].
#[derive(Debug, Clone, PartialEq)]
pub struct Declare {
    /// The cursor's name.
    pub name: String,
    /// `WITH HOLD`: the cursor outlives its transaction.
    pub hold: bool,
    /// The query's text, as written.
    pub query: String,
}

/// `DECLARE name [BINARY] [ASENSITIVE|INSENSITIVE] [NO SCROLL] CURSOR [WITH|WITHOUT HOLD]
/// FOR query`, when `sql` is one.
pub fn declare(sql: &str) -> Option<Declare> {
    let s = sql.trim().trim_end_matches(';').trim();
    let words = tokens(s);
    if !words.first()?.eq_ignore_ascii_case("declare") {
        return None;
    }
    let name = ident(words.get(1)?);
    let mut hold = false;
    let mut rest = words.get(2..)?.iter();
    let word_for = loop {
        let w = rest.next()?;
        match w.to_ascii_lowercase().as_str() {
            "binary" | "asensitive" | "insensitive" | "no" | "scroll" | "cursor" | "without"
            | "hold" => {}
            "with" => hold = true,
            "for" => break w,
            _ => return None,
        }
    };
    // The query is the text after the word FOR (a token is a slice of `s`).
    let at = word_for.as_ptr() as usize - s.as_ptr() as usize + word_for.len();
    let query = s[at..].trim().to_string();
    (!query.is_empty()).then_some(Declare { name, hold, query })
}

/// `FETCH`/`MOVE` forward: `[NEXT | [FORWARD] n | [FORWARD] ALL] [FROM|IN] name`.
fn fetch(s: &str, moving: bool) -> Option<Special> {
    let words = tokens(s);
    let mut rest = &words[1..];
    let lower = |rest: &[&str]| rest.first().map(|w| w.to_ascii_lowercase());
    let mut count = Some(1);
    if lower(rest).as_deref() == Some("next") {
        rest = &rest[1..];
    } else {
        if lower(rest).as_deref() == Some("forward") {
            rest = &rest[1..];
        }
        match lower(rest) {
            Some(w) if w == "all" => count = None,
            Some(w) if w.parse::<u64>().is_ok() => count = w.parse().ok(),
            _ => {}
        }
        if lower(rest).is_some_and(|w| w == "all" || w.parse::<u64>().is_ok()) {
            rest = &rest[1..];
        }
    }
    if lower(rest).is_some_and(|w| w == "from" || w == "in") {
        rest = &rest[1..];
    }
    match rest {
        [name] => Some(Special::Fetch {
            name: ident(name),
            count,
            moving,
        }),
        _ => None,
    }
}

/// `name = value` / `name TO value` after the word `name` in `s`.
fn split_assignment(s: &str, name: &str) -> Option<(String, String)> {
    let lower = s.to_ascii_lowercase();
    let at = lower.find(name)? + name.len();
    let rest = s[at..].trim_start();
    let value = if let Some(v) = rest.strip_prefix('=') {
        v
    } else if rest.len() >= 2 && rest[..2].eq_ignore_ascii_case("to") {
        &rest[2..]
    } else {
        return None;
    };
    Some((name.to_string(), unquote(value.trim())))
}

/// The text of `s` after its first `n` words.
fn original_after(s: &str, n: usize) -> String {
    s.split_whitespace().skip(n).collect::<Vec<_>>().join(" ")
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    let v = v
        .strip_prefix('\'')
        .and_then(|x| x.strip_suffix('\''))
        .or_else(|| v.strip_prefix('"').and_then(|x| x.strip_suffix('"')))
        .unwrap_or(v);
    v.replace("''", "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_drivers_send_at_connect_is_recognized() {
        assert_eq!(
            special("SET extra_float_digits = 3"),
            Some(Special::Set("extra_float_digits".into(), "3".into()))
        );
        assert_eq!(
            special("SET application_name TO 'PostgreSQL JDBC Driver';"),
            Some(Special::Set(
                "application_name".into(),
                "PostgreSQL JDBC Driver".into()
            ))
        );
        assert_eq!(
            special("SET TIME ZONE 'UTC'"),
            Some(Special::Set("timezone".into(), "UTC".into()))
        );
        assert_eq!(
            special("SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED"),
            Some(Special::Tag("SET"))
        );
        assert!(matches!(
            special("show standard_conforming_strings"),
            Some(Special::Value { .. })
        ));
        assert!(matches!(
            special("select pg_catalog.version()"),
            Some(Special::Value {
                what: Read::Version,
                ..
            })
        ));
        assert_eq!(
            special("SELECT current_setting('server_version_num')"),
            Some(Special::Value {
                column: "current_setting".into(),
                what: Read::Setting("server_version_num".into())
            })
        );
        assert_eq!(
            declare(
                r#"DECLARE "Big" NO SCROLL CURSOR WITH HOLD FOR SELECT id FROM t WHERE x = 'for'"#
            ),
            Some(Declare {
                name: "Big".into(),
                hold: true,
                query: "SELECT id FROM t WHERE x = 'for'".into()
            })
        );
        assert_eq!(
            special("fetch forward 10 from \"Big\""),
            Some(Special::Fetch {
                name: "Big".into(),
                count: Some(10),
                moving: false
            })
        );
        assert_eq!(
            special("FETCH ALL IN c"),
            Some(Special::Fetch {
                name: "c".into(),
                count: None,
                moving: false
            })
        );
        assert_eq!(
            special("MOVE c"),
            Some(Special::Fetch {
                name: "c".into(),
                count: Some(1),
                moving: true
            })
        );
        assert_eq!(special("FETCH BACKWARD 2 FROM c"), None);
        assert_eq!(special("CLOSE ALL"), Some(Special::Close(None)));
        assert_eq!(special("SELECT 1"), None);
        assert_eq!(special("SELECT version FROM t"), None);
        assert_eq!(special("settle"), None);
    }
}
