//! PostgreSQL's system catalogs (`pg_catalog.pg_class`, `pg_attribute`, …) and the SQL
//! standard's `information_schema` (`tables`, `columns`, …) as read-only virtual tables.
//!
//! They are what every PostgreSQL client asks to learn a database's shape: psql's `\d`,
//! `\dt`, `\di`, `\dn`, `\l`; drivers' metadata calls; ORMs' reflection. ChronoDB keeps no
//! such tables: when a query names one, the planner builds its rows from ChronoDB's own
//! catalog as of the query's read time ([`rows`]), so they are ordinary tables to SQL in
//! every interface (`SELECT * FROM information_schema.columns AS OF '2026-12-01'` is the
//! schema as it was then). They are never written.
//!
//! Decisions, so that the answers stay stable and mean one thing:
//! - **Names.** `information_schema.x` only with its schema (a table of yours named
//!   `tables` stays yours); `pg_catalog.pg_x` also unqualified, unless a table or view of
//!   yours has that name. Every user table and view is in the schema `public`.
//! - **Object ids** (`oid`) are derived from what ChronoDB keeps, so they hold as long as
//!   the object does: a table's is `16384 + 2 × its key space`, its primary key's (the
//!   index PostgreSQL would have) one more, a secondary index's `16384 + 2 × its key
//!   space`; a view's comes from a hash of its name (`VIEW_OID_BASE` and up).
//! - **Types**: ChronoDB's six column types are `int8`, `float8`, `text`, `bool`,
//!   `timestamptz` and `bytea`, as the PostgreSQL protocol announces them. A view's columns
//!   are `text` here (their types are known only by planning the view).
//! - **Arrays**: ChronoDB has no array type; catalog columns that are arrays in
//!   PostgreSQL (`indkey`, `conkey`, `reloptions`, …) hold PostgreSQL's text form
//!   (`{1,2}`; `indkey` as `1 2`).
//! - **What ChronoDB has none of** (policies, publications, inheritance, statistics
//!   objects, triggers, rules, descriptions, enums, sequences) are tables with their
//!   columns and no rows.
//! - Every object's owner is [`OWNER`]; the database is [`DATABASE`].

use crate::catalog::{TableDef, ViewDef};
use crate::types::DataType;
use chrono_storage::Value;

/// The owner every object is shown with (`pg_get_userbyid`, `tableowner`).
pub const OWNER: &str = "chronodb";
/// The database name in `pg_database` and `table_catalog`.
pub const DATABASE: &str = "chronodb";
/// The namespace of every user table and view.
pub const PUBLIC: &str = "public";
const PUBLIC_OID: i64 = 2200;
const PG_CATALOG_OID: i64 = 11;
const INFORMATION_SCHEMA_OID: i64 = 13000;
const OWNER_OID: i64 = 10;
/// The first object id of a user object, as in PostgreSQL.
const FIRST_OID: i64 = 16384;
/// A view's object id is this plus a hash of its name.
const VIEW_OID_BASE: i64 = 1 << 31;
const HEAP_AM: i64 = 2;
const BTREE_AM: i64 = 403;
const DEFAULT_COLLATION: i64 = 100;

/// A table's object id.
pub fn table_oid(def: &TableDef) -> i64 {
    FIRST_OID + 2 * i64::from(def.keyspace)
}

/// The object id of a table's primary key (its index and its constraint).
fn primary_key_oid(def: &TableDef) -> i64 {
    table_oid(def) + 1
}

fn index_oid(ix: &crate::catalog::IndexDef) -> i64 {
    FIRST_OID + 2 * i64::from(ix.keyspace)
}

fn view_oid(v: &ViewDef) -> i64 {
    // FNV-1a over the lower-case name: the same view has the same id every time.
    let mut h: u32 = 0x811c_9dc5;
    for b in v.name.to_ascii_lowercase().bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    VIEW_OID_BASE + i64::from(h & 0x3fff_ffff)
}

/// PostgreSQL's type id for a ChronoDB column type (as the wire protocol announces it).
pub fn type_oid(t: DataType) -> i64 {
    match t {
        DataType::Int => 20,
        DataType::Float => 701,
        DataType::Text => 25,
        DataType::Bool => 16,
        DataType::Timestamp => 1184,
        DataType::Blob => 17,
    }
}

/// `pg_type` rows: (oid, name, SQL name for `format_type`, length, category).
const TYPES: &[(i64, &str, &str, i64, &str)] = &[
    (16, "bool", "boolean", 1, "B"),
    (17, "bytea", "bytea", -1, "U"),
    (18, "char", "\"char\"", 1, "Z"),
    (19, "name", "name", 64, "S"),
    (20, "int8", "bigint", 8, "N"),
    (21, "int2", "smallint", 2, "N"),
    (23, "int4", "integer", 4, "N"),
    (25, "text", "text", -1, "S"),
    (26, "oid", "oid", 4, "N"),
    (700, "float4", "real", 4, "N"),
    (701, "float8", "double precision", 8, "N"),
    (705, "unknown", "unknown", -2, "X"),
    (1043, "varchar", "character varying", -1, "S"),
    (1082, "date", "date", 4, "D"),
    (1114, "timestamp", "timestamp without time zone", 8, "D"),
    (1184, "timestamptz", "timestamp with time zone", 8, "D"),
    (1700, "numeric", "numeric", -1, "N"),
    (2205, "regclass", "regclass", 4, "N"),
];

