//! The names the GraphQL schema gives tables and columns, and which tables it can serve.
//!
//! A table becomes the object type `type_name(table)` (PascalCase; `Row` appended when that
//! is a name GraphQL or this schema uses itself, such as `Query`, `Time` or `Written`), with
//! `<Type>Version`, `<Type>Change` and `<Type>Set`, the query fields `<table>` and
//! `<table>History`, the mutations `insert_/update_/delete_<table>` and the subscription
//! `<table>`. A table whose name is not a GraphQL name, or whose names are already taken by
//! another table (`order_items` and `orderItems` both make `OrderItems`), is left out of the
//! schema — the rest of the schema is served — and the reason is listed by the query field
//! `_schemaWarnings` and logged. A column whose name is not a GraphQL name is left out of
//! its type; a column named like an argument (`orderBy`, `limit`, `offset`, `asOf`, `set`,
//! `where`, `from`) is a field but not a filter argument.

use std::collections::HashSet;

use chrono_sql::catalog::{ColumnDef, TableDef};

/// The scalar of `asOf` and `from`.
pub const TIME: &str = "Time";
/// The type of a mutation's result.
pub const WRITTEN: &str = "Written";
/// The query field that lists the tables left out of the schema, and why.
pub const WARNINGS: &str = "_schemaWarnings";

/// Names the schema uses for itself, which no table's type may take.
const BUILT_IN_TYPES: &[&str] = &[
    "Query",
    "Mutation",
    "Subscription",
    "Int",
    "Float",
    "String",
    "Boolean",
    "ID",
    TIME,
    WRITTEN,
];

/// Arguments of the generated fields; a column of one of these names is no filter.
pub const ARGUMENTS: &[&str] = &["orderBy", "limit", "offset", "asOf", "set", "where", "from"];

/// A GraphQL name: `[_A-Za-z][_0-9A-Za-z]*`, not starting with `__` (introspection's).
pub fn valid(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && !name.starts_with("__")
}

/// The object type of `table`.
pub fn type_name(table: &str) -> String {
    let mut name: String = table
        .split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect();
    if BUILT_IN_TYPES.contains(&name.as_str()) {
        name.push_str("Row");
    }
    name
}

/// The columns of `def` the schema shows (valid GraphQL names), with their positions.
pub fn columns(def: &TableDef) -> impl Iterator<Item = (usize, &ColumnDef)> {
    def.columns
        .iter()
        .enumerate()
        .filter(|(_, c)| valid(&c.name))
}

/// The columns of `def` that are filter arguments.
pub fn filters(def: &TableDef) -> impl Iterator<Item = &ColumnDef> {
    columns(def)
        .map(|(_, c)| c)
        .filter(|c| !ARGUMENTS.contains(&c.name.as_str()))
}

/// The tables the schema serves, in catalog order, and a warning for each one left out.
pub fn servable(tables: &[TableDef]) -> (Vec<&TableDef>, Vec<String>) {
    let mut types: HashSet<String> = BUILT_IN_TYPES.iter().map(|s| s.to_string()).collect();
    let mut fields: HashSet<String> = HashSet::from([WARNINGS.to_string(), "tables".to_string()]);
    let (mut served, mut warnings) = (Vec::new(), Vec::new());
    for def in tables {
        if !valid(&def.name) || type_name(&def.name).is_empty() {
            warnings.push(format!(
                "table {:?} is left out: its name is not a GraphQL name ([_A-Za-z][_0-9A-Za-z]*)",
                def.name
            ));
            continue;
        }
        let ty = type_name(&def.name);
        let its_types = [
            ty.clone(),
            format!("{ty}Version"),
            format!("{ty}Change"),
            format!("{ty}Set"),
            format!("{ty}{WRITTEN}"),
        ];
        let its_fields = [
            def.name.clone(),
            format!("{}History", def.name),
            format!("insert_{}", def.name),
            format!("update_{}", def.name),
            format!("delete_{}", def.name),
        ];
        let clash = its_types
            .iter()
            .find(|t| types.contains(*t))
            .or_else(|| its_fields.iter().find(|f| fields.contains(*f)));
        if let Some(clash) = clash {
            warnings.push(format!(
                "table {:?} is left out: the name {clash} it needs is taken by another table or by the schema",
                def.name
            ));
            continue;
        }
        types.extend(its_types);
        fields.extend(its_fields);
        served.push(def);
    }
    (served, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid("orders") && valid("_x") && valid("a1"));
        assert!(!valid("") && !valid("1a") && !valid("__x") && !valid("my table"));
        assert_eq!(type_name("order_items"), "OrderItems");
        assert_eq!(type_name("time"), "TimeRow");
        assert_eq!(type_name("query"), "QueryRow");
        assert_eq!(type_name("written"), "WrittenRow");
    }
}
