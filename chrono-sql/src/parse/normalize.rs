//! A statement's normalized text, the key of its statistics ([`crate::statements`]):
//! its tokens with every literal and parameter as `?`, unquoted words in lower case and a
//! VALUES list cut to its first row, so `SELECT * FROM t WHERE id = 7` and `… id = 8` count as one statement.

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, TokenWithSpan};

/// Longest normalized text kept.
const MAX_BYTES: usize = 1024;

/// The normalized texts of the statements in `tokens` (split at `;`), empty ones left out.
pub(super) fn statements(tokens: &[TokenWithSpan]) -> Vec<String> {
    tokens
        .split(|t| t.token == Token::SemiColon)
        .filter(|s| !s.is_empty())
        .map(one)
        .collect()
}

fn one(tokens: &[TokenWithSpan]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < tokens.len() && out.len() < MAX_BYTES {
        let t = &tokens[i].token;
        let text = match t {
            Token::Number(..)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedByteStringLiteral(_)
            | Token::SingleQuotedByteStringLiteral(_)
            | Token::NationalStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::Placeholder(_) => "?".to_string(),
            // Unquoted words (keywords, names) in one case — SQL does not tell them apart —
            // so `SELECT` and `select` count together.
            Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_lowercase(),
            other => other.to_string(),
        };
        if !out.is_empty()
            && !matches!(t, Token::Comma | Token::RParen | Token::Period)
            && !out.ends_with('(')
            && !out.ends_with('.')
        {
            out.push(' ');
        }
        out.push_str(&text);
        i += 1;
        // VALUES (…), (…), …: the first row stands for all.
        if matches!(t, Token::Word(w) if w.keyword == Keyword::VALUES) {
            i = skip_rows(tokens, i, &mut out);
        }
    }
    if out.len() > MAX_BYTES {
        let mut cut = MAX_BYTES;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('…');
    }
    out
}

/// Copies the first parenthesized row at `i` and skips the `, (…)` rows after it; returns
/// where it stopped.
fn skip_rows(tokens: &[TokenWithSpan], mut i: usize, out: &mut String) -> usize {
    let group_end = |from: usize| -> Option<usize> {
        if tokens.get(from)?.token != Token::LParen {
            return None;
        }
        let mut depth = 0usize;
        for (k, t) in tokens.iter().enumerate().skip(from) {
            match t.token {
                Token::LParen => depth += 1,
                Token::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(k + 1);
                    }
                }
                _ => {}
            }
        }
        None
    };
    let Some(first_end) = group_end(i) else {
        return i;
    };
    out.push(' ');
    out.push_str(&one(&tokens[i..first_end]));
    i = first_end;
    while tokens.get(i).is_some_and(|t| t.token == Token::Comma) {
        match group_end(i + 1) {
            Some(end) => i = end,
            None => break,
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use sqlparser::dialect::GenericDialect;

    fn norm(sql: &str) -> Vec<String> {
        let tokens = super::super::timetravel::tokenize(&GenericDialect {}, sql).unwrap();
        super::statements(&tokens)
    }

    #[test]
    fn literals_and_value_lists_fold_together() {
        assert_eq!(
            norm("SELECT name FROM users WHERE id = 7 AND name <> 'x'"),
            norm("select name from users where id = $1 and name <> 'yy'")
        );
        assert_eq!(
            norm("SELECT name FROM Users WHERE \"Id\" = 7")[0],
            "select name from users where \"Id\" = ?"
        );
        assert_eq!(
            norm("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')"),
            norm("INSERT INTO t VALUES (9, 'z')")
        );
        assert_eq!(
            norm("INSERT INTO t (x, y) VALUES (1, 2)")[0],
            "insert into t (x, y) values (?, ?)"
        );
        assert_eq!(norm("SELECT 1; ; SELECT t.x FROM t").len(), 2);
        assert_eq!(norm("SELECT t.x FROM t")[0], "select t.x from t");
        let long = format!("SELECT {}", vec!["a"; 2000].join(" + "));
        assert!(norm(&long)[0].chars().count() <= 1025);
    }
}
