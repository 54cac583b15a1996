//! `COPY … FROM STDIN` and `COPY … TO STDOUT` in PostgreSQL's text and CSV formats.
//!
//! The statement is read with sqlparser's PostgreSQL dialect (both the `WITH (FORMAT csv,
//! HEADER …)` options and the older `WITH CSV HEADER` form). Copying to or from a file on
//! the server is refused: a client copies through its own connection (psql's `\copy`).
//!
//! Rows coming in are decoded here, a line at a time as data arrives, and inserted in
//! batches inside one transaction (the connection's, or one opened for the COPY), so a COPY
//! is all or nothing like any other statement. CSV is split by hand rather than with the
//! `csv` crate because PostgreSQL tells a NULL (an unquoted empty field) from an empty
//! string (`""`), which that crate does not report.

use chrono_sql::types::DataType;
use chrono_storage::Value;
use sqlparser::ast::{
    CopyLegacyCsvOption, CopyLegacyOption, CopyOption, CopySource, CopyTarget, Statement,
};
use sqlparser::dialect::PostgreSqlDialect;

/// What a `COPY` statement asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct CopySpec {
    /// The query whose rows go out (`COPY t TO` reads `SELECT cols FROM t`), or that names
    /// the columns coming in.
    pub query: String,
    /// `COPY t FROM STDIN`: the table and the columns the data gives (all when none are
    /// named).
    pub into: Option<(String, Vec<String>)>,
    /// Text (false) or CSV (true).
    pub csv: bool,
    /// CSV: the first line names the columns.
    pub header: bool,
    /// Field separator: tab for text, comma for CSV.
    pub delimiter: char,
    /// How a NULL is written: `\N` for text, an unquoted empty field for CSV.
    pub null: String,
    /// CSV's quote character.
    pub quote: char,
    /// CSV's escape character inside quotes (the quote itself by default).
    pub escape: char,
}

/// The `COPY` statement in `sql`, if it is one: `Err` says why it cannot run.
pub fn parse(sql: &str) -> Option<Result<CopySpec, String>> {
    let first = sql.trim_start().get(..4)?;
    if !first.eq_ignore_ascii_case("copy") {
        return None;
    }
    let statements = match sqlparser::parser::Parser::parse_sql(&PostgreSqlDialect {}, sql) {
        Ok(s) => s,
        Err(e) => return Some(Err(format!("COPY: {e}"))),
    };
    let [
        Statement::Copy {
            source,
            to,
            target,
            options,
            legacy_options,
            ..
        },
    ] = statements.as_slice()
    else {
        return Some(Err("COPY takes one statement".into()));
    };
    Some(spec(source, *to, target, options, legacy_options))
}

