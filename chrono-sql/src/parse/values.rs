//! The fast path for a multi-row `INSERT … VALUES` of plain literals — the statement bulk
//! loads are made of.
//!
//! sqlparser reads every expression by first trying it as a typed literal (`DATE '…'`),
//! and for a plain number or string that attempt fails with a formatted error message:
//! for 1,000 rows of three values, 3,000 error strings built and dropped, a quarter of a
//! bulk insert's time. Rows whose values are each a number, a string, NULL, TRUE, FALSE, a
//! parameter or a negated number need no parser: this pass reads them straight from the
//! tokens into the same AST nodes. sqlparser still parses the statement with its first
//! row, and the first row read here must equal the one sqlparser produced — otherwise the
//! whole text goes through sqlparser — so the two readings cannot drift apart.

use sqlparser::ast as sql;
use sqlparser::ast::helpers::attached_token::AttachedToken;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, TokenWithSpan};

/// Fewer rows than this go through sqlparser whole.
const MIN_ROWS: usize = 2;

/// A literal-rows INSERT split for parsing: `head` (the statement with its first row) goes
/// to sqlparser, `rows` are all rows read from the tokens (the first one included, for the
/// check).
pub(super) struct Split {
    /// The statement's tokens with only the first row of VALUES.
    pub head: Vec<TokenWithSpan>,
    /// Every row, read from the tokens.
    pub rows: Vec<sql::Parens<Vec<sql::Expr>>>,
}

/// Splits `INSERT INTO name [(columns)] VALUES (literals), (literals)… [;]`, when the text
/// is exactly one such statement with at least [`MIN_ROWS`] rows.
pub(super) fn split(tokens: &[TokenWithSpan]) -> Option<Split> {
    let mut i = 0;
    let keyword = |i: usize, k: Keyword| matches!(tokens.get(i).map(|t| &t.token), Some(Token::Word(w)) if w.keyword == k);
    let is = |i: usize, t: &Token| tokens.get(i).is_some_and(|x| &x.token == t);
    if !keyword(0, Keyword::INSERT) || !keyword(1, Keyword::INTO) {
        return None;
    }
    i += 2;
    // The table name: word (. word)*.
    loop {
        matches!(tokens.get(i)?.token, Token::Word(_)).then_some(())?;
        i += 1;
        if !is(i, &Token::Period) {
            break;
        }
        i += 1;
    }
    if is(i, &Token::LParen) {
        i += 1;
        loop {
            matches!(tokens.get(i)?.token, Token::Word(_)).then_some(())?;
            i += 1;
            if is(i, &Token::Comma) {
                i += 1;
            } else if is(i, &Token::RParen) {
                i += 1;
                break;
            } else {
                return None;
            }
        }
    }
    if !keyword(i, Keyword::VALUES) {
        return None;
    }
    i += 1;
    let mut rows = Vec::new();
    let mut first_row_end = 0;
    loop {
        let (row, next) = literal_row(tokens, i)?;
        rows.push(row);
        if rows.len() == 1 {
            first_row_end = next;
        }
        i = next;
        if is(i, &Token::Comma) {
            i += 1;
            continue;
        }
        break;
    }
    if is(i, &Token::SemiColon) {
        i += 1;
    }
    if i != tokens.len() || rows.len() < MIN_ROWS {
        return None;
    }
    let mut head = tokens[..first_row_end].to_vec();
    head.extend(tokens[i..].iter().cloned());
    Some(Split { head, rows })
}

/// `( literal, … )` starting at `i`: the row and the index after its `)`.
fn literal_row(
    tokens: &[TokenWithSpan],
    mut i: usize,
) -> Option<(sql::Parens<Vec<sql::Expr>>, usize)> {
    let open = tokens.get(i)?;
    (open.token == Token::LParen).then_some(())?;
    i += 1;
    let mut values = Vec::new();
    loop {
        let (value, next) = literal(tokens, i)?;
        values.push(value);
        i = next;
        let t = tokens.get(i)?;
        match t.token {
            Token::Comma => i += 1,
            Token::RParen => {
                let row = sql::Parens {
                    opening_token: AttachedToken(open.clone()),
                    content: values,
                    closing_token: AttachedToken(t.clone()),
                };
                return Some((row, i + 1));
            }
            _ => return None,
        }
    }
}

