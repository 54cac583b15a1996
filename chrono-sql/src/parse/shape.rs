//! The shape check: bounds on a statement's tokens before a tree is built from them.
//!
//! An expression tree's depth is at most the sum, over the parenthesis levels around a
//! point, of the operators in the comma-separated item at that level (sqlparser nests
//! `a + b + c` as `((a + b) + c)`: one level per operator), plus one per level. The check
//! keeps that sum as it walks the tokens and refuses a statement past
//! `limits.max_expression_depth`. It over-counts (every operator of a clause counts, not
//! just those of one chain), never under-counts. Clause keywords (`WHERE`, `ON`, `SET`…)
//! start a new expression, so a long query of short expressions passes.

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::error::Result;
use crate::limits::Limits;

#[derive(Default)]
struct Level {
    /// Operators in the current comma-separated item.
    operators: usize,
    /// Commas so far: the list has one item more.
    commas: usize,
}

fn is_operator_word(k: Keyword) -> bool {
    matches!(
        k,
        Keyword::AND
            | Keyword::OR
            | Keyword::NOT
            | Keyword::IS
            | Keyword::LIKE
            | Keyword::ILIKE
            | Keyword::BETWEEN
            | Keyword::IN
            | Keyword::CASE
            | Keyword::COLLATE
            | Keyword::ESCAPE
            | Keyword::SIMILAR
            | Keyword::REGEXP
            | Keyword::EXISTS
            | Keyword::XOR
            | Keyword::DIV
            | Keyword::AT
    )
}

fn starts_expression(k: Keyword) -> bool {
    matches!(
        k,
        Keyword::SELECT
            | Keyword::FROM
            | Keyword::WHERE
            | Keyword::GROUP
            | Keyword::HAVING
            | Keyword::ORDER
            | Keyword::LIMIT
            | Keyword::OFFSET
            | Keyword::SET
            | Keyword::VALUES
            | Keyword::ON
            | Keyword::JOIN
            | Keyword::UNION
            | Keyword::EXCEPT
            | Keyword::INTERSECT
            | Keyword::MINUS
            | Keyword::RETURNING
            | Keyword::WHEN
            | Keyword::THEN
            | Keyword::ELSE
    )
}