fn spec(
    source: &CopySource,
    to: bool,
    target: &CopyTarget,
    options: &[CopyOption],
    legacy: &[CopyLegacyOption],
) -> Result<CopySpec, String> {
    match (to, target) {
        (false, CopyTarget::Stdin) | (true, CopyTarget::Stdout) => {}
        _ => {
            return Err(
                "COPY to or from a file or program on the server is not supported: copy \
                 FROM STDIN or TO STDOUT through the connection (psql's \\copy does)"
                    .into(),
            );
        }
    }
    let mut s = CopySpec {
        query: String::new(),
        into: None,
        csv: false,
        header: false,
        delimiter: '\t',
        null: "\\N".into(),
        quote: '"',
        escape: '"',
    };
    let (mut delimiter, mut null, mut escape) = (None, None, None);
    for o in options {
        match o {
            CopyOption::Format(f) => match f.value.to_ascii_lowercase().as_str() {
                "csv" => s.csv = true,
                "text" => s.csv = false,
                other => return Err(format!("COPY format {other} is not supported (text, csv)")),
            },
            CopyOption::Header(h) => s.header = *h,
            CopyOption::Delimiter(d) => delimiter = Some(*d),
            CopyOption::Null(n) => null = Some(n.clone()),
            CopyOption::Quote(q) => s.quote = *q,
            CopyOption::Escape(e) => escape = Some(*e),
            CopyOption::Encoding(e) if e.eq_ignore_ascii_case("utf8") => {}
            CopyOption::Freeze(_) => {}
            other => return Err(format!("COPY option {other} is not supported")),
        }
    }
    for o in legacy {
        match o {
            CopyLegacyOption::Csv(csv_options) => {
                s.csv = true;
                for c in csv_options {
                    match c {
                        CopyLegacyCsvOption::Header => s.header = true,
                        CopyLegacyCsvOption::Quote(q) => s.quote = *q,
                        CopyLegacyCsvOption::Escape(e) => escape = Some(*e),
                        other => return Err(format!("COPY option {other} is not supported")),
                    }
                }
            }
            CopyLegacyOption::Delimiter(d) => delimiter = Some(*d),
            CopyLegacyOption::Null(n) => null = Some(n.clone()),
            CopyLegacyOption::Header => s.header = true,
            other => return Err(format!("COPY option {other} is not supported")),
        }
    }
    if s.header && !s.csv {
        return Err("COPY HEADER is available only in CSV mode".into());
    }
    if s.csv {
        s.delimiter = ',';
        s.null = String::new();
    }
    s.delimiter = delimiter.unwrap_or(s.delimiter);
    s.null = null.unwrap_or(s.null);
    s.escape = escape.unwrap_or(s.quote);
    if s.delimiter == '\n' || s.delimiter == '\r' || (!s.csv && s.delimiter == '\\') {
        return Err("COPY delimiter cannot be a newline or a backslash".into());
    }
    match source {
        CopySource::Table {
            table_name,
            columns,
        } => {
            let table = table_name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(|i| i.value.clone())
                .ok_or_else(|| format!("COPY: the name {table_name}"))?;
            let columns: Vec<String> = columns.iter().map(|c| c.value.clone()).collect();
            let list = if columns.is_empty() {
                "*".to_string()
            } else {
                columns
                    .iter()
                    .map(|c| quote_ident(c))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            s.query = format!("SELECT {list} FROM {}", quote_ident(&table));
            if !to {
                s.into = Some((table, columns));
            }
        }
        CopySource::Query(q) => {
            if !to {
                return Err("COPY FROM takes a table, not a query".into());
            }
            s.query = q.to_string();
        }
    }
    Ok(s)
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// One row in `spec`'s format, ending in a newline.
pub fn encode_row(spec: &CopySpec, row: &[Value], out: &mut Vec<u8>) {
    for (i, v) in row.iter().enumerate() {
        if i > 0 {
            push_char(out, spec.delimiter);
        }
        match super::types::text(v) {
            None => out.extend_from_slice(spec.null.as_bytes()),
            Some(t) if spec.csv => csv_field(spec, &t, out),
            Some(t) => text_field(spec, &t, out),
        }
    }
    out.push(b'\n');
}

/// The header line of a CSV copy out.
pub fn encode_header(spec: &CopySpec, columns: &[String], out: &mut Vec<u8>) {
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            push_char(out, spec.delimiter);
        }
        csv_field(spec, c, out);
    }
    out.push(b'\n');
}

fn push_char(out: &mut Vec<u8>, c: char) {
    let mut b = [0; 4];
    out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
}

fn text_field(spec: &CopySpec, t: &str, out: &mut Vec<u8>) {
    for c in t.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if c == spec.delimiter => {
                out.push(b'\\');
                push_char(out, c);
            }
            c => push_char(out, c),
        }
    }
}

fn csv_field(spec: &CopySpec, t: &str, out: &mut Vec<u8>) {
    let quoted = t.is_empty()
        || t == spec.null
        || t.contains(|c: char| {
            c == spec.delimiter || c == spec.quote || c == spec.escape || c == '\n' || c == '\r'
        });
    if !quoted {
        out.extend_from_slice(t.as_bytes());
        return;
    }
    push_char(out, spec.quote);
    for c in t.chars() {
        if c == spec.quote || c == spec.escape {
            push_char(out, spec.escape);
        }
        push_char(out, c);
    }
    push_char(out, spec.quote);
}

/// Splits incoming data into rows of fields (`None`: NULL), as it arrives.
#[derive(Debug, Default)]
pub struct Decoder {
    pending: Vec<u8>,
    /// Lines read so far (for errors).
    pub line: u64,
    /// The end marker `\.` was seen: anything after it is ignored.
    pub ended: bool,
    header_skipped: bool,
}

/// A decoded row: its fields, `None` for NULL.
pub type Fields = Vec<Option<String>>;

/// A decoded row and its line number.
pub type Line = (u64, Fields);

