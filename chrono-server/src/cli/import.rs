//! `chronodb import`: loads a CSV file with a header row into a table, in batches of one
//! transaction each, with a progress bar on a terminal.
//!
//! Header names pick the table's columns (others get their defaults). An empty field is
//! NULL. Values are read by the column's type; a value that does not read, or a line with
//! the wrong number of fields, stops the import with its line number. Batches before the
//! failing one stay committed (the report says how many rows that is), so a multi-gigabyte
//! file never has to fit in one transaction.

use std::io::IsTerminal;
use std::path::Path;

use chrono_sql::types::DataType;
use chrono_storage::Value;
use chrono_storage::value::parse_timestamp;

use crate::ChronoDb;
use crate::error::{Error, Result};

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Rows committed.
    pub rows: u64,
    /// Transactions committed.
    pub batches: u64,
}

fn convert(field: &str, t: DataType) -> std::result::Result<Value, String> {
    if field.is_empty() {
        return Ok(Value::Null);
    }
    Ok(match t {
        DataType::Int => Value::Int(
            field
                .trim()
                .parse()
                .map_err(|_| format!("'{field}' is not an integer"))?,
        ),
        DataType::Float => Value::Float(
            field
                .trim()
                .parse()
                .map_err(|_| format!("'{field}' is not a number"))?,
        ),
        DataType::Bool => match field.trim().to_ascii_lowercase().as_str() {
            "true" | "t" | "1" | "yes" => Value::Bool(true),
            "false" | "f" | "0" | "no" => Value::Bool(false),
            _ => return Err(format!("'{field}' is not a boolean")),
        },
        DataType::Timestamp => Value::Timestamp(
            parse_timestamp(field).ok_or_else(|| format!("'{field}' is not a timestamp"))?,
        ),
        DataType::Text => Value::Text(field.to_string()),
        DataType::Blob => Value::Blob(field.as_bytes().to_vec()),
    })
}

/// Imports `path` into `table`.
pub fn import_csv(
    db: &ChronoDb,
    table: &str,
    path: &Path,
    batch_size: usize,
) -> Result<ImportReport> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::Io(format!("cannot open {}: {e}", path.display())))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(std::io::BufReader::new(file));
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| {
            Error::InvalidInput(format!(
                "{}: cannot read the header row: {e}",
                path.display()
            ))
        })?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    let def = db
        .database()
        .tables()?
        .into_iter()
        .find(|t| t.name.eq_ignore_ascii_case(table))
        .ok_or_else(|| Error::InvalidInput(format!("no such table: {table}")))?;
    let mut types = Vec::with_capacity(headers.len());
    for h in &headers {
        let i = def.column_index(h).ok_or_else(|| {
            Error::InvalidInput(format!(
                "the header names column {h}, which table {} does not have",
                def.name
            ))
        })?;
        types.push(def.columns[i].data_type);
    }
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(size);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} at {binary_bytes_per_sec}, {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let mut report = ImportReport {
        rows: 0,
        batches: 0,
    };
    let mut batch: Vec<Vec<Value>> = Vec::with_capacity(batch_size);
    let mut record = csv::StringRecord::new();
    let flush = |batch: &mut Vec<Vec<Value>>, report: &mut ImportReport| -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len() as u64;
        db.database()
            .insert_rows(&def.name, &headers, std::mem::take(batch))
            .map_err(|e| {
                Error::InvalidInput(format!(
                    "{e} (in the batch after row {}; {} rows were imported)",
                    report.rows, report.rows
                ))
            })?;
        report.rows += n;
        report.batches += 1;
        Ok(())
    };
    loop {
        let more = reader.read_record(&mut record).map_err(|e| {
            let line = e.position().map(|p| p.line()).unwrap_or(0);
            Error::InvalidInput(format!(
                "{}: line {line}: {e} ({} rows were imported)",
                path.display(),
                report.rows
            ))
        })?;
        if !more {
            break;
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let mut row = Vec::with_capacity(types.len());
        for (i, (field, t)) in record.iter().zip(&types).enumerate() {
            row.push(convert(field, *t).map_err(|m| {
                Error::InvalidInput(format!(
                    "{}: line {line}, column {}: {m} ({} rows were imported)",
                    path.display(),
                    headers[i],
                    report.rows
                ))
            })?);
        }
        batch.push(row);
        if batch.len() >= batch_size {
            flush(&mut batch, &mut report)?;
            if let Some(b) = &bar {
                b.set_position(record.position().map(|p| p.byte()).unwrap_or(0));
                b.set_message(format!("{} rows", report.rows));
            }
        }
    }
    flush(&mut batch, &mut report)?;
    if let Some(b) = bar {
        b.finish_with_message(format!("{} rows", report.rows));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_sql::Outcome;

    #[test]
    fn imports_in_batches_and_names_the_bad_line() {
        let db = ChronoDb::open_temporary().unwrap();
        db.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, score DOUBLE, joined TIMESTAMP)").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.csv");
        let mut text = String::from("id,name,score,joined\n");
        for i in 0..25 {
            text.push_str(&format!(
                "{i},\"Person, {i}\",{}.5,2021-11-0{} 10:00:00\n",
                i,
                i % 9 + 1
            ));
        }
        text.push_str("25,,,\n");
        std::fs::write(&good, text).unwrap();
        let report = import_csv(&db, "people", &good, 10).unwrap();
        assert_eq!(
            report,
            ImportReport {
                rows: 26,
                batches: 3
            }
        );
        let Outcome::Rows { rows, .. } = db
            .execute("SELECT name, score FROM people WHERE id = 25 OR id = 3 ORDER BY id")
            .unwrap()
            .remove(0)
        else {
            panic!()
        };
        assert_eq!(
            rows[0],
            vec![Value::Text("Person, 3".into()), Value::Float(3.5)]
        );
        assert_eq!(rows[1], vec![Value::Null, Value::Null]);

        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "id,name\n100,a\n101,b\nxx,c\n").unwrap();
        let err = import_csv(&db, "people", &bad, 1000)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 4, column id: 'xx' is not an integer"),
            "{err}"
        );
        let ragged = dir.path().join("ragged.csv");
        std::fs::write(&ragged, "id,name\n200,a\n201\n").unwrap();
        let err = import_csv(&db, "people", &ragged, 1000)
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3"), "{err}");
    }
}
