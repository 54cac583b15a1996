//! Lifting the time-travel clauses out of the SQL text before sqlparser parses it.
//!
//! sqlparser parses neither the documented `AS OF TIMESTAMP n` nor SQL:2011's
//! `FOR SYSTEM_TIME BETWEEN / FROM … TO / ALL`. This pass walks sqlparser's own tokens (never
//! the raw string), removes each clause, and remembers what it applies to:
//!
//! ```text
//! FROM users u AS OF TIMESTAMP 1635724800 …      → table `users` only (it follows a table)
//! FROM users JOIN orders ON a = b AS OF TIMESTAMP 5 WHERE …
//!                                                → every table of that FROM list (it follows
//!                                                  the join condition, not a table)
//! FROM accounts FOR SYSTEM_TIME BETWEEN x AND y  → table `accounts`, one row per version
//! ```
//!
//! The remaining tokens keep their original positions, so the parser's error messages and
//! the AST's spans point into the text the user wrote, and a clause finds its table again by
//! the position of the table name's first token (or of the first token after `FROM`).
//! Every `?` placeholder is renumbered `$1`, `$2`… in textual order, so parameters keep
//! their numbers whether or not they sit inside a lifted clause.

use sqlparser::dialect::Dialect;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use crate::error::{Error, Result};

/// A literal in a time-travel clause, as written.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeLiteral {
    /// A number of Unix seconds, possibly fractional (`1635724800`, `1635724800.25`).
    Number(String),
    /// An ISO-8601 string, or a number in quotes.
    Text(String),
    /// A parameter, 1-based.
    Param(usize),
    /// Any other expression of no columns, evaluated when the statement is planned:
    /// relative times such as `now() - INTERVAL '1 hour'`.
    Expr(Box<crate::ast::Expr>),
}

/// What a clause selects.
#[derive(Debug, Clone, PartialEq)]
pub enum TimeSpec {
    /// The state at one instant.
    AsOf(TimeLiteral),
    /// Every version alive at some instant in `[a, b]`.
    Between(TimeLiteral, TimeLiteral),
    /// Every version alive at some instant in `[a, b)`.
    FromTo(TimeLiteral, TimeLiteral),
    /// Every version.
    All,
}

/// What a clause applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The table whose name starts at this position.
    Table(Location),
    /// Every table of the FROM list whose first token is at this position.
    FromList(Location),
}

/// A lifted clause.
#[derive(Debug, Clone, PartialEq)]
pub struct TimeClause {
    /// What it applies to.
    pub target: Target,
    /// What it selects.
    pub spec: TimeSpec,
}

/// The tokens left for the parser, and the clauses taken out.
#[derive(Debug)]
pub struct Lifted {
    /// Tokens for `Parser::with_tokens_with_locations`.
    pub tokens: Vec<TokenWithSpan>,
    /// The time-travel clauses.
    pub clauses: Vec<TimeClause>,
    /// The number of parameters (`?`, `$n`) seen.
    pub param_count: usize,
}

/// Whether `t` is the unquoted word `upper` (given in upper case), in any case; allocates
/// nothing (what the passes over every token ask).
pub(crate) fn is_word(t: &Token, upper: &str) -> bool {
    matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(upper))
}

fn is_ident(t: &Token) -> bool {
    matches!(t, Token::Word(_))
}

/// The tokens of `sql` with their positions, whitespace and comments left out.
pub fn tokenize(dialect: &dyn Dialect, sql: &str) -> Result<Vec<TokenWithSpan>> {
    let mut tokens = Tokenizer::new(dialect, sql)
        .tokenize_with_location()
        .map_err(|e| Error::Syntax(e.to_string()))?;
    tokens.retain(|t| !matches!(t.token, Token::Whitespace(_)));
    Ok(tokens)
}