/// `format_type(oid, typmod)`: the SQL name of a type id, `???` for one not known (as
/// PostgreSQL answers).
pub fn format_type(oid: i64) -> &'static str {
    TYPES
        .iter()
        .find(|t| t.0 == oid)
        .map(|t| t.2)
        .unwrap_or("???")
}

/// `x::regnamespace`: a schema's name from its id (an integer), its id from its name.
pub fn namespace(v: &Value) -> Value {
    const NAMESPACES: [(i64, &str); 3] = [
        (PG_CATALOG_OID, "pg_catalog"),
        (PUBLIC_OID, PUBLIC),
        (INFORMATION_SCHEMA_OID, "information_schema"),
    ];
    match v {
        Value::Text(name) => NAMESPACES
            .iter()
            .find(|n| n.1.eq_ignore_ascii_case(name))
            .map(|n| Value::Int(n.0))
            .unwrap_or(Value::Null),
        other => {
            let oid = crate::types::to_integer(other);
            NAMESPACES
                .iter()
                .find(|n| n.0 == oid)
                .map(|n| Value::Text(n.1.into()))
                .unwrap_or_else(|| Value::Text(oid.to_string()))
        }
    }
}

/// A type's id from its name as `pg_type` has it or as SQL writes it (`int8`, `bigint`,
/// `pg_catalog.text`), `None` for one there is not (`TO_REGTYPE`).
pub fn type_by_name(name: &str) -> Option<i64> {
    let lower = name.trim().to_ascii_lowercase();
    let lower = lower.strip_prefix("pg_catalog.").unwrap_or(&lower);
    TYPES
        .iter()
        .find(|t| t.1 == lower || t.2 == lower)
        .map(|t| t.0)
}

fn information_schema_type(t: DataType) -> &'static str {
    format_type(type_oid(t))
}

/// The collation a type's values have (text: the default one).
fn collation_of(oid: i64) -> i64 {
    if matches!(oid, 19 | 25 | 1043) {
        DEFAULT_COLLATION
    } else {
        0
    }
}

/// Whether `name` (lower case, as the query wrote it after `FROM`) is a catalog table;
/// `pg_catalog.` may be left out, `information_schema.` may not.
pub fn is_catalog(name: &str) -> bool {
    columns(name).is_some()
}

/// The catalog tables' own object ids (PostgreSQL's, where clients compare with them:
/// `classoid = 'pg_class'::regclass`), for `regclass`.
const CATALOG_OIDS: &[(&str, i64)] = &[
    ("pg_catalog.pg_type", 1247),
    ("pg_catalog.pg_attribute", 1249),
    ("pg_catalog.pg_class", 1259),
    ("pg_catalog.pg_database", 1262),
    ("pg_catalog.pg_namespace", 2615),
    ("pg_catalog.pg_index", 2610),
    ("pg_catalog.pg_constraint", 2606),
    ("pg_catalog.pg_description", 2609),
    ("pg_catalog.pg_attrdef", 2604),
    ("pg_catalog.pg_am", 2601),
    ("pg_catalog.pg_inherits", 2611),
    ("pg_catalog.pg_rewrite", 2618),
    ("pg_catalog.pg_trigger", 2620),
    ("pg_catalog.pg_tablespace", 1213),
    ("pg_catalog.pg_collation", 3456),
    ("pg_catalog.pg_enum", 3501),
    ("pg_catalog.pg_sequence", 2224),
    ("pg_catalog.pg_policy", 3256),
    ("pg_catalog.pg_statistic_ext", 3381),
    ("pg_catalog.pg_extension", 3079),
    ("pg_catalog.pg_publication", 6104),
    ("pg_catalog.pg_publication_rel", 6106),
    ("pg_catalog.pg_publication_namespace", 6237),
    ("pg_catalog.pg_auth_members", 1261),
    ("pg_catalog.pg_roles", 12001),
    ("pg_catalog.pg_user", 12002),
    ("pg_catalog.pg_settings", 12003),
    ("pg_catalog.pg_tables", 12004),
    ("pg_catalog.pg_views", 12005),
    ("pg_catalog.pg_indexes", 12006),
];

/// Whether catalog table `name` shows views' columns (which takes planning each view).
pub fn reads_view_columns(name: &str) -> bool {
    matches!(
        canonical(name).as_str(),
        "pg_catalog.pg_class" | "pg_catalog.pg_attribute" | "information_schema.columns"
    )
}

/// Whether catalog table `name` is one ChronoDB never has a row in.
pub fn is_always_empty(name: &str) -> bool {
    matches!(
        canonical(name).as_str(),
        "pg_catalog.pg_description"
            | "pg_catalog.pg_inherits"
            | "pg_catalog.pg_policy"
            | "pg_catalog.pg_statistic_ext"
            | "pg_catalog.pg_publication"
            | "pg_catalog.pg_publication_rel"
            | "pg_catalog.pg_publication_namespace"
            | "pg_catalog.pg_trigger"
            | "pg_catalog.pg_rewrite"
            | "pg_catalog.pg_enum"
            | "pg_catalog.pg_sequence"
            | "pg_catalog.pg_auth_members"
            | "pg_catalog.pg_extension"
    )
}

/// The catalog's own name for `name`: `pg_catalog.x` for `x` or `pg_catalog.x`.
pub fn canonical(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("information_schema.") || lower.starts_with("pg_catalog.") {
        lower
    } else {
        format!("pg_catalog.{lower}")
    }
}