/// Refuses token lists (whitespace left out) whose trees could pass the limits.
pub(crate) fn check(tokens: &[TokenWithSpan], limits: &Limits) -> Result<()> {
    let mut levels: Vec<Level> = vec![Level::default()];
    // Sum over `levels` of (operators + 1), kept incrementally.
    let mut depth = 1usize;
    let mut text_tokens = 0usize;
    let mut statements = 0usize;
    let mut statement_starts = true;
    // sqlparser nests `a UNION b UNION c` to the left, one level per operator.
    let mut set_operations = 0usize;
    for t in tokens {
        text_tokens += 1;
        Limits::at_most(
            text_tokens,
            limits.max_statement_tokens,
            "max_statement_tokens",
            "the SQL text has",
            "tokens",
        )?;
        if statement_starts && !matches!(t.token, Token::SemiColon) {
            statement_starts = false;
            statements += 1;
            Limits::at_most(
                statements,
                limits.max_statements,
                "max_statements",
                "the SQL text holds",
                "statements",
            )?;
        }
        let mut operator = false;
        match &t.token {
            Token::SemiColon => {
                levels = vec![Level::default()];
                depth = 1;
                set_operations = 0;
                statement_starts = true;
            }
            Token::LParen | Token::LBracket | Token::LBrace => {
                levels.push(Level::default());
                depth += 1;
            }
            Token::RParen | Token::RBracket | Token::RBrace => {
                if levels.len() > 1
                    && let Some(l) = levels.pop()
                {
                    depth -= l.operators + 1;
                }
            }
            Token::Comma => {
                let nested = levels.len() > 1;
                if let Some(l) = levels.last_mut() {
                    depth -= l.operators;
                    l.operators = 0;
                    l.commas += 1;
                    if nested {
                        Limits::at_most(
                            l.commas + 1,
                            limits.max_in_list,
                            "max_in_list",
                            "a parenthesized list has",
                            "items",
                        )?;
                    }
                }
            }
            Token::Word(w) if w.quote_style.is_none() && starts_expression(w.keyword) => {
                if matches!(
                    w.keyword,
                    Keyword::UNION | Keyword::EXCEPT | Keyword::INTERSECT | Keyword::MINUS
                ) {
                    set_operations += 1;
                    Limits::at_most(
                        set_operations,
                        limits.max_expression_depth,
                        "max_expression_depth",
                        "a statement chains",
                        "set operations (UNION, INTERSECT, EXCEPT)",
                    )?;
                }
                if let Some(l) = levels.last_mut() {
                    depth -= l.operators;
                    l.operators = 0;
                }
            }
            Token::Word(w) => operator = w.quote_style.is_none() && is_operator_word(w.keyword),
            Token::Number(..)
            | Token::Char(_)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::TripleSingleQuotedString(_)
            | Token::TripleDoubleQuotedString(_)
            | Token::DollarQuotedString(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::DoubleQuotedByteStringLiteral(_)
            | Token::NationalStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::UnicodeStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::Placeholder(_)
            | Token::Period
            | Token::EOF => {}
            _ => operator = true,
        }
        if operator && let Some(l) = levels.last_mut() {
            l.operators += 1;
            depth += 1;
        }
        Limits::at_most(
            depth,
            limits.max_expression_depth,
            "max_expression_depth",
            "an expression is nested or chained",
            "deep",
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::timetravel::tokenize;
    use sqlparser::dialect::GenericDialect;

    fn shape(sql: &str, limits: &Limits) -> Result<()> {
        check(&tokenize(&GenericDialect {}, sql).unwrap(), limits)
    }

    fn limits(depth: usize) -> Limits {
        Limits {
            max_expression_depth: depth,
            max_in_list: 100,
            ..Limits::default()
        }
    }

    #[test]
    fn chains_and_nesting_count_and_commas_reset() {
        let l = limits(20);
        let chain = |n: usize| format!("SELECT {}", vec!["1"; n].join(" + "));
        assert!(shape(&chain(10), &l).is_ok());
        assert!(shape(&chain(30), &l).is_err());
        let nested = |n: usize| format!("SELECT {}1{}", "(".repeat(n), ")".repeat(n));
        assert!(shape(&nested(10), &l).is_ok());
        assert!(shape(&nested(30), &l).is_err());
        // Many short expressions are fine: commas and clause keywords start new ones.
        let items = vec!["a + b + c"; 50].join(", ");
        assert!(shape(&format!("SELECT {items} FROM t WHERE x = 1"), &l).is_ok());
        let conds = vec!["a = 1"; 15].join(" AND ");
        assert!(shape(&format!("SELECT * FROM t WHERE {conds}"), &l).is_err());
        assert!(shape("SELECT - - - - - - - - - - - - - - - - - - - - - - - 1", &l).is_err());
    }

    #[test]
    fn lists_and_tokens_are_bounded() {
        let l = limits(20);
        let list = |n: usize| format!("SELECT 1 IN ({})", vec!["1"; n].join(", "));
        assert!(shape(&list(99), &l).is_ok());
        let err = shape(&list(200), &l).unwrap_err().to_string();
        assert!(err.contains("limits.max_in_list"), "{err}");
        let few_tokens = Limits {
            max_statement_tokens: 10,
            ..Limits::default()
        };
        let err = shape("SELECT 1, 2, 3, 4, 5, 6", &few_tokens)
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.max_statement_tokens"), "{err}");
        // The count covers the whole text, however it is split into statements.
        assert!(shape("SELECT 1; SELECT 2; SELECT 3; SELECT 4", &few_tokens).is_err());
        assert!(shape("SELECT 1; SELECT 2", &few_tokens).is_ok());
        let two = Limits {
            max_statements: 2,
            ..Limits::default()
        };
        assert!(shape("SELECT 1; SELECT 2;", &two).is_ok());
        let err = shape("SELECT 1; SELECT 2; SELECT 3", &two)
            .unwrap_err()
            .to_string();
        assert!(err.contains("limits.max_statements"), "{err}");
    }
}
