//! The catalog: tables, columns, indexes. It is stored in the database itself, in key space
//! [`CATALOG_KEYSPACE`], and versioned like data, so reading `AS OF` a time before a
//! `DROP TABLE` or `ALTER TABLE` finds the table as it was then.
//!
//! ```text
//! catalog key  = encode_key(['table', lower(name)])  → JSON TableDef
//! view         = encode_key(['view', lower(name)])   → JSON ViewDef (its query's SQL text)
//! statistics   = encode_key(['stats', keyspace])     → TableStats (by table id, so a table
//!                                                     re-created under a name has none)
//! purge        = encode_key(['purge', keyspace])     → JSON HistoryPurge (DELETE HISTORY)
//! horizons     = encode_key(['horizons'])            → the store's GC horizons (its own)
//! table rows   = key space TableDef::keyspace:  encode_key(primary key) → encode_row(values)
//! index        = key space IndexDef::keyspace:  encode_key(values [‖ primary key]) → encode_key(primary key)
//! ```
//!
//! A table without a PRIMARY KEY gets a hidden row id (a fresh id from the store). A UNIQUE
//! index stores non-NULL values under the values alone, so two transactions inserting the
//! same value write the same key and the second conflicts; a row with a NULL in the indexed
//! columns (never a duplicate, as in SQL) is stored under values ‖ primary key.

use chrono_storage::{KeyRange, Keyspace, Store, Transaction, Value, encoding};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::types::DataType;

/// The key space of the catalog: the store's system key space, where the store keeps its
/// GC horizons under `horizons`.
pub const CATALOG_KEYSPACE: Keyspace = chrono_storage::mvcc::SYSTEM_KEYSPACE;

/// A column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Name as declared.
    pub name: String,
    /// Type.
    pub data_type: DataType,
    /// False for NOT NULL (and primary key) columns.
    pub nullable: bool,
    /// The DEFAULT expression's SQL text.
    pub default: Option<String>,
    /// `REFERENCES table(column)`, kept in the catalog.
    pub references: Option<(String, String)>,
}

/// A secondary index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexDef {
    /// Name (unique in the database).
    pub name: String,
    /// Its key space.
    pub keyspace: Keyspace,
    /// Indexed column positions.
    pub columns: Vec<usize>,
    /// UNIQUE index.
    pub unique: bool,
}

/// A table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    /// Name as declared.
    pub name: String,
    /// Key space of its rows.
    pub keyspace: Keyspace,
    /// Columns in order.
    pub columns: Vec<ColumnDef>,
    /// Primary key column positions; empty for a hidden row id.
    pub primary_key: Vec<usize>,
    /// Secondary indexes, UNIQUE constraints included.
    pub indexes: Vec<IndexDef>,
}

impl TableDef {
    /// Names this table's key spaces (rows, indexes) in `txn`, for commit observers.
    pub fn label_keyspaces(&self, txn: &mut Transaction) {
        txn.label_keyspace(self.keyspace, &self.name);
        for ix in &self.indexes {
            txn.label_keyspace(ix.keyspace, &format!("{}.{}", self.name, ix.name));
        }
    }

    /// The position of a column, case-insensitively.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The stored key of a row.
    pub fn row_key(
        &self,
        row: &[Value],
        rowid: impl FnOnce() -> chrono_storage::Result<u64>,
    ) -> Result<Vec<u8>> {
        Ok(if self.primary_key.is_empty() {
            encoding::encode_key(&[Value::Int(rowid()? as i64)])
        } else {
            let pk: Vec<Value> = self.primary_key.iter().map(|&i| row[i].clone()).collect();
            encoding::encode_key(&pk)
        })
    }

    /// Decodes a stored row, filling columns added after it was written with their default
    /// (NULL unless the ALTER gave one).
    pub fn decode_row(&self, raw: &[u8]) -> Result<Vec<Value>> {
        let mut values = Vec::new();
        self.decode_row_into(raw, &mut values, None)?;
        Ok(values)
    }

    /// Decodes a stored row into `out` as [`TableDef::decode_row`] does, reusing `out`'s
    /// buffers and decoding only the columns `wanted` says (the others are NULL); see
    /// [`encoding::decode_row_into`].
    pub fn decode_row_into(
        &self,
        raw: &[u8],
        out: &mut Vec<Value>,
        wanted: Option<&[bool]>,
    ) -> Result<()> {
        encoding::decode_row_into(raw, out, wanted)?;
        if out.len() > self.columns.len() {
            return Err(Error::Corruption(format!(
                "a row of table {} has {} values for {} columns",
                self.name,
                out.len(),
                self.columns.len()
            )));
        }
        out.resize(self.columns.len(), Value::Null);
        Ok(())
    }

    /// The key of a row's entry in `index`.
    pub fn index_key(&self, index: &IndexDef, row: &[Value], row_key: &[u8]) -> Vec<u8> {
        let values: Vec<Value> = index.columns.iter().map(|&i| row[i].clone()).collect();
        let unique_entry = index.unique && !values.iter().any(Value::is_null);
        encoding::index_entry_key(&values, (!unique_entry).then_some(row_key))
    }
}

