//! SQLite's forms that sqlparser does not read, rewritten on the tokens before it runs:
//!
//! - `x IN ()` and `x NOT IN ()`: an empty list, FALSE and TRUE for every `x` (NULL
//!   included), read as `x IN (SELECT NULL WHERE FALSE)`, which means the same.
//! - `t INDEXED BY i` and `t NOT INDEXED` after a table (or its alias): hints to SQLite's
//!   planner. ChronoDB's optimizer chooses the access path itself; the hint is accepted and
//!   left out (an index it names is not checked to exist).
//! - `REINDEX [name]`: indexes are written in the same batch as their rows and never need
//!   rebuilding; the statement checks that the table or index it names exists, and does
//!   nothing else (see [`reindex`]).

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, TokenWithSpan, Word};

use super::timetravel::is_word;
use crate::ast;
use crate::error::{Error, Result};

/// Rewrites empty IN lists and drops index hints, in place.
pub(super) fn rewrite(tokens: &mut Vec<TokenWithSpan>) {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    let names_a_table = |t: Option<&TokenWithSpan>| {
        matches!(t.map(|t| &t.token), Some(Token::Word(w))
            if w.quote_style.is_some() || w.keyword == Keyword::NoKeyword)
    };
    while i < tokens.len() {
        let at = |k: usize| tokens.get(i + k).map(|t| &t.token);
        // `IN ( )`
        if matches!(at(0), Some(t) if is_word(t, "IN"))
            && at(1) == Some(&Token::LParen)
            && at(2) == Some(&Token::RParen)
        {
            let span = tokens[i + 1].span;
            let word = |w: &str| TokenWithSpan {
                token: Token::make_keyword(w),
                span,
            };
            out.push(tokens[i].clone());
            out.push(tokens[i + 1].clone());
            out.extend([word("SELECT"), word("NULL"), word("WHERE"), word("FALSE")]);
            out.push(tokens[i + 2].clone());
            i += 3;
            continue;
        }
        if names_a_table(out.last()) {
            if matches!(at(0), Some(t) if is_word(t, "NOT"))
                && matches!(at(1), Some(t) if is_word(t, "INDEXED"))
            {
                i += 2;
                continue;
            }
            if matches!(at(0), Some(t) if is_word(t, "INDEXED"))
                && matches!(at(1), Some(t) if is_word(t, "BY"))
                && matches!(at(2), Some(Token::Word(_)))
            {
                i += 3;
                continue;
            }
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    *tokens = out;
}

/// `REINDEX [name]`, when the text is one: the statement and its text.
pub(super) fn reindex(tokens: &[TokenWithSpan]) -> Result<Option<(ast::Statement, String)>> {
    if !tokens.first().is_some_and(|t| is_word(&t.token, "REINDEX")) {
        return Ok(None);
    }
    let mut rest = tokens[1..]
        .iter()
        .filter(|t| !matches!(t.token, Token::SemiColon | Token::EOF));
    let target = match rest.next().map(|t| &t.token) {
        None => None,
        Some(Token::Word(Word { value, .. })) => Some(value.clone()),
        Some(other) => {
            return Err(Error::Syntax(format!(
                "expected a table or index name after REINDEX, found {other}"
            )));
        }
    };
    if let Some(extra) = rest.next() {
        return Err(Error::Syntax(format!(
            "REINDEX must be the only statement of its text; unexpected {} at {}",
            extra.token, extra.span.start
        )));
    }
    let text = match &target {
        Some(t) => format!("REINDEX {t}"),
        None => "REINDEX".to_string(),
    };
    Ok(Some((ast::Statement::Reindex { target }, text)))
}