/// Tokenizes `sql` and lifts its time-travel clauses.
pub fn lift(dialect: &dyn Dialect, sql: &str) -> Result<Lifted> {
    let mut tokens = tokenize(dialect, sql)?;
    let mut next_param = 0usize;
    let mut max_param = 0usize;
    for t in &mut tokens {
        if let Token::Placeholder(p) = &t.token {
            let n = if p == "?" {
                next_param += 1;
                next_param
            } else if let Some(n) = p.strip_prefix('$').and_then(|d| d.parse::<usize>().ok()) {
                n
            } else if let Some(n) = p.strip_prefix('?').and_then(|d| d.parse::<usize>().ok()) {
                n
            } else {
                return Err(Error::Syntax(format!("unsupported parameter {p}")));
            };
            if n == 0 {
                return Err(Error::Syntax("parameters are numbered from 1".into()));
            }
            max_param = max_param.max(n);
            t.token = Token::Placeholder(format!("${n}"));
        }
    }

    // Lifting in place: the kept tokens move down to `tokens[..kept]` (what the statement
    // is without its clauses so far), no token is copied.
    let mut kept = 0;
    let mut clauses = Vec::new();
    // Per parenthesis depth: where the FROM list at that depth starts.
    let mut from_starts: Vec<Option<Location>> = vec![None];
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i].token;
        match t {
            Token::LParen => from_starts.push(None),
            Token::RParen if from_starts.len() > 1 => {
                from_starts.pop();
            }
            Token::SemiColon => from_starts = vec![None],
            _ => {}
        }
        if let Some((spec, len)) = clause_at(&tokens, i)? {
            let target = target_of(&tokens[..kept])
                .map(Target::Table)
                .or_else(|| from_starts.last().copied().flatten().map(Target::FromList));
            let Some(target) = target else {
                return Err(Error::Syntax(format!(
                    "a time-travel clause must follow a table or a FROM list (at {})",
                    tokens[i].span.start
                )));
            };
            clauses.push(TimeClause { target, spec });
            i += len;
            continue;
        }
        if is_word(t, "FROM")
            && let Some(next) = tokens.get(i + 1)
            && let Some(slot) = from_starts.last_mut()
        {
            *slot = Some(next.span.start);
        }
        tokens.swap(kept, i);
        kept += 1;
        i += 1;
    }
    tokens.truncate(kept);
    Ok(Lifted {
        tokens,
        clauses,
        param_count: max_param,
    })
}

/// If a time-travel clause starts at `i`, returns it and its length in tokens.
fn clause_at(tokens: &[TokenWithSpan], i: usize) -> Result<Option<(TimeSpec, usize)>> {
    let is = |k: usize, s: &str| tokens.get(i + k).is_some_and(|t| is_word(&t.token, s));
    if is(0, "AS") && is(1, "OF") && is(2, "TIMESTAMP") {
        let (lit, n) = time_at(tokens, i + 2, None)?;
        return Ok(Some((TimeSpec::AsOf(lit), 2 + n)));
    }
    if !(is(0, "FOR") && is(1, "SYSTEM_TIME")) {
        return Ok(None);
    }
    let mut k = 2;
    let spec = if is(k, "AS") && is(k + 1, "OF") {
        k += 2;
        let (lit, n) = time_at(tokens, i + k, None)?;
        k += n;
        TimeSpec::AsOf(lit)
    } else if is(k, "BETWEEN") || is(k, "FROM") {
        let between = is(k, "BETWEEN");
        k += 1;
        let (a, n) = time_at(tokens, i + k, Some(if between { "AND" } else { "TO" }))?;
        k += n;
        let sep = if between { "AND" } else { "TO" };
        if !is(k, sep) {
            return Err(Error::Syntax(format!(
                "expected {sep} in FOR SYSTEM_TIME {} … {sep} … (at {})",
                if between { "BETWEEN" } else { "FROM" },
                tokens
                    .get(i + k)
                    .map(|t| t.span.start.to_string())
                    .unwrap_or_else(|| "end".into())
            )));
        }
        k += 1;
        let (b, n) = time_at(tokens, i + k, None)?;
        k += n;
        if between {
            TimeSpec::Between(a, b)
        } else {
            TimeSpec::FromTo(a, b)
        }
    } else if is(k, "ALL") {
        k += 1;
        TimeSpec::All
    } else {
        return Err(Error::Syntax(format!(
            "expected AS OF, BETWEEN, FROM or ALL after FOR SYSTEM_TIME (at {})",
            tokens[i].span.start
        )));
    };
    Ok(Some((spec, k)))
}