/// Makes `txn`'s commit fail if `def`'s definition changed after `txn` began: DML planned
/// against a definition must not commit against another (an index it did not maintain, a
/// column it did not fill).
pub fn depend_on_definition(txn: &mut Transaction, def: &TableDef) {
    txn.check_unchanged(CATALOG_KEYSPACE, &table_key(&def.name));
}

/// Makes `txn`'s commit fail if rows of `def` were written after `txn` began: DDL that reads
/// every row (an index build, a column fill) must not miss rows committed meanwhile.
pub fn depend_on_rows(txn: &mut Transaction, def: &TableDef) {
    txn.check_keyspace_unchanged(def.keyspace);
}

fn stats_key(def: &TableDef) -> Vec<u8> {
    encoding::encode_key(&[
        Value::Text("stats".into()),
        Value::Int(i64::from(def.keyspace)),
    ])
}

/// Writes a table's statistics in `txn`: they are kept if it commits, and a rollback
/// leaves the previous ones.
pub fn put_stats(txn: &mut Transaction, def: &TableDef, raw: Vec<u8>) -> Result<()> {
    txn.label_keyspace(CATALOG_KEYSPACE, "catalog");
    txn.put(CATALOG_KEYSPACE, stats_key(def), raw)?;
    Ok(())
}

/// Removes a table's statistics in `txn` (the table is dropped).
pub fn delete_stats(txn: &mut Transaction, def: &TableDef) -> Result<()> {
    txn.label_keyspace(CATALOG_KEYSPACE, "catalog");
    txn.delete(CATALOG_KEYSPACE, stats_key(def))?;
    Ok(())
}

/// A table's stored statistics, if analyzed.
pub fn get_stats(view: Snapshot<'_>, def: &TableDef) -> Result<Option<Vec<u8>>> {
    Ok(view.get(CATALOG_KEYSPACE, &stats_key(def))?)
}

fn table_key(name: &str) -> Vec<u8> {
    encoding::encode_key(&[
        Value::Text("table".into()),
        Value::Text(name.to_ascii_lowercase()),
    ])
}

fn decode(raw: &[u8]) -> Result<TableDef> {
    serde_json::from_slice(raw).map_err(|e| Error::Corruption(format!("catalog entry: {e}")))
}

/// A view: its query's SQL text, parsed and planned where the view is read (as of the
/// time it is read, with the tables as of that time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewDef {
    /// Name as declared.
    pub name: String,
    /// Column names given after the name (else its query's).
    pub columns: Vec<String>,
    /// The query.
    pub sql: String,
}

fn view_key(name: &str) -> Vec<u8> {
    encoding::encode_key(&[
        Value::Text("view".into()),
        Value::Text(name.to_ascii_lowercase()),
    ])
}

fn views_prefix() -> Vec<u8> {
    encoding::encode_key(&[Value::Text("view".into())])
}

fn decode_view(raw: &[u8]) -> Result<ViewDef> {
    serde_json::from_slice(raw).map_err(|e| Error::Corruption(format!("catalog view entry: {e}")))
}

/// Looks a view up.
pub fn get_view(view: Snapshot<'_>, name: &str) -> Result<Option<ViewDef>> {
    view.get(CATALOG_KEYSPACE, &view_key(name))?
        .map(|raw| decode_view(&raw))
        .transpose()
}

/// Every view, by name.
pub fn list_views(view: Snapshot<'_>) -> Result<Vec<ViewDef>> {
    let mut out = Vec::new();
    for item in view.scan(CATALOG_KEYSPACE, KeyRange::Prefix(views_prefix()))? {
        let (_, raw) = item?;
        out.push(decode_view(&raw)?);
    }
    Ok(out)
}

/// Writes a view's definition.
pub fn put_view(txn: &mut Transaction, def: &ViewDef) -> Result<()> {
    let raw = serde_json::to_vec(def)
        .map_err(|e| Error::InvalidInput(format!("catalog view entry: {e}")))?;
    txn.label_keyspace(CATALOG_KEYSPACE, "catalog");
    txn.put(CATALOG_KEYSPACE, view_key(&def.name), raw)?;
    Ok(())
}

/// Removes a view's definition (its versions stay, for time travel).
pub fn delete_view(txn: &mut Transaction, name: &str) -> Result<()> {
    txn.label_keyspace(CATALOG_KEYSPACE, "catalog");
    txn.delete(CATALOG_KEYSPACE, view_key(name))?;
    Ok(())
}

/// Where catalog reads look: a transaction's own view, or a past instant.
pub use chrono_storage::Snapshot;

/// Looks a table up.
pub fn get_table(view: Snapshot<'_>, name: &str) -> Result<Option<TableDef>> {
    view.get(CATALOG_KEYSPACE, &table_key(name))?
        .map(|raw| decode(&raw))
        .transpose()
}