/// One plain literal at `i`, as sqlparser would build it.
fn literal(tokens: &[TokenWithSpan], i: usize) -> Option<(sql::Expr, usize)> {
    let t = tokens.get(i)?;
    let value = |v: sql::Value, t: &TokenWithSpan| {
        sql::Expr::Value(sql::ValueWithSpan {
            value: v,
            span: t.span,
        })
    };
    let v = match &t.token {
        Token::Number(n, long) => sql::Value::Number(n.clone(), *long),
        Token::SingleQuotedString(s) => sql::Value::SingleQuotedString(s.clone()),
        Token::Placeholder(p) => sql::Value::Placeholder(p.clone()),
        Token::Word(w) if w.quote_style.is_none() => match w.keyword {
            Keyword::NULL => sql::Value::Null,
            Keyword::TRUE => sql::Value::Boolean(true),
            Keyword::FALSE => sql::Value::Boolean(false),
            _ => return None,
        },
        Token::Minus => {
            let n = tokens.get(i + 1)?;
            let Token::Number(digits, long) = &n.token else {
                return None;
            };
            let negated = sql::Expr::UnaryOp {
                op: sql::UnaryOperator::Minus,
                expr: Box::new(value(sql::Value::Number(digits.clone(), *long), n)),
            };
            return Some((negated, i + 2));
        }
        _ => return None,
    };
    Some((value(v, t), i + 1))
}

/// The statement sqlparser parsed from [`Split::head`] with every row in place of its
/// first — or None when its first row is not the one read from the tokens.
pub(super) fn join(
    mut statement: sql::Statement,
    rows: Vec<sql::Parens<Vec<sql::Expr>>>,
) -> Option<sql::Statement> {
    let sql::Statement::Insert(insert) = &mut statement else {
        return None;
    };
    let source = insert.source.as_mut()?;
    let sql::SetExpr::Values(values) = source.body.as_mut() else {
        return None;
    };
    if values.rows.len() != 1 || values.rows[0].content != rows.first()?.content {
        return None;
    }
    values.rows = rows;
    Some(statement)
}

#[cfg(test)]
mod tests {
    use sqlparser::dialect::GenericDialect;
    use sqlparser::parser::Parser;

    use super::*;
    use crate::parse::timetravel;

    fn sqlparser_reading(text: &str) -> sql::Statement {
        let dialect = GenericDialect {};
        let tokens = timetravel::tokenize(&dialect, text).unwrap();
        Parser::new(&dialect)
            .with_tokens_with_locations(tokens)
            .parse_statement()
            .unwrap()
    }

    fn fast_reading(text: &str) -> Option<sql::Statement> {
        let dialect = GenericDialect {};
        let tokens = timetravel::tokenize(&dialect, text).unwrap();
        let split = split(&tokens)?;
        let head = Parser::new(&dialect)
            .with_tokens_with_locations(split.head)
            .parse_statement()
            .unwrap();
        join(head, split.rows)
    }

    #[test]
    fn literal_rows_read_as_sqlparser_reads_them() {
        for text in [
            "INSERT INTO t VALUES (1, 'a', NULL), (-2, 'it''s', TRUE), (3.5, '', FALSE)",
            "INSERT INTO s.t (a, b) VALUES ($1, $2), (?, -0.5);",
            "insert into t values (1e3), (-7)",
        ] {
            assert_eq!(
                fast_reading(text).map(|s| s.to_string()),
                Some(sqlparser_reading(text).to_string()),
                "{text}"
            );
            assert_eq!(fast_reading(text), Some(sqlparser_reading(text)), "{text}");
        }
    }

    fn literal_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| f.to_string()),
            any::<String>().prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
            Just("NULL".to_string()),
            Just("true".to_string()),
            Just("FALSE".to_string()),
            Just("?".to_string()),
            (1usize..9).prop_map(|n| format!("${n}")),
        ]
    }

    proptest::proptest! {
        #[test]
        fn any_literal_rows_read_as_sqlparser_reads_them(
            rows in proptest::collection::vec(proptest::collection::vec(literal_text(), 1..5), 2..6)
        ) {
            let rows: Vec<String> = rows.iter().map(|r| format!("({})", r.join(", "))).collect();
            let text = format!("INSERT INTO t VALUES {}", rows.join(", "));
            let Ok(tokens) = timetravel::tokenize(&GenericDialect {}, &text) else {
                return Ok(());
            };
            let reference = Parser::new(&GenericDialect {})
                .with_tokens_with_locations(tokens)
                .parse_statement()
                .unwrap();
            proptest::prop_assert_eq!(fast_reading(&text), Some(reference));
        }
    }

    #[test]
    fn anything_else_goes_through_sqlparser() {
        for text in [
            "INSERT INTO t VALUES (1)",
            "INSERT INTO t VALUES (1 + 1), (2)",
            "INSERT INTO t VALUES (1), (x'00')",
            "INSERT INTO t VALUES (1), (2) RETURNING a",
            "INSERT INTO t VALUES (1), (2); SELECT 1",
            "INSERT INTO t SELECT 1",
            "INSERT INTO t VALUES (1), (DATE '2020-01-01')",
            "INSERT INTO t VALUES (1), ((2))",
            "INSERT INTO t VALUES (1), (\"col\")",
        ] {
            assert!(fast_reading(text).is_none(), "{text}");
        }
    }
}