/// The columns of catalog table `name`, `None` when it is none.
pub fn columns(name: &str) -> Option<&'static [&'static str]> {
    let name = canonical(name);
    Some(match name.as_str() {
        "pg_catalog.pg_namespace" => &["oid", "nspname", "nspowner", "nspacl"],
        "pg_catalog.pg_class" => &[
            "oid",
            "relname",
            "relnamespace",
            "reltype",
            "reloftype",
            "relowner",
            "relam",
            "relfilenode",
            "reltablespace",
            "relpages",
            "reltuples",
            "relallvisible",
            "reltoastrelid",
            "relhasindex",
            "relisshared",
            "relpersistence",
            "relkind",
            "relnatts",
            "relchecks",
            "relhasrules",
            "relhastriggers",
            "relhassubclass",
            "relrowsecurity",
            "relforcerowsecurity",
            "relispopulated",
            "relreplident",
            "relispartition",
            "relrewrite",
            "relacl",
            "reloptions",
            "relpartbound",
        ],
        "pg_catalog.pg_attribute" => &[
            "attrelid",
            "attname",
            "atttypid",
            "attlen",
            "attnum",
            "attndims",
            "atttypmod",
            "attnotnull",
            "atthasdef",
            "atthasmissing",
            "attidentity",
            "attgenerated",
            "attisdropped",
            "attislocal",
            "attinhcount",
            "attcollation",
            "attstattarget",
            "attacl",
            "attoptions",
        ],
        "pg_catalog.pg_attrdef" => &["oid", "adrelid", "adnum", "adbin"],
        "pg_catalog.pg_type" => &[
            "oid",
            "typname",
            "typnamespace",
            "typowner",
            "typlen",
            "typbyval",
            "typtype",
            "typcategory",
            "typisdefined",
            "typdelim",
            "typrelid",
            "typelem",
            "typarray",
            "typbasetype",
            "typtypmod",
            "typnotnull",
            "typcollation",
            "typdefault",
        ],
        "pg_catalog.pg_index" => &[
            "indexrelid",
            "indrelid",
            "indnatts",
            "indnkeyatts",
            "indisunique",
            "indnullsnotdistinct",
            "indisprimary",
            "indisexclusion",
            "indimmediate",
            "indisclustered",
            "indisvalid",
            "indcheckxmin",
            "indisready",
            "indislive",
            "indisreplident",
            "indkey",
            "indcollation",
            "indclass",
            "indoption",
            "indexprs",
            "indpred",
        ],
        "pg_catalog.pg_constraint" => &[
            "oid",
            "conname",
            "connamespace",
            "contype",
            "condeferrable",
            "condeferred",
            "convalidated",
            "conrelid",
            "contypid",
            "conindid",
            "conparentid",
            "confrelid",
            "confupdtype",
            "confdeltype",
            "confmatchtype",
            "conislocal",
            "coninhcount",
            "connoinherit",
            "conkey",
            "confkey",
            "conbin",
        ],
        "pg_catalog.pg_am" => &["oid", "amname", "amhandler", "amtype"],
        "pg_catalog.pg_database" => &[
            "oid",
            "datname",
            "datdba",
            "encoding",
            "datlocprovider",
            "datistemplate",
            "datallowconn",
            "datconnlimit",
            "datcollate",
            "datctype",
            "daticulocale",
            "datcollversion",
            "datacl",
        ],
        "pg_catalog.pg_tablespace" => &["oid", "spcname", "spcowner", "spcacl", "spcoptions"],
        "pg_catalog.pg_collation" => &[
            "oid",
            "collname",
            "collnamespace",
            "collowner",
            "collprovider",
            "collisdeterministic",
            "collencoding",
            "collcollate",
            "collctype",
        ],
        "pg_catalog.pg_roles" | "pg_catalog.pg_user" => &[
            "oid",
            "rolname",
            "rolsuper",
            "rolinherit",
            "rolcreaterole",
            "rolcreatedb",
            "rolcanlogin",
            "rolreplication",
            "rolconnlimit",
            "rolvaliduntil",
            "rolbypassrls",
        ],
        "pg_catalog.pg_settings" => &[
            "name",
            "setting",
            "unit",
            "category",
            "short_desc",
            "context",
            "vartype",
            "source",
        ],
        "pg_catalog.pg_tables" => &[
            "schemaname",
            "tablename",
            "tableowner",
            "tablespace",
            "hasindexes",
            "hasrules",
            "hastriggers",
            "rowsecurity",
        ],
        "pg_catalog.pg_views" => &["schemaname", "viewname", "viewowner", "definition"],
        "pg_catalog.pg_indexes" => &[
            "schemaname",
            "tablename",
            "indexname",
            "tablespace",
            "indexdef",
        ],
        // What ChronoDB has none of: the columns clients read, never a row.
        "pg_catalog.pg_description" => &["objoid", "classoid", "objsubid", "description"],
        "pg_catalog.pg_inherits" => &["inhrelid", "inhparent", "inhseqno", "inhdetachpending"],
        "pg_catalog.pg_policy" => &[
            "oid",
            "polname",
            "polrelid",
            "polcmd",
            "polpermissive",
            "polroles",
            "polqual",
            "polwithcheck",
        ],
        "pg_catalog.pg_statistic_ext" => &[
            "oid",
            "stxrelid",
            "stxname",
            "stxnamespace",
            "stxowner",
            "stxstattarget",
            "stxkeys",
            "stxkind",
        ],
        "pg_catalog.pg_publication" => &[
            "oid",
            "pubname",
            "pubowner",
            "puballtables",
            "pubinsert",
            "pubupdate",
            "pubdelete",
            "pubtruncate",
            "pubviaroot",
        ],
        "pg_catalog.pg_publication_rel" => &["oid", "prpubid", "prrelid", "prqual", "prattrs"],
        "pg_catalog.pg_publication_namespace" => &["oid", "pnpubid", "pnnspid"],
        "pg_catalog.pg_trigger" => &[
            "oid",
            "tgrelid",
            "tgparentid",
            "tgname",
            "tgfoid",
            "tgtype",
            "tgenabled",
            "tgisinternal",
            "tgconstraint",
        ],
        "pg_catalog.pg_rewrite" => &["oid", "rulename", "ev_class", "ev_type", "is_instead"],
        "pg_catalog.pg_enum" => &["oid", "enumtypid", "enumsortorder", "enumlabel"],
        "pg_catalog.pg_sequence" => &[
            "seqrelid",
            "seqtypid",
            "seqstart",
            "seqincrement",
            "seqmax",
            "seqmin",
            "seqcache",
            "seqcycle",
        ],
        "pg_catalog.pg_auth_members" => &["roleid", "member", "grantor", "admin_option"],
        "pg_catalog.pg_extension" => &["oid", "extname", "extowner", "extnamespace", "extversion"],
        "information_schema.schemata" => &["catalog_name", "schema_name", "schema_owner"],
        "information_schema.tables" => &[
            "table_catalog",
            "table_schema",
            "table_name",
            "table_type",
            "is_insertable_into",
            "is_typed",
        ],
        "information_schema.columns" => &[
            "table_catalog",
            "table_schema",
            "table_name",
            "column_name",
            "ordinal_position",
            "column_default",
            "is_nullable",
            "data_type",
            "character_maximum_length",
            "numeric_precision",
            "numeric_scale",
            "datetime_precision",
            "udt_name",
            "is_identity",
            "is_generated",
            "is_updatable",
        ],
        "information_schema.table_constraints" => &[
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "table_catalog",
            "table_schema",
            "table_name",
            "constraint_type",
            "is_deferrable",
            "initially_deferred",
        ],
        "information_schema.key_column_usage" => &[
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "table_catalog",
            "table_schema",
            "table_name",
            "column_name",
            "ordinal_position",
            "position_in_unique_constraint",
        ],
        "information_schema.referential_constraints" => &[
            "constraint_catalog",
            "constraint_schema",
            "constraint_name",
            "unique_constraint_catalog",
            "unique_constraint_schema",
            "unique_constraint_name",
            "match_option",
            "update_rule",
            "delete_rule",
        ],
        "information_schema.views" => &[
            "table_catalog",
            "table_schema",
            "table_name",
            "view_definition",
            "check_option",
            "is_updatable",
        ],
        _ => return None,
    })
}

