//! From SQL text to statements ready to plan: tokens, time-travel lifting, the shape check,
//! sqlparser, then translation into ChronoDB's own [`crate::ast`].
//!
//! ```text
//!  text ─► max_sql_bytes ─► tokenize ─► timetravel::lift ─► sqlite_forms::rewrite
//!       ─► shape::check ─► sqlparser ─► translate ─► Prepared (ast::Statement)
//! ```
//!
//! A multi-row `INSERT … VALUES` of plain literals takes a shorter way through sqlparser:
//! see `values.rs`. Nothing after `translate.rs` imports sqlparser.
//!
//! `shape::check` runs on the tokens, before any tree exists: it bounds the number of
//! tokens of a statement, the depth any expression tree built from them can reach (nesting
//! plus operator-chain length) and the length of a parenthesized list. Every later pass
//! recurses over trees no deeper than `limits.max_expression_depth`.

mod history;
mod normalize;
mod shape;
mod sqlite_forms;
pub mod timetravel;
mod translate;
mod values;

use std::sync::Arc;

use sqlparser::ast as sql;
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use crate::ast;
use crate::error::{Error, Result};
use crate::limits::Limits;
use translate::Translator;

/// sqlparser's own guard for nested subqueries and parentheses.
const PARSER_RECURSION_LIMIT: usize = 64;

/// A parsed statement, ready to run with parameters. Cloning it is cheap (the tree is
/// shared).
#[derive(Debug, Clone)]
pub struct Prepared {
    pub(crate) statement: Arc<ast::Statement>,
    /// The statement as SQL text (sqlparser's rendering: what the audit trail records).
    text: Arc<str>,
    /// Its normalized text (literals as `?`): the key of its statistics.
    normalized: Arc<str>,
    /// How many parameters (`?`, `$n`) the statement text uses.
    pub param_count: usize,
    /// The plan of its last execution, while the catalog and statistics stay the same.
    pub(crate) plan: Arc<crate::plan_cache::PlanSlot>,
}

impl Prepared {
    /// The statement as SQL text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The normalized text: literals and parameters as `?`, unquoted words in lower case,
    /// a VALUES list as its first row (see [`crate::statements`]).
    pub fn normalized(&self) -> &Arc<str> {
        &self.normalized
    }

    /// The statement's tree.
    pub fn statement(&self) -> &ast::Statement {
        &self.statement
    }

    /// Whether the statement reads, writes rows or changes the schema.
    pub fn schema_role(&self) -> crate::schema_gate::SchemaRole {
        use crate::schema_gate::SchemaRole;
        match &*self.statement {
            ast::Statement::Insert(_) | ast::Statement::Update(_) | ast::Statement::Delete(_) => {
                SchemaRole::Writes
            }
            ast::Statement::CreateTable(_)
            | ast::Statement::CreateIndex(_)
            | ast::Statement::AddColumns(_)
            | ast::Statement::Drop(_)
            | ast::Statement::CreateView(_) => SchemaRole::Changes,
            _ => SchemaRole::Reads,
        }
    }

    /// True for statements that only read (queries and EXPLAIN of queries).
    pub fn is_query(&self) -> bool {
        self.statement.is_query()
    }
}

/// Parses a text of one or more statements with the default [`Limits`].
pub fn parse(sql_text: &str) -> Result<Vec<Prepared>> {
    parse_with(sql_text, &Limits::default())
}

fn check_length(sql_text: &str, limits: &Limits) -> Result<()> {
    Limits::at_most(
        sql_text.len(),
        limits.max_sql_bytes,
        "max_sql_bytes",
        "the SQL text has",
        "bytes",
    )
}

fn syntax(e: sqlparser::parser::ParserError) -> Error {
    Error::Syntax(
        e.to_string()
            .trim_start_matches("sql parser error: ")
            .to_string(),
    )
}

/// Parses a text of one or more statements within `limits`.
pub fn parse_with(sql_text: &str, limits: &Limits) -> Result<Vec<Prepared>> {
    check_length(sql_text, limits)?;
    let dialect = GenericDialect {};
    let mut lifted = timetravel::lift(&dialect, sql_text)?;
    sqlite_forms::rewrite(&mut lifted.tokens);
    shape::check(&lifted.tokens, limits)?;
    let mut normalized = normalize::statements(&lifted.tokens);
    let whole = match history::delete_history(&lifted.tokens)? {
        Some(found) => Some(found),
        None => sqlite_forms::reindex(&lifted.tokens)?,
    };
    if let Some((statement, text)) = whole {
        return Ok(vec![Prepared {
            statement: Arc::new(statement),
            normalized: normalized.pop().unwrap_or_default().into(),
            text: text.into(),
            param_count: lifted.param_count,
            plan: Arc::default(),
        }]);
    }
    let fast = values::split(&lifted.tokens).and_then(|split| {
        let [head] = <[sql::Statement; 1]>::try_from(sqlparser(&dialect, split.head).ok()?).ok()?;
        values::join(head, split.rows)
    });
    let statements = match fast {
        Some(statement) => vec![statement],
        None => sqlparser(&dialect, lifted.tokens)?,
    };
    let translator = Translator {
        clauses: &lifted.clauses,
    };
    if normalized.len() != statements.len() {
        // An empty statement the split saw differently: each statement's own text serves.
        normalized = statements.iter().map(|s| s.to_string()).collect();
    }
    statements
        .iter()
        .zip(normalized)
        .map(|(statement, normalized)| {
            Ok(Prepared {
                statement: Arc::new(translator.statement(statement)?),
                normalized: normalized.into(),
                text: statement.to_string().into(),
                param_count: lifted.param_count,
                plan: Arc::default(),
            })
        })
        .collect()
}

fn sqlparser(
    dialect: &GenericDialect,
    tokens: Vec<sqlparser::tokenizer::TokenWithSpan>,
) -> Result<Vec<sql::Statement>> {
    Parser::new(dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .with_tokens_with_locations(tokens)
        .parse_statements()
        .map_err(syntax)
}

/// Parses one expression (a stored DEFAULT, a change-stream filter) within `limits`.
pub fn parse_expr(text: &str, limits: &Limits) -> Result<ast::Expr> {
    check_length(text, limits)?;
    let dialect = GenericDialect {};
    let tokens = timetravel::tokenize(&dialect, text)?;
    shape::check(&tokens, limits)?;
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .with_tokens_with_locations(tokens);
    let e = parser.parse_expr().map_err(syntax)?;
    // The whole text is the expression: anything after it is an error, never cut off.
    let rest = parser.peek_token();
    if rest.token != sqlparser::tokenizer::Token::EOF {
        return Err(Error::Syntax(format!(
            "unexpected {} after the end of the condition at {}",
            rest.token, rest.span.start
        )));
    }
    Translator { clauses: &[] }.expr(&e)
}
