//! `DELETE HISTORY FROM t [BEFORE SYSTEM_TIME [TIMESTAMP] time]` — MariaDB's statement for
//! deleting old row versions, which sqlparser does not parse. Read from the tokens; it must
//! be the only statement of its text (it runs outside transactions, see the session).

use sqlparser::tokenizer::{Token, TokenWithSpan};

use super::timetravel::{TimeLiteral, is_word, literal};
use crate::ast;
use crate::error::{Error, Result};

/// The statement and its text when `tokens` are a `DELETE HISTORY`; `None` for anything
/// else.
pub(super) fn delete_history(tokens: &[TokenWithSpan]) -> Result<Option<(ast::Statement, String)>> {
    let is = |i: usize, w: &str| tokens.get(i).is_some_and(|t| is_word(&t.token, w));
    if !(is(0, "DELETE") && is(1, "HISTORY")) {
        return Ok(None);
    }
    let at = |i: usize| {
        tokens
            .get(i)
            .map(|t| format!("at {}", t.span.start))
            .unwrap_or_else(|| "at the end".into())
    };
    if !is(2, "FROM") {
        return Err(Error::Syntax(format!(
            "expected FROM after DELETE HISTORY ({})",
            at(2)
        )));
    }
    let table = match tokens.get(3).map(|t| &t.token) {
        Some(Token::Word(w)) => w.value.clone(),
        _ => {
            return Err(Error::Syntax(format!(
                "expected a table name after DELETE HISTORY FROM ({})",
                at(3)
            )));
        }
    };
    let mut i = 4;
    let mut before = None;
    if is(i, "BEFORE") {
        if !is(i + 1, "SYSTEM_TIME") {
            return Err(Error::Syntax(format!(
                "expected SYSTEM_TIME after BEFORE ({})",
                at(i + 1)
            )));
        }
        let (lit, n) = literal(tokens, i + 2)?;
        before = Some(lit);
        i += 2 + n;
    }
    while matches!(tokens.get(i).map(|t| &t.token), Some(Token::SemiColon)) {
        i += 1;
    }
    if i < tokens.len() && !matches!(tokens[i].token, Token::EOF) {
        return Err(Error::Syntax(format!(
            "DELETE HISTORY must be the only statement of its text; unexpected {} ({})",
            tokens[i].token,
            at(i)
        )));
    }
    let mut text = format!("DELETE HISTORY FROM {}", tokens[3].token);
    if let Some(lit) = &before {
        text.push_str(" BEFORE SYSTEM_TIME ");
        text.push_str(&match lit {
            TimeLiteral::Number(n) => n.clone(),
            TimeLiteral::Text(t) => format!("'{}'", t.replace('\'', "''")),
            TimeLiteral::Param(n) => format!("${n}"),
            // `literal` reads no expressions.
            TimeLiteral::Expr(_) => String::new(),
        });
    }
    Ok(Some((
        ast::Statement::DeleteHistory { table, before },
        text,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(sql: &str) -> Result<Option<(ast::Statement, String)>> {
        let tokens =
            super::super::timetravel::tokenize(&sqlparser::dialect::GenericDialect {}, sql)?;
        delete_history(&tokens)
    }

    #[test]
    fn forms() {
        let (s, text) =
            parse("delete history from Orders before system_time timestamp '2026-01-02 03:04:05';")
                .unwrap()
                .unwrap();
        assert_eq!(
            s,
            ast::Statement::DeleteHistory {
                table: "Orders".into(),
                before: Some(TimeLiteral::Text("2026-01-02 03:04:05".into()))
            }
        );
        assert_eq!(
            text,
            "DELETE HISTORY FROM Orders BEFORE SYSTEM_TIME '2026-01-02 03:04:05'"
        );
        let (s, _) = parse("DELETE HISTORY FROM t").unwrap().unwrap();
        assert_eq!(
            s,
            ast::Statement::DeleteHistory {
                table: "t".into(),
                before: None
            }
        );
        assert!(parse("DELETE FROM t").unwrap().is_none());
    }

    #[test]
    fn malformed_forms_are_named_errors() {
        for sql in [
            "DELETE HISTORY t",
            "DELETE HISTORY FROM",
            "DELETE HISTORY FROM t BEFORE 5",
            "DELETE HISTORY FROM t BEFORE SYSTEM_TIME",
            "DELETE HISTORY FROM t BEFORE SYSTEM_TIME 5 WHERE x = 1",
            "DELETE HISTORY FROM t; SELECT 1",
        ] {
            let e = parse(sql).unwrap_err();
            assert!(matches!(e, Error::Syntax(_)), "{sql}: {e}");
        }
    }
}