impl Decoder {
    /// Takes `data` and returns the whole rows it completes (with `last`, the final row too,
    /// newline or not).
    pub fn feed(&mut self, spec: &CopySpec, data: &[u8], last: bool) -> Result<Vec<Line>, String> {
        self.pending.extend_from_slice(data);
        // Lines are read from a taken buffer (`line` needs `self`); what is left of it, the
        // start of a line still coming, is put back.
        let mut pending = std::mem::take(&mut self.pending);
        let mut rows = Vec::new();
        let mut start = 0;
        let mut in_quotes = false;
        let quote = u32::from(spec.quote);
        for (i, &b) in pending.iter().enumerate() {
            if self.ended {
                break;
            }
            if spec.csv && quote < 128 && u32::from(b) == quote {
                in_quotes = !in_quotes;
            }
            if b == b'\n' && !in_quotes {
                self.line(spec, &pending[start..i], &mut rows)?;
                start = i + 1;
            }
        }
        if last && start < pending.len() && !self.ended {
            if in_quotes {
                return Err(format!(
                    "line {}: unterminated CSV quoted field",
                    self.line + 1
                ));
            }
            self.line(spec, &pending[start..], &mut rows)?;
            start = pending.len();
        }
        if !self.ended {
            pending.drain(..start);
            self.pending = pending;
        }
        Ok(rows)
    }

    fn line(&mut self, spec: &CopySpec, line: &[u8], rows: &mut Vec<Line>) -> Result<(), String> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        self.line += 1;
        if line == b"\\." {
            self.ended = true;
            return Ok(());
        }
        let text =
            std::str::from_utf8(line).map_err(|_| format!("line {}: not UTF-8", self.line))?;
        if spec.csv && spec.header && !self.header_skipped {
            self.header_skipped = true;
            return Ok(());
        }
        let fields = if spec.csv {
            csv_fields(spec, text)
        } else {
            text_fields(spec, text)
        }
        .map_err(|e| format!("line {}: {e}", self.line))?;
        rows.push((self.line, fields));
        Ok(())
    }
}

fn text_fields(spec: &CopySpec, line: &str) -> Result<Fields, String> {
    let mut fields = Vec::new();
    let mut raw = String::new();
    let mut value = String::new();
    let mut chars = line.chars().peekable();
    let end_field = |raw: &mut String, value: &mut String, fields: &mut Fields| {
        fields.push((*raw != spec.null).then(|| std::mem::take(value)));
        raw.clear();
        value.clear();
    };
    while let Some(c) = chars.next() {
        if c == spec.delimiter {
            end_field(&mut raw, &mut value, &mut fields);
            continue;
        }
        raw.push(c);
        if c != '\\' {
            value.push(c);
            continue;
        }
        let Some(e) = chars.next() else {
            return Err("a backslash at the end of the line".into());
        };
        raw.push(e);
        match e {
            'b' => value.push('\u{8}'),
            'f' => value.push('\u{c}'),
            'n' => value.push('\n'),
            'r' => value.push('\r'),
            't' => value.push('\t'),
            'v' => value.push('\u{b}'),
            '0'..='7' => {
                let mut n = e.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match chars.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            n = n * 8 + d;
                            raw.push(chars.next().unwrap_or('0'));
                        }
                        None => break,
                    }
                }
                value.push(char::from_u32(n).unwrap_or('\u{fffd}'));
            }
            'x' => {
                let mut n = 0;
                let mut digits = 0;
                while digits < 2 {
                    match chars.peek().and_then(|d| d.to_digit(16)) {
                        Some(d) => {
                            n = n * 16 + d;
                            raw.push(chars.next().unwrap_or('0'));
                            digits += 1;
                        }
                        None => break,
                    }
                }
                if digits == 0 {
                    value.push('x');
                } else {
                    value.push(char::from_u32(n).unwrap_or('\u{fffd}'));
                }
            }
            other => value.push(other),
        }
    }
    end_field(&mut raw, &mut value, &mut fields);
    Ok(fields)
}

fn csv_fields(spec: &CopySpec, line: &str) -> Result<Fields, String> {
    let mut fields = Vec::new();
    let mut value = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == spec.escape && chars.peek() == Some(&spec.quote) && spec.escape != spec.quote {
                value.push(chars.next().unwrap_or(c));
            } else if c == spec.quote {
                if spec.escape == spec.quote && chars.peek() == Some(&spec.quote) {
                    chars.next();
                    value.push(c);
                } else {
                    in_quotes = false;
                }
            } else {
                value.push(c);
            }
        } else if c == spec.quote {
            in_quotes = true;
            quoted = true;
        } else if c == spec.delimiter {
            fields.push(csv_value(spec, &mut value, quoted));
            quoted = false;
        } else {
            value.push(c);
        }
    }
    if in_quotes {
        return Err("unterminated CSV quoted field".into());
    }
    fields.push(csv_value(spec, &mut value, quoted));
    Ok(fields)
}