/// Looks a table up, or fails naming it.
pub fn require_table(view: Snapshot<'_>, name: &str) -> Result<TableDef> {
    get_table(view, name)?.ok_or_else(|| Error::NotFound(format!("no such table: {name}")))
}

fn tables_prefix() -> Vec<u8> {
    encoding::encode_key(&[Value::Text("table".into())])
}

/// True when `txn` writes a table or view definition (not just statistics or a history
/// purge).
pub fn writes_definitions(txn: &Transaction) -> bool {
    txn.writes_prefix(CATALOG_KEYSPACE, &tables_prefix())
        || txn.writes_prefix(CATALOG_KEYSPACE, &views_prefix())
}

/// The commit time of the newest table-definition change in `store` (0 for none): the
/// definitions as of any later time are the current ones.
pub fn definitions_changed_at(store: &Store) -> Result<u64> {
    let mut newest = 0;
    for prefix in [tables_prefix(), views_prefix()] {
        let versions = store.versions(
            CATALOG_KEYSPACE,
            KeyRange::Prefix(prefix),
            u64::MAX,
            chrono_storage::TimeWindow::All,
        )?;
        for v in versions {
            newest = newest.max(v?.commit_ts);
        }
    }
    Ok(newest)
}

/// Every table, by name.
pub fn list_tables(view: Snapshot<'_>) -> Result<Vec<TableDef>> {
    let prefix = tables_prefix();
    let mut out = Vec::new();
    for item in view.scan(CATALOG_KEYSPACE, KeyRange::Prefix(prefix))? {
        let (_, raw) = item?;
        out.push(decode(&raw)?);
    }
    Ok(out)
}

/// Writes a table's definition.
pub fn put_table(txn: &mut Transaction, def: &TableDef) -> Result<()> {
    let raw =
        serde_json::to_vec(def).map_err(|e| Error::InvalidInput(format!("catalog entry: {e}")))?;
    txn.label_keyspace(CATALOG_KEYSPACE, "catalog");
    txn.put(CATALOG_KEYSPACE, table_key(&def.name), raw)?;
    Ok(())
}

/// Removes a table's definition (its versions stay, for time travel).
pub fn delete_table(txn: &mut Transaction, name: &str) -> Result<()> {
    txn.label_keyspace(CATALOG_KEYSPACE, "catalog");
    txn.delete(CATALOG_KEYSPACE, table_key(name))?;
    Ok(())
}

/// A fresh key space number.
pub fn new_keyspace(store: &Store) -> Result<Keyspace> {
    Keyspace::try_from(store.next_id()?)
        .map_err(|_| Error::InvalidInput("out of key space numbers".into()))
}

/// A `DELETE HISTORY`, kept in the catalog (so it is audited, with who ran it) and applied
/// again whenever the database opens or collects history, until the store's horizons
/// include it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryPurge {
    /// The table's name when its history was deleted.
    pub table: String,
    /// Versions no read at or after this time (microseconds) needs were deleted.
    pub before: u64,
    /// The key spaces of its rows and indexes then.
    pub keyspaces: Vec<Keyspace>,
}

impl HistoryPurge {
    /// The purge as store horizons.
    pub fn horizons(&self) -> chrono_storage::Horizons {
        chrono_storage::Horizons {
            purged: self.keyspaces.iter().map(|&ks| (ks, self.before)).collect(),
            ..Default::default()
        }
    }
}

fn purge_key(keyspace: Keyspace) -> Vec<u8> {
    encoding::encode_key(&[Value::Text("purge".into()), Value::Int(i64::from(keyspace))])
}

/// Records in `txn` that the history of `def` (rows and indexes) before `before` is
/// deleted.
pub fn put_history_purge(
    txn: &mut Transaction,
    def: &TableDef,
    before: u64,
) -> Result<HistoryPurge> {
    let purge = HistoryPurge {
        table: def.name.clone(),
        before,
        keyspaces: std::iter::once(def.keyspace)
            .chain(def.indexes.iter().map(|ix| ix.keyspace))
            .collect(),
    };
    let raw = serde_json::to_vec(&purge)
        .map_err(|e| Error::InvalidInput(format!("catalog entry: {e}")))?;
    txn.label_keyspace(CATALOG_KEYSPACE, "catalog");
    txn.put(CATALOG_KEYSPACE, purge_key(def.keyspace), raw)?;
    Ok(purge)
}

/// Every recorded `DELETE HISTORY` (the latest per table).
pub fn history_purges(view: Snapshot<'_>) -> Result<Vec<HistoryPurge>> {
    let prefix = encoding::encode_key(&[Value::Text("purge".into())]);
    let mut out = Vec::new();
    for item in view.scan(CATALOG_KEYSPACE, KeyRange::Prefix(prefix))? {
        let (_, raw) = item?;
        out.push(
            serde_json::from_slice(&raw)
                .map_err(|e| Error::Corruption(format!("catalog entry of a history purge: {e}")))?,
        );
    }
    Ok(out)
}