/// The time of a clause at `i`: a literal (see [`literal`]) when the clause ends after it,
/// else an expression (`now() - INTERVAL '1 hour'`), read by sqlparser from the tokens at
/// `i` for as long as they continue it — up to the word `stop` outside parentheses, when
/// given (a `BETWEEN`'s `AND`, a `FROM`'s `TO`).
fn time_at(tokens: &[TokenWithSpan], i: usize, stop: Option<&str>) -> Result<(TimeLiteral, usize)> {
    let ends = |t: Option<&TokenWithSpan>| {
        matches!(
            t.map(|t| &t.token),
            None | Some(
                Token::EOF | Token::Comma | Token::RParen | Token::SemiColon | Token::Word(_)
            )
        )
    };
    if let Ok((lit, n)) = literal(tokens, i)
        && ends(tokens.get(i + n))
    {
        return Ok((lit, n));
    }
    // `TIMESTAMP` before an expression that is not a string is only a word of the clause.
    let skip = usize::from(
        tokens
            .get(i)
            .is_some_and(|t| is_word(&t.token, "TIMESTAMP"))
            && !matches!(
                tokens.get(i + 1).map(|t| &t.token),
                Some(Token::SingleQuotedString(_))
            ),
    );
    let start = i + skip;
    let mut end = tokens.len();
    if let Some(word) = stop {
        let mut depth = 0usize;
        for (k, t) in tokens.iter().enumerate().skip(start) {
            match &t.token {
                Token::LParen => depth += 1,
                Token::RParen => depth = depth.saturating_sub(1),
                w if depth == 0 && is_word(w, word) => {
                    end = k;
                    break;
                }
                _ => {}
            }
        }
    }
    let dialect = sqlparser::dialect::GenericDialect {};
    let mut parser = sqlparser::parser::Parser::new(&dialect)
        .with_recursion_limit(64)
        .with_tokens_with_locations(tokens[start..end].to_vec());
    let e = parser.parse_expr().map_err(|e| {
        Error::Syntax(format!(
            "expected a time (Unix seconds, an ISO-8601 string, a parameter or an expression \
             such as now() - INTERVAL '1 hour') at {}: {}",
            tokens
                .get(i)
                .map(|t| t.span.start.to_string())
                .unwrap_or_else(|| "the end".into()),
            e.to_string().trim_start_matches("sql parser error: ")
        ))
    })?;
    let n = parser.index();
    let expr = super::translate::Translator { clauses: &[] }.expr(&e)?;
    Ok((TimeLiteral::Expr(Box::new(expr)), skip + n))
}

/// A time literal at `i`: `[TIMESTAMP] (number | -number | 'text' | $n)`.
pub(crate) fn literal(tokens: &[TokenWithSpan], mut i: usize) -> Result<(TimeLiteral, usize)> {
    let start = i;
    if tokens
        .get(i)
        .is_some_and(|t| is_word(&t.token, "TIMESTAMP"))
    {
        i += 1;
    }
    let negative = matches!(tokens.get(i).map(|t| &t.token), Some(Token::Minus));
    if negative {
        i += 1;
    }
    let lit = match tokens.get(i).map(|t| &t.token) {
        Some(Token::Number(n, _)) => {
            TimeLiteral::Number(if negative { format!("-{n}") } else { n.clone() })
        }
        Some(Token::SingleQuotedString(s)) if !negative => TimeLiteral::Text(s.clone()),
        Some(Token::Placeholder(p)) if !negative => {
            TimeLiteral::Param(p.trim_start_matches('$').parse().unwrap_or(0))
        }
        _ => {
            return Err(Error::Syntax(format!(
                "expected a timestamp (Unix seconds, an ISO-8601 string or a parameter) at {}",
                tokens
                    .get(i)
                    .map(|t| t.span.start.to_string())
                    .unwrap_or_else(|| "the end".into())
            )));
        }
    };
    Ok((lit, i + 1 - start))
}

