//! Printing results: an aligned table for people, CSV, and JSON lines for programs.
//!
//! JSON: one object per statement on its own line — `{"columns":[…],"rows":[[…],…]}` for a
//! query (numbers, strings, booleans, null; BLOB as base64; TIMESTAMP as
//! `"YYYY-MM-DD HH:MM:SS[.ffffff]"`), `{"affected":N,"commit_ts":T}` for a write and
//! `{"done":"CREATE TABLE","commit_ts":T}` for DDL and transaction control. `T` is the
//! commit timestamp in Unix seconds with exactly six decimals, so
//! `AS OF TIMESTAMP T` reads exactly the state that commit produced (or `null`).

use std::io::Write;

use base64::Engine as _;
use chrono_storage::value::format_float;
use chrono_storage::{Timestamp, Value};

use crate::Outcome;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per statement.
    Json,
}

/// A value as JSON.
pub fn json_value(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(i) => serde_json::Value::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::Text(s) => serde_json::Value::String(s.clone()),
        Value::Blob(b) => {
            serde_json::Value::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Value::Timestamp(_) => serde_json::Value::String(v.to_string()),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "NULL".into(),
        Value::Float(f) => format_float(*f),
        other => other.to_string(),
    }
}

fn ts_json(ts: Option<u64>) -> String {
    ts.map(|t| Timestamp::from_micros(t).seconds())
        .unwrap_or_else(|| "null".into())
}

/// Writes one statement's outcome.
pub fn write_outcome(
    out: &mut dyn Write,
    format: Format,
    outcome: &Outcome,
) -> std::io::Result<()> {
    match (format, outcome) {
        (Format::Json | Format::Csv, Outcome::Rows { columns, rows, .. }) => {
            let mut w = StreamingWriter::new(out, format);
            w.write_columns(columns)?;
            for r in rows {
                w.write_row(r)?;
            }
            w.end()
        }
        (
            Format::Json,
            Outcome::Affected {
                affected,
                commit_ts,
            },
        ) => {
            writeln!(
                out,
                "{{\"affected\":{affected},\"commit_ts\":{}}}",
                ts_json(*commit_ts)
            )
        }
        (Format::Json, Outcome::Done { tag, commit_ts }) => {
            writeln!(
                out,
                "{{\"done\":{},\"commit_ts\":{}}}",
                serde_json::Value::String(tag.clone()),
                ts_json(*commit_ts)
            )
        }
        (Format::Csv, _) => Ok(()),
        (Format::Table, Outcome::Rows { columns, rows, .. }) => write_table(out, columns, rows),
        (
            Format::Table,
            Outcome::Affected {
                affected,
                commit_ts,
            },
        ) => {
            let noun = if *affected == 1 { "row" } else { "rows" };
            match commit_ts {
                Some(ts) => writeln!(
                    out,
                    "{affected} {noun} affected, committed at {} ({} UTC)",
                    Timestamp::from_micros(*ts).seconds(),
                    Timestamp::from_micros(*ts)
                ),
                None => writeln!(out, "{affected} {noun} affected"),
            }
        }
        (Format::Table, Outcome::Done { tag, commit_ts }) => match commit_ts {
            Some(ts) => writeln!(
                out,
                "{tag}, committed at {}",
                Timestamp::from_micros(*ts).seconds()
            ),
            None => writeln!(out, "{tag}"),
        },
    }
}

/// Writes rows as an aligned table with a row count.
pub fn write_table(
    out: &mut dyn Write,
    columns: &[String],
    rows: &[Vec<Value>],
) -> std::io::Result<()> {
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(text).collect()).collect();
    let mut widths: Vec<usize> = columns.iter().map(|c| c.chars().count()).collect();
    for r in &cells {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |out: &mut dyn Write, vals: &[String]| -> std::io::Result<()> {
        let parts: Vec<String> = vals
            .iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v}{}", " ".repeat(w - v.chars().count())))
            .collect();
        writeln!(out, "{}", parts.join(" | ").trim_end())
    };
    line(out, columns)?;
    writeln!(
        out,
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-")
    )?;
    for r in &cells {
        line(out, r)?;
    }
    writeln!(
        out,
        "({} row{})",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    )
}

/// Prints a query's rows in CSV or JSON as they come: the one writer of both formats,
/// for a collected result ([`write_outcome`]) and for rows streamed from the executor.
pub struct StreamingWriter<'a> {
    out: &'a mut dyn Write,
    format: Format,
    started: bool,
    rows: usize,
}

impl<'a> StreamingWriter<'a> {
    /// A writer of `format` (CSV or JSON) to `out`.
    pub fn new(out: &'a mut dyn Write, format: Format) -> Self {
        Self {
            out,
            format,
            started: false,
            rows: 0,
        }
    }

    fn csv_record<I: AsRef<[u8]>>(
        &mut self,
        fields: impl IntoIterator<Item = I>,
    ) -> std::io::Result<()> {
        let mut w = csv::Writer::from_writer(&mut *self.out);
        w.write_record(fields).map_err(std::io::Error::other)?;
        w.flush()
    }

    fn write_columns(&mut self, columns: &[String]) -> std::io::Result<()> {
        self.started = true;
        match self.format {
            Format::Json => write!(
                self.out,
                "{{\"columns\":{},\"rows\":[",
                serde_json::Value::from(columns.to_vec())
            ),
            _ => self.csv_record(columns),
        }
    }

    fn write_row(&mut self, row: &[Value]) -> std::io::Result<()> {
        self.rows += 1;
        match self.format {
            Format::Json => {
                let values: Vec<serde_json::Value> = row.iter().map(json_value).collect();
                let sep = if self.rows > 1 { "," } else { "" };
                write!(self.out, "{sep}{}", serde_json::Value::from(values))
            }
            _ => self.csv_record(
                row.iter()
                    .map(|v| if v.is_null() { String::new() } else { text(v) }),
            ),
        }
    }

    fn end(&mut self) -> std::io::Result<()> {
        if self.started && self.format == Format::Json {
            writeln!(self.out, "]}}")?;
        }
        Ok(())
    }

    /// Ends a result cut short by an error: JSON rows already printed are closed with an
    /// `"error"` member, so the line is whole JSON.
    pub fn fail(mut self, error: &str) {
        if self.started && self.format == Format::Json {
            let _ = writeln!(self.out, "],\"error\":{}}}", serde_json::Value::from(error));
        }
        self.started = false;
    }

    /// Ends the result; true when a query's rows were printed (nothing else is to be).
    pub fn finish(mut self) -> crate::Result<bool> {
        self.end().map_err(|e| crate::Error::Io(e.to_string()))?;
        Ok(self.started)
    }
}

fn output_closed(e: std::io::Error) -> chrono_sql::Error {
    chrono_sql::Error::Cancelled(format!("output closed: {e}"))
}

impl chrono_sql::RowSink for StreamingWriter<'_> {
    fn columns(&mut self, columns: &[String]) -> chrono_sql::Result<()> {
        self.write_columns(columns).map_err(output_closed)
    }

    fn row(&mut self, row: Vec<Value>) -> chrono_sql::Result<()> {
        self.write_row(&row).map_err(output_closed)
    }
}