/// What the catalog tables are built from: the tables and views in force at the read time.
pub struct Objects {
    /// User tables.
    pub tables: Vec<TableDef>,
    /// Views.
    pub views: Vec<ViewDef>,
    /// Each view's columns and their types as its query gives them now (by position in
    /// `views`); a view that cannot be planned has its declared names, untyped.
    pub view_columns: Vec<Vec<(String, Option<DataType>)>>,
}

/// An index as PostgreSQL lists it: (oid, its table, name, unique, primary, column
/// positions).
type IndexRow<'a> = (i64, &'a TableDef, String, bool, bool, Vec<usize>);

/// A constraint as PostgreSQL lists it.
struct Constraint<'a> {
    oid: i64,
    name: String,
    /// `p`, `u` or `f`.
    kind: &'static str,
    table: &'a TableDef,
    columns: Vec<usize>,
    /// The index it is enforced by (primary key and unique).
    index: i64,
    /// For a foreign key: the table and column it references.
    references: Option<(&'a str, &'a str)>,
}

impl Objects {
    fn constraints(&self) -> Vec<Constraint<'_>> {
        let mut out = Vec::new();
        for t in &self.tables {
            if !t.primary_key.is_empty() {
                out.push(Constraint {
                    oid: primary_key_oid(t),
                    name: primary_key_name(t),
                    kind: "p",
                    table: t,
                    columns: t.primary_key.clone(),
                    index: primary_key_oid(t),
                    references: None,
                });
            }
            for ix in t.indexes.iter().filter(|ix| ix.unique) {
                out.push(Constraint {
                    oid: index_oid(ix),
                    name: ix.name.clone(),
                    kind: "u",
                    table: t,
                    columns: ix.columns.clone(),
                    index: index_oid(ix),
                    references: None,
                });
            }
            for (i, c) in t.columns.iter().enumerate() {
                if let Some((rt, rc)) = &c.references {
                    out.push(Constraint {
                        // A table has at most 64 foreign keys counted here… the rest share
                        // ids only with each other, never with a table or index.
                        oid: 3_000_000_000 + (table_oid(t) - FIRST_OID) * 64 + (i as i64 % 64),
                        name: format!("{}_{}_fkey", t.name, c.name),
                        kind: "f",
                        table: t,
                        columns: vec![i],
                        index: 0,
                        references: Some((rt.as_str(), rc.as_str())),
                    });
                }
            }
        }
        out
    }

    fn table(&self, name: &str) -> Option<&TableDef> {
        self.tables
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(name))
    }

    /// Every index (a primary key's included).
    fn indexes(&self) -> Vec<IndexRow<'_>> {
        let mut out = Vec::new();
        for t in &self.tables {
            if !t.primary_key.is_empty() {
                let oid = primary_key_oid(t);
                out.push((
                    oid,
                    t,
                    primary_key_name(t),
                    true,
                    true,
                    t.primary_key.clone(),
                ));
            }
            for ix in &t.indexes {
                out.push((
                    index_oid(ix),
                    t,
                    ix.name.clone(),
                    ix.unique,
                    false,
                    ix.columns.clone(),
                ));
            }
        }
        out
    }

    /// Object id → name of every table, index and view (`regclass`).
    pub fn relation_names(&self) -> Vec<(i64, String)> {
        let mut out: Vec<(i64, String)> = self
            .tables
            .iter()
            .map(|t| (table_oid(t), t.name.clone()))
            .collect();
        out.extend(
            self.indexes()
                .into_iter()
                .map(|(oid, _, name, ..)| (oid, name)),
        );
        out.extend(self.views.iter().map(|v| (view_oid(v), v.name.clone())));
        // The catalogs, by their unqualified names (`'pg_class'::regclass`), after the
        // user's objects (a table of yours named like one is found first).
        out.extend(
            CATALOG_OIDS
                .iter()
                .map(|(name, oid)| (*oid, name.trim_start_matches("pg_catalog.").to_string())),
        );
        out
    }

    /// Index object id → `CREATE [UNIQUE] INDEX …` (`pg_get_indexdef`).
    pub fn index_definitions(&self) -> Vec<(i64, String)> {
        self.indexes()
            .into_iter()
            .map(|(oid, t, name, unique, _, cols)| (oid, index_definition(t, &name, unique, &cols)))
            .collect()
    }

    /// (index object id, column number) → that key column's name: what
    /// `pg_get_indexdef(oid, column, …)` answers for a column other than 0.
    pub fn index_columns(&self) -> Vec<((i64, i64), String)> {
        let mut out = Vec::new();
        for (oid, t, _, _, _, cols) in self.indexes() {
            for (k, &i) in cols.iter().enumerate() {
                if let Some(c) = t.columns.get(i) {
                    out.push(((oid, k as i64 + 1), c.name.clone()));
                }
            }
        }
        out
    }

    /// Constraint object id → its definition (`pg_get_constraintdef`).
    pub fn constraint_definitions(&self) -> Vec<(i64, String)> {
        self.constraints()
            .into_iter()
            .map(|c| {
                let cols = column_list(c.table, &c.columns);
                let def = match (c.kind, c.references) {
                    ("p", _) => format!("PRIMARY KEY ({cols})"),
                    ("f", Some((rt, rc))) => format!("FOREIGN KEY ({cols}) REFERENCES {rt}({rc})"),
                    _ => format!("UNIQUE ({cols})"),
                };
                (c.oid, def)
            })
            .collect()
    }
}