/// If the tokens before a clause end with `FROM|JOIN|, name[.name…] [[AS] alias]`, the
/// position of the table name.
fn target_of(before: &[TokenWithSpan]) -> Option<Location> {
    let name_start = |end: usize| -> Option<usize> {
        // `end` is the index of the last token of a dotted name.
        let mut s = end;
        if !is_ident(&before.get(s)?.token) {
            return None;
        }
        while s >= 2
            && matches!(before[s - 1].token, Token::Period)
            && is_ident(&before[s - 2].token)
        {
            s -= 2;
        }
        let prev = before.get(s.checked_sub(1)?)?;
        let opens = matches!(prev.token, Token::Comma)
            || is_word(&prev.token, "FROM")
            || is_word(&prev.token, "JOIN");
        opens.then_some(s)
    };
    let last = before.len().checked_sub(1)?;
    if let Some(s) = name_start(last) {
        return Some(before[s].span.start);
    }
    // With an alias: skip it (and an AS before it).
    let mut end = last.checked_sub(1)?;
    if is_word(&before[end].token, "AS") {
        end = end.checked_sub(1)?;
    }
    name_start(end).map(|s| before[s].span.start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::GenericDialect;

    fn lifted(sql: &str) -> Lifted {
        lift(&GenericDialect {}, sql).unwrap()
    }

    #[test]
    fn as_of_after_a_table_targets_that_table() {
        let l = lifted("SELECT * FROM users AS OF TIMESTAMP 1635724800 WHERE name = 'Alice'");
        assert_eq!(l.clauses.len(), 1);
        assert!(matches!(l.clauses[0].target, Target::Table(loc) if loc.column == 15));
        assert_eq!(
            l.clauses[0].spec,
            TimeSpec::AsOf(TimeLiteral::Number("1635724800".into()))
        );
        assert!(!l.tokens.iter().any(|t| is_word(&t.token, "TIMESTAMP")));
    }

    #[test]
    fn as_of_after_a_join_condition_targets_the_from_list() {
        let l = lifted(
            "SELECT users.name FROM users JOIN orders ON users.id = orders.user_id \
             AS OF TIMESTAMP 1635724800 WHERE users.created_at < 1633000000",
        );
        assert!(matches!(l.clauses[0].target, Target::FromList(loc) if loc.column == 24));
    }

    #[test]
    fn aliases_and_system_time_ranges() {
        let l = lifted(
            "SELECT * FROM t AS x FOR SYSTEM_TIME BETWEEN 1 AND '2021-01-01', u FOR SYSTEM_TIME ALL",
        );
        assert_eq!(l.clauses.len(), 2);
        assert!(matches!(l.clauses[0].target, Target::Table(loc) if loc.column == 15));
        assert_eq!(
            l.clauses[0].spec,
            TimeSpec::Between(
                TimeLiteral::Number("1".into()),
                TimeLiteral::Text("2021-01-01".into())
            )
        );
        assert_eq!(l.clauses[1].spec, TimeSpec::All);
    }

    #[test]
    fn placeholders_are_numbered_in_text_order() {
        let l = lifted("SELECT * FROM t AS OF TIMESTAMP ? WHERE a = ?");
        assert_eq!(l.clauses[0].spec, TimeSpec::AsOf(TimeLiteral::Param(1)));
        assert_eq!(l.param_count, 2);
        assert!(
            l.tokens
                .iter()
                .any(|t| t.token == Token::Placeholder("$2".into()))
        );
    }

    #[test]
    fn a_clause_with_nothing_before_it_is_an_error() {
        assert!(lift(&GenericDialect {}, "AS OF TIMESTAMP 5").is_err());
        assert!(
            lift(
                &GenericDialect {},
                "SELECT * FROM t FOR SYSTEM_TIME SOMETIME"
            )
            .is_err()
        );
    }
}
