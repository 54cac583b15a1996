//! The plan roots of statements that are not a tree of operators: schema changes and
//! ANALYZE. The planner resolves names and positions and checks what the statement alone
//! decides (duplicate columns, one primary key, columns a key or index names); what depends
//! on the catalog when it runs (a table that exists already, an index name in use) is
//! checked by [`crate::execution::schema`], in the statement's transaction.

use crate::catalog::ColumnDef;
use crate::expr::Expr;

use super::Plan;

/// What a statement does, planned.
#[derive(Debug, Clone)]
pub enum Root {
    /// A query: its rows.
    Query(Plan),
    /// INSERT, UPDATE or DELETE: a write node over the plan that finds its rows.
    Write(Plan),
    /// A schema change.
    Schema(SchemaChange),
    /// `ANALYZE`: the tables whose statistics are computed again.
    Analyze(Vec<String>),
}

/// A planned schema change.
#[derive(Debug, Clone)]
pub enum SchemaChange {
    /// `CREATE TABLE`: its key spaces are allocated when it runs.
    CreateTable {
        /// The table's name.
        name: String,
        /// Its columns (primary key columns NOT NULL).
        columns: Vec<ColumnDef>,
        /// Primary key column positions; empty for a hidden row id.
        primary_key: Vec<usize>,
        /// UNIQUE constraints other than the primary key: (index name, column positions).
        unique: Vec<(String, Vec<usize>)>,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
    },
    /// `CREATE [UNIQUE] INDEX`: built from every row of the table.
    CreateIndex {
        /// The table.
        table: String,
        /// The index name (given, or `table_columns_idx`).
        name: String,
        /// Indexed columns, by name (checked against the table when planned; resolved
        /// again against the definition the build reads).
        columns: Vec<String>,
        /// `UNIQUE`.
        unique: bool,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
    },
    /// `ALTER TABLE … ADD COLUMN`: existing rows get a new version holding the DEFAULT.
    AddColumns {
        /// The table.
        table: String,
        /// `IF EXISTS`.
        if_exists: bool,
        /// The new columns.
        columns: Vec<NewColumn>,
    },
    /// `DROP TABLE`.
    DropTables {
        /// The tables.
        names: Vec<String>,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `DROP INDEX`.
    DropIndexes {
        /// The indexes.
        names: Vec<String>,
        /// `IF EXISTS`.
        if_exists: bool,
    },
    /// `CREATE [OR REPLACE] VIEW`: the query's text goes into the catalog.
    CreateView {
        /// The view.
        def: crate::catalog::ViewDef,
        /// `OR REPLACE`.
        or_replace: bool,
        /// `IF NOT EXISTS`.
        if_not_exists: bool,
    },
    /// `DROP VIEW`.
    DropViews {
        /// The views.
        names: Vec<String>,
        /// `IF EXISTS`.
        if_exists: bool,
    },
}

/// A column `ADD COLUMN` adds.
#[derive(Debug, Clone)]
pub struct NewColumn {
    /// Its definition.
    pub def: ColumnDef,
    /// Its DEFAULT, bound: the value existing rows take.
    pub fill: Expr,
    /// `IF NOT EXISTS`.
    pub if_not_exists: bool,
}

impl SchemaChange {
    /// The command tag a client sees (`CREATE TABLE`, …).
    pub fn tag(&self) -> &'static str {
        match self {
            SchemaChange::CreateTable { .. } => "CREATE TABLE",
            SchemaChange::CreateIndex { .. } => "CREATE INDEX",
            SchemaChange::AddColumns { .. } => "ALTER TABLE",
            SchemaChange::DropTables { .. } => "DROP TABLE",
            SchemaChange::DropIndexes { .. } => "DROP INDEX",
            SchemaChange::CreateView { .. } => "CREATE VIEW",
            SchemaChange::DropViews { .. } => "DROP VIEW",
        }
    }

    /// One line for EXPLAIN.
    pub fn describe(&self) -> String {
        let names = |cols: &[ColumnDef], pos: &[usize]| {
            pos.iter()
                .filter_map(|&i| cols.get(i).map(|c| c.name.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            SchemaChange::CreateTable {
                name,
                columns,
                primary_key,
                unique,
                ..
            } => {
                let mut s = format!("CreateTable {name} ({} columns", columns.len());
                if !primary_key.is_empty() {
                    s += &format!(", primary key ({})", names(columns, primary_key));
                }
                for (ix, cols) in unique {
                    s += &format!(", unique {ix} ({})", names(columns, cols));
                }
                s + ")"
            }
            SchemaChange::CreateIndex {
                table,
                name,
                columns,
                unique,
                ..
            } => format!(
                "CreateIndex{} {name} ON {table} ({}), built from every row",
                if *unique { " UNIQUE" } else { "" },
                columns.join(", ")
            ),
            SchemaChange::AddColumns { table, columns, .. } => format!(
                "AddColumns {table} ({}), a new version of every row when a DEFAULT is set",
                columns
                    .iter()
                    .map(|c| c.def.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            SchemaChange::DropTables { names, .. } => format!("DropTables {}", names.join(", ")),
            SchemaChange::DropIndexes { names, .. } => {
                format!("DropIndexes {}", names.join(", "))
            }
            SchemaChange::CreateView { def, .. } => {
                format!("CreateView {} AS {}", def.name, def.sql)
            }
            SchemaChange::DropViews { names, .. } => format!("DropViews {}", names.join(", ")),
        }
    }
}