fn primary_key_name(t: &TableDef) -> String {
    format!("{}_pkey", t.name)
}

fn column_list(t: &TableDef, cols: &[usize]) -> String {
    cols.iter()
        .filter_map(|&i| t.columns.get(i).map(|c| c.name.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn index_definition(t: &TableDef, name: &str, unique: bool, cols: &[usize]) -> String {
    format!(
        "CREATE {}INDEX {name} ON {PUBLIC}.{} USING btree ({})",
        if unique { "UNIQUE " } else { "" },
        t.name,
        column_list(t, cols)
    )
}

fn text(s: impl Into<String>) -> Value {
    Value::Text(s.into())
}

fn int(i: impl Into<i64>) -> Value {
    Value::Int(i.into())
}

fn bool_(b: bool) -> Value {
    Value::Bool(b)
}

const NULL: Value = Value::Null;

/// PostgreSQL's text form of an array of positions, 1-based: `{1,2}`.
fn positions_array(cols: &[usize]) -> String {
    let inner: Vec<String> = cols.iter().map(|c| (c + 1).to_string()).collect();
    format!("{{{}}}", inner.join(","))
}

/// The rows of catalog table `name` (see [`columns`]) built from `objects`.
pub fn rows(name: &str, objects: &Objects) -> Vec<Vec<Value>> {
    let name = canonical(name);
    let tables = &objects.tables;
    let views = &objects.views;
    match name.as_str() {
        "pg_catalog.pg_namespace" => vec![
            vec![
                int(PG_CATALOG_OID),
                text("pg_catalog"),
                int(OWNER_OID),
                NULL,
            ],
            vec![int(PUBLIC_OID), text(PUBLIC), int(OWNER_OID), NULL],
            vec![
                int(INFORMATION_SCHEMA_OID),
                text("information_schema"),
                int(OWNER_OID),
                NULL,
            ],
        ],
        "pg_catalog.pg_class" => {
            let class = |oid: i64, name: &str, kind: &str, am: i64, natts: usize, has_index| {
                vec![
                    int(oid),
                    text(name),
                    int(PUBLIC_OID),
                    int(0),
                    int(0),
                    int(OWNER_OID),
                    int(am),
                    int(oid),
                    int(0),
                    int(0),
                    Value::Float(-1.0),
                    int(0),
                    int(0),
                    bool_(has_index),
                    bool_(false),
                    text("p"),
                    text(kind),
                    int(natts as i64),
                    int(0),
                    bool_(kind == "v"),
                    bool_(false),
                    bool_(false),
                    bool_(false),
                    bool_(false),
                    bool_(true),
                    text("d"),
                    bool_(false),
                    int(0),
                    NULL,
                    NULL,
                    NULL,
                ]
            };
            let mut out = Vec::new();
            for t in tables {
                let has_index = !t.primary_key.is_empty() || !t.indexes.is_empty();
                out.push(class(
                    table_oid(t),
                    &t.name,
                    "r",
                    HEAP_AM,
                    t.columns.len(),
                    has_index,
                ));
            }
            for (oid, _, name, _, _, cols) in objects.indexes() {
                out.push(class(oid, &name, "i", BTREE_AM, cols.len(), false));
            }
            for (v, columns) in views.iter().zip(&objects.view_columns) {
                out.push(class(view_oid(v), &v.name, "v", 0, columns.len(), false));
            }
            out
        }
        "pg_catalog.pg_attribute" => {
            let attribute =
                |rel: i64, name: &str, t: Option<DataType>, num: usize, notnull, hasdef| {
                    let typ = t.map(type_oid).unwrap_or(25);
                    let len = TYPES.iter().find(|x| x.0 == typ).map(|x| x.3).unwrap_or(-1);
                    vec![
                        int(rel),
                        text(name),
                        int(typ),
                        int(len),
                        int(num as i64),
                        int(0),
                        int(-1),
                        bool_(notnull),
                        bool_(hasdef),
                        bool_(false),
                        text(""),
                        text(""),
                        bool_(false),
                        bool_(true),
                        int(0),
                        int(collation_of(typ)),
                        int(-1),
                        NULL,
                        NULL,
                    ]
                };
            let mut out = Vec::new();
            for t in tables {
                for (i, c) in t.columns.iter().enumerate() {
                    let notnull = !c.nullable || t.primary_key.contains(&i);
                    out.push(attribute(
                        table_oid(t),
                        &c.name,
                        Some(c.data_type),
                        i + 1,
                        notnull,
                        c.default.is_some(),
                    ));
                }
            }
            for (oid, t, _, _, _, cols) in objects.indexes() {
                for (k, &i) in cols.iter().enumerate() {
                    if let Some(c) = t.columns.get(i) {
                        out.push(attribute(
                            oid,
                            &c.name,
                            Some(c.data_type),
                            k + 1,
                            false,
                            false,
                        ));
                    }
                }
            }
            for (v, columns) in views.iter().zip(&objects.view_columns) {
                for (i, (c, t)) in columns.iter().enumerate() {
                    out.push(attribute(view_oid(v), c, *t, i + 1, false, false));
                }
            }
            out
        }
        "pg_catalog.pg_attrdef" => {
            let mut out = Vec::new();
            for t in tables {
                for (i, c) in t.columns.iter().enumerate() {
                    if let Some(d) = &c.default {
                        let oid = table_oid(t) * 1000 + i as i64;
                        out.push(vec![
                            int(oid),
                            int(table_oid(t)),
                            int(i as i64 + 1),
                            text(d),
                        ]);
                    }
                }
            }
            out
        }
        "pg_catalog.pg_type" => TYPES
            .iter()
            .map(|&(oid, name, _, len, category)| {
                vec![
                    int(oid),
                    text(name),
                    int(PG_CATALOG_OID),
                    int(OWNER_OID),
                    int(len),
                    bool_(len > 0 && len <= 8),
                    text("b"),
                    text(category),
                    bool_(true),
                    text(","),
                    int(0),
                    int(0),
                    int(0),
                    int(0),
                    int(-1),
                    bool_(false),
                    int(collation_of(oid)),
                    NULL,
                ]
            })
            .collect(),
        "pg_catalog.pg_index" => objects
            .indexes()
            .into_iter()
            .map(|(oid, t, _, unique, primary, cols)| {
                let key: Vec<String> = cols.iter().map(|c| (c + 1).to_string()).collect();
                vec![
                    int(oid),
                    int(table_oid(t)),
                    int(cols.len() as i64),
                    int(cols.len() as i64),
                    bool_(unique),
                    bool_(false),
                    bool_(primary),
                    bool_(false),
                    bool_(true),
                    bool_(false),
                    bool_(true),
                    bool_(false),
                    bool_(true),
                    bool_(true),
                    bool_(false),
                    text(key.join(" ")),
                    text(vec!["0"; cols.len()].join(" ")),
                    text(vec!["0"; cols.len()].join(" ")),
                    text(vec!["0"; cols.len()].join(" ")),
                    NULL,
                    NULL,
                ]
            })
            .collect(),
        "pg_catalog.pg_constraint" => objects
            .constraints()
            .into_iter()
            .map(|c| {
                let (confrelid, confkey) = match c.references.and_then(|(rt, rc)| {
                    let target = objects.table(rt)?;
                    Some((table_oid(target), target.column_index(rc)?))
                }) {
                    Some((oid, col)) => (int(oid), text(positions_array(&[col]))),
                    None => (int(0), NULL),
                };
                let fk = c.kind == "f";
                vec![
                    int(c.oid),
                    text(c.name),
                    int(PUBLIC_OID),
                    text(c.kind),
                    bool_(false),
                    bool_(false),
                    bool_(true),
                    int(table_oid(c.table)),
                    int(0),
                    int(c.index),
                    int(0),
                    confrelid,
                    text(if fk { "a" } else { " " }),
                    text(if fk { "a" } else { " " }),
                    text(if fk { "s" } else { " " }),
                    bool_(true),
                    int(0),
                    bool_(true),
                    text(positions_array(&c.columns)),
                    confkey,
                    NULL,
                ]
            })
            .collect(),
        "pg_catalog.pg_am" => vec![
            vec![
                int(HEAP_AM),
                text("heap"),
                text("heap_tableam_handler"),
                text("t"),
            ],
            vec![int(BTREE_AM), text("btree"), text("bthandler"), text("i")],
        ],
        "pg_catalog.pg_database" => vec![vec![
            int(FIRST_OID - 1),
            text(DATABASE),
            int(OWNER_OID),
            int(6),
            text("c"),
            bool_(false),
            bool_(true),
            int(-1),
            text("C"),
            text("C"),
            NULL,
            NULL,
            NULL,
        ]],
        "pg_catalog.pg_tablespace" => vec![
            vec![int(1663), text("pg_default"), int(OWNER_OID), NULL, NULL],
            vec![int(1664), text("pg_global"), int(OWNER_OID), NULL, NULL],
        ],
        "pg_catalog.pg_collation" => [
            (DEFAULT_COLLATION, "default", "d"),
            (950, "C", "c"),
            (951, "POSIX", "c"),
        ]
        .into_iter()
        .map(|(oid, name, provider)| {
            let locale = if provider == "d" { NULL } else { text(name) };
            vec![
                int(oid),
                text(name),
                int(PG_CATALOG_OID),
                int(OWNER_OID),
                text(provider),
                bool_(true),
                int(-1),
                locale.clone(),
                locale,
            ]
        })
        .collect(),
        "pg_catalog.pg_roles" | "pg_catalog.pg_user" => vec![vec![
            int(OWNER_OID),
            text(OWNER),
            bool_(true),
            bool_(true),
            bool_(true),
            bool_(true),
            bool_(true),
            bool_(false),
            int(-1),
            NULL,
            bool_(false),
        ]],
        "pg_catalog.pg_settings" => [
            ("server_version", "15.0", "Preset Options", "string"),
            ("server_encoding", "UTF8", "Preset Options", "string"),
            (
                "client_encoding",
                "UTF8",
                "Client Connection Defaults",
                "string",
            ),
            (
                "DateStyle",
                "ISO, MDY",
                "Client Connection Defaults",
                "string",
            ),
            ("TimeZone", "UTC", "Client Connection Defaults", "string"),
            ("integer_datetimes", "on", "Preset Options", "bool"),
            (
                "standard_conforming_strings",
                "on",
                "Version and Platform Compatibility",
                "bool",
            ),
            (
                "search_path",
                "public",
                "Client Connection Defaults",
                "string",
            ),
            ("max_identifier_length", "63", "Preset Options", "integer"),
            (
                "default_transaction_isolation",
                "serializable",
                "Client Connection Defaults",
                "enum",
            ),
        ]
        .into_iter()
        .map(|(name, setting, category, vartype)| {
            vec![
                text(name),
                text(setting),
                NULL,
                text(category),
                text(""),
                text("user"),
                text(vartype),
                text("default"),
            ]
        })
        .collect(),
        "pg_catalog.pg_tables" => tables
            .iter()
            .map(|t| {
                vec![
                    text(PUBLIC),
                    text(&t.name),
                    text(OWNER),
                    NULL,
                    bool_(!t.primary_key.is_empty() || !t.indexes.is_empty()),
                    bool_(false),
                    bool_(false),
                    bool_(false),
                ]
            })
            .collect(),
        "pg_catalog.pg_views" => views
            .iter()
            .map(|v| vec![text(PUBLIC), text(&v.name), text(OWNER), text(&v.sql)])
            .collect(),
        "pg_catalog.pg_indexes" => objects
            .indexes()
            .into_iter()
            .map(|(_, t, name, unique, _, cols)| {
                vec![
                    text(PUBLIC),
                    text(&t.name),
                    text(&name),
                    NULL,
                    text(index_definition(t, &name, unique, &cols)),
                ]
            })
            .collect(),
        "information_schema.schemata" => ["pg_catalog", PUBLIC, "information_schema"]
            .into_iter()
            .map(|s| vec![text(DATABASE), text(s), text(OWNER)])
            .collect(),
        "information_schema.tables" => tables
            .iter()
            .map(|t| (t.name.as_str(), "BASE TABLE", "YES"))
            .chain(views.iter().map(|v| (v.name.as_str(), "VIEW", "NO")))
            .map(|(name, kind, insertable)| {
                vec![
                    text(DATABASE),
                    text(PUBLIC),
                    text(name),
                    text(kind),
                    text(insertable),
                    text("NO"),
                ]
            })
            .collect(),
        "information_schema.columns" => {
            let mut out = Vec::new();
            for t in tables {
                for (i, c) in t.columns.iter().enumerate() {
                    let nullable = c.nullable && !t.primary_key.contains(&i);
                    let (precision, scale, datetime) = match c.data_type {
                        DataType::Int => (int(64), int(0), NULL),
                        DataType::Float => (int(53), NULL, NULL),
                        DataType::Timestamp => (NULL, NULL, int(6)),
                        _ => (NULL, NULL, NULL),
                    };
                    out.push(vec![
                        text(DATABASE),
                        text(PUBLIC),
                        text(&t.name),
                        text(&c.name),
                        int(i as i64 + 1),
                        c.default.as_deref().map(text).unwrap_or(NULL),
                        text(if nullable { "YES" } else { "NO" }),
                        text(information_schema_type(c.data_type)),
                        NULL,
                        precision,
                        scale,
                        datetime,
                        text(
                            TYPES
                                .iter()
                                .find(|x| x.0 == type_oid(c.data_type))
                                .map(|x| x.1)
                                .unwrap_or("text"),
                        ),
                        text("NO"),
                        text("NEVER"),
                        text("YES"),
                    ]);
                }
            }
            for (v, columns) in views.iter().zip(&objects.view_columns) {
                for (i, (c, t)) in columns.iter().enumerate() {
                    let t = t.unwrap_or(DataType::Text);
                    out.push(vec![
                        text(DATABASE),
                        text(PUBLIC),
                        text(&v.name),
                        text(c),
                        int(i as i64 + 1),
                        NULL,
                        text("YES"),
                        text(information_schema_type(t)),
                        NULL,
                        NULL,
                        NULL,
                        NULL,
                        text(
                            TYPES
                                .iter()
                                .find(|x| x.0 == type_oid(t))
                                .map(|x| x.1)
                                .unwrap_or("text"),
                        ),
                        text("NO"),
                        text("NEVER"),
                        text("NO"),
                    ]);
                }
            }
            out
        }
        "information_schema.table_constraints" => objects
            .constraints()
            .into_iter()
            .map(|c| {
                let kind = match c.kind {
                    "p" => "PRIMARY KEY",
                    "u" => "UNIQUE",
                    _ => "FOREIGN KEY",
                };
                vec![
                    text(DATABASE),
                    text(PUBLIC),
                    text(c.name),
                    text(DATABASE),
                    text(PUBLIC),
                    text(&c.table.name),
                    text(kind),
                    text("NO"),
                    text("NO"),
                ]
            })
            .collect(),
        "information_schema.key_column_usage" => {
            let mut out = Vec::new();
            for c in objects.constraints() {
                for (k, &i) in c.columns.iter().enumerate() {
                    let Some(col) = c.table.columns.get(i) else {
                        continue;
                    };
                    out.push(vec![
                        text(DATABASE),
                        text(PUBLIC),
                        text(&c.name),
                        text(DATABASE),
                        text(PUBLIC),
                        text(&c.table.name),
                        text(&col.name),
                        int(k as i64 + 1),
                        if c.kind == "f" { int(1) } else { NULL },
                    ]);
                }
            }
            out
        }
        "information_schema.referential_constraints" => objects
            .constraints()
            .into_iter()
            .filter(|c| c.kind == "f")
            .map(|c| {
                let target = c
                    .references
                    .and_then(|(rt, _)| objects.table(rt))
                    .map(primary_key_name);
                vec![
                    text(DATABASE),
                    text(PUBLIC),
                    text(c.name),
                    text(DATABASE),
                    text(PUBLIC),
                    target.map(text).unwrap_or(NULL),
                    text("NONE"),
                    text("NO ACTION"),
                    text("NO ACTION"),
                ]
            })
            .collect(),
        "information_schema.views" => views
            .iter()
            .map(|v| {
                vec![
                    text(DATABASE),
                    text(PUBLIC),
                    text(&v.name),
                    text(&v.sql),
                    text("NONE"),
                    text("NO"),
                ]
            })
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{ColumnDef, IndexDef};

    fn objects() -> Objects {
        let col = |name: &str, t, nullable| ColumnDef {
            name: name.into(),
            data_type: t,
            nullable,
            default: None,
            references: None,
        };
        let t = TableDef {
            name: "t".into(),
            keyspace: 5,
            columns: vec![
                col("id", DataType::Int, false),
                col("name", DataType::Text, true),
            ],
            primary_key: vec![0],
            indexes: vec![IndexDef {
                name: "t_name".into(),
                keyspace: 6,
                columns: vec![1],
                unique: true,
            }],
        };
        let v = ViewDef {
            name: "v".into(),
            columns: vec!["id".into()],
            sql: "SELECT id FROM t".into(),
        };
        Objects {
            tables: vec![t],
            views: vec![v],
            view_columns: vec![vec![("id".to_string(), Some(DataType::Int))]],
        }
    }

    #[test]
    fn every_row_has_its_tables_columns() {
        let o = objects();
        let names = [
            "pg_namespace",
            "pg_class",
            "pg_attribute",
            "pg_attrdef",
            "pg_type",
            "pg_index",
            "pg_constraint",
            "pg_am",
            "pg_database",
            "pg_tablespace",
            "pg_collation",
            "pg_roles",
            "pg_settings",
            "pg_tables",
            "pg_views",
            "pg_indexes",
            "information_schema.schemata",
            "information_schema.tables",
            "information_schema.columns",
            "information_schema.table_constraints",
            "information_schema.key_column_usage",
            "information_schema.referential_constraints",
            "information_schema.views",
        ];
        for n in names {
            let width = columns(n).unwrap().len();
            for r in rows(n, &o) {
                assert_eq!(r.len(), width, "{n}");
            }
        }
        assert!(!is_catalog("tables"), "information_schema needs its schema");
        assert!(is_catalog("pg_class") && is_catalog("PG_CATALOG.PG_CLASS"));
    }

    #[test]
    fn object_ids_are_distinct_and_definitions_name_their_columns() {
        let o = objects();
        let tables = &o.tables;
        let mut oids: Vec<i64> = o.relation_names().into_iter().map(|(oid, _)| oid).collect();
        let n = oids.len();
        oids.sort();
        oids.dedup();
        assert_eq!(oids.len(), n);
        assert_eq!(
            n,
            4 + CATALOG_OIDS.len(),
            "table, its primary key, its index, the view, the catalogs"
        );
        for (name, _) in CATALOG_OIDS {
            assert!(is_catalog(name), "{name} has columns");
        }
        let defs = o.index_definitions();
        assert!(
            defs.iter()
                .any(|(_, d)| d == "CREATE UNIQUE INDEX t_name ON public.t USING btree (name)")
        );
        let cons = o.constraint_definitions();
        assert!(
            cons.iter()
                .any(|(oid, d)| *oid == table_oid(&tables[0]) + 1 && d == "PRIMARY KEY (id)")
        );
    }
}