/// A CSV field: NULL when unquoted and equal to the NULL string.
fn csv_value(spec: &CopySpec, value: &mut String, quoted: bool) -> Option<String> {
    let v = std::mem::take(value);
    (quoted || v != spec.null).then_some(v)
}

/// A field read as a column's type (`None` type: text).
pub fn value(field: Option<String>, t: Option<DataType>) -> Result<Value, String> {
    let Some(f) = field else {
        return Ok(Value::Null);
    };
    match t {
        None | Some(DataType::Text) => Ok(Value::Text(f)),
        Some(t) => super::types::from_text(&f, t)
            .ok_or_else(|| format!("invalid input for type {}: {f:?}", t.name())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(sql: &str) -> CopySpec {
        parse(sql).unwrap().unwrap()
    }

    #[test]
    fn statements_are_read_in_both_option_forms() {
        let s = spec("COPY people (id, name) FROM STDIN");
        assert_eq!(
            s.into,
            Some(("people".into(), vec!["id".into(), "name".into()]))
        );
        assert!(!s.csv);
        assert_eq!((s.delimiter, s.null.as_str()), ('\t', "\\N"));
        let s = spec("COPY t FROM STDIN WITH (FORMAT csv, HEADER true, DELIMITER ';')");
        assert!(s.csv && s.header);
        assert_eq!((s.delimiter, s.null.as_str()), (';', ""));
        let s = spec("copy t to stdout with csv header");
        assert!(s.csv && s.header && s.into.is_none());
        assert_eq!(s.query, "SELECT * FROM \"t\"");
        assert!(parse("COPY t FROM '/etc/passwd'").unwrap().is_err());
        assert!(parse("COPY t TO PROGRAM 'rm -rf /'").unwrap().is_err());
        assert!(parse("SELECT 1").is_none());
    }

    #[test]
    fn text_rows_round_trip_through_escapes_and_nulls() {
        let s = spec("COPY t FROM STDIN");
        let row = vec![
            Value::Int(1),
            Value::Text("tab\there\nnew \\ line".into()),
            Value::Null,
            Value::Text("\\N".into()),
        ];
        let mut out = Vec::new();
        encode_row(&s, &row, &mut out);
        let mut d = Decoder::default();
        // Split mid-row: nothing comes out until the line is whole.
        let (a, b) = out.split_at(7);
        assert!(d.feed(&s, a, false).unwrap().is_empty());
        let rows = d.feed(&s, b, false).unwrap();
        assert_eq!(
            rows,
            vec![(
                1,
                vec![
                    Some("1".into()),
                    Some("tab\there\nnew \\ line".into()),
                    None,
                    Some("\\N".into())
                ]
            )]
        );
        let rows = d.feed(&s, b"2\t\\x41\\101\n\\.\nignored\n", true).unwrap();
        assert_eq!(rows, vec![(2, vec![Some("2".into()), Some("AA".into())])]);
        assert!(d.ended);
    }

    #[test]
    fn csv_tells_null_from_empty_and_keeps_quoted_newlines() {
        let s = spec("COPY t FROM STDIN (FORMAT csv, HEADER)");
        let mut d = Decoder::default();
        let rows = d
            .feed(&s, b"id,name,note\n1,,\"\"\n2,\"a,\"\"b\"\"\nc\",x", true)
            .unwrap();
        assert_eq!(
            rows,
            vec![
                (2, vec![Some("1".into()), None, Some(String::new())]),
                (
                    3,
                    vec![
                        Some("2".into()),
                        Some("a,\"b\"\nc".into()),
                        Some("x".into())
                    ]
                ),
            ]
        );
        let mut out = Vec::new();
        encode_row(
            &s,
            &[
                Value::Null,
                Value::Text(String::new()),
                Value::Text("a,\"b".into()),
            ],
            &mut out,
        );
        assert_eq!(out, b",\"\",\"a,\"\"b\"\n");
        assert!(d.feed(&s, b"\"open", true).is_err());
    }
}
