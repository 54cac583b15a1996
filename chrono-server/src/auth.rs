//! Who is calling: the one check of credentials for every interface — every gRPC method
//! (unary and streaming alike, through one interceptor), every HTTP route, GraphQL over
//! HTTP and over its WebSocket, and the WebSocket change monitor.
//!
//! With `server.auth_tokens` empty every call is anonymous and allowed (the server then
//! listens on loopback unless told otherwise; see `Config::open_to_the_network`). With
//! tokens, a call carries exactly one `Authorization: Bearer <token>` header (the scheme's
//! case does not matter, as RFC 7235 says; one space or more after it), or — only where a
//! browser cannot set headers, on a WebSocket upgrade — a `?token=<token>` query parameter.
//! Anything else is refused: no credential, two `Authorization` headers, a header and a
//! query token that disagree, another scheme, a token without its scheme, a token with
//! spaces or control characters in it, or an unknown token. Tokens are compared in constant
//! time ([`crate::config::match_token`]); the principal is the token's name in the config,
//! and the audit trail records it for every write.

use std::collections::HashMap;

/// Why a call's credentials were refused. The message says what to send, never which part
/// of a token was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization` header (and no query token where one is allowed).
    #[error("missing credentials: send Authorization: Bearer <token>")]
    Missing,
    /// A header or token in a form this server does not take.
    #[error("malformed credentials ({0}): send Authorization: Bearer <token>")]
    Malformed(&'static str),
    /// A well-formed token that is not one of `server.auth_tokens`.
    #[error("unknown token")]
    Unknown,
}

/// The server's tokens, by principal name; checks credentials.
#[derive(Debug, Clone, Default)]
pub struct Authenticator {
    tokens: HashMap<String, String>,
}

/// The credentials one call presents: the values of its `Authorization` headers (raw
/// bytes, as received) and, where the interface allows it, its `?token=` parameter.
#[derive(Debug, Default, Clone, Copy)]
pub struct Presented<'a> {
    /// Every `Authorization` header (or gRPC metadata entry) of the call.
    pub authorization: &'a [&'a [u8]],
    /// The `token` query parameter, for WebSocket upgrades only.
    pub query_token: Option<&'a str>,
}

impl Authenticator {
    /// An authenticator for these tokens (principal name → token); none: everyone allowed.
    pub fn new(tokens: HashMap<String, String>) -> Self {
        Self { tokens }
    }

    /// True when calls need a token.
    pub fn required(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The caller's principal: `Ok(None)` when no tokens are configured, `Ok(Some(name))`
    /// for a known token, an error otherwise.
    pub fn check(&self, presented: Presented<'_>) -> Result<Option<String>, AuthError> {
        if self.tokens.is_empty() {
            return Ok(None);
        }
        let header = match presented.authorization {
            [] => None,
            [one] => Some(bearer(one)?),
            _ => return Err(AuthError::Malformed("more than one Authorization header")),
        };
        let query = match presented.query_token {
            None => None,
            Some(t) => Some(token_chars(t)?),
        };
        let token = match (header, query) {
            (None, None) => return Err(AuthError::Missing),
            (Some(h), Some(q)) if h != q => {
                return Err(AuthError::Malformed(
                    "a header token and a query token that differ",
                ));
            }
            (Some(t), _) | (None, Some(t)) => t,
        };
        crate::config::match_token(&self.tokens, token)
            .map(Some)
            .ok_or(AuthError::Unknown)
    }

    /// [`Self::check`] on HTTP headers and, where given, a `?token=` parameter.
    pub fn check_headers(
        &self,
        headers: &axum::http::HeaderMap,
        query_token: Option<&str>,
    ) -> Result<Option<String>, AuthError> {
        let values: Vec<&[u8]> = headers
            .get_all(axum::http::header::AUTHORIZATION)
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        self.check(Presented {
            authorization: &values,
            query_token,
        })
    }
}

/// The token of an `Authorization: Bearer <token>` value.
fn bearer(value: &[u8]) -> Result<&str, AuthError> {
    let value = std::str::from_utf8(value).map_err(|_| AuthError::Malformed("not UTF-8 text"))?;
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Err(AuthError::Malformed("no Bearer scheme"));
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed("not the Bearer scheme"));
    }
    token_chars(rest.trim_start_matches(' '))
}

/// A token as given: printable ASCII without spaces, at most 4 KiB.
fn token_chars(token: &str) -> Result<&str, AuthError> {
    if token.is_empty() {
        return Err(AuthError::Malformed("an empty token"));
    }
    if token.len() > 4096 {
        return Err(AuthError::Malformed("a token longer than 4096 bytes"));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(AuthError::Malformed(
            "a token with spaces or control characters",
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "0123456789abcdef0123";

    fn auth() -> Authenticator {
        Authenticator::new(HashMap::from([("alice".to_string(), GOOD.to_string())]))
    }

    fn check(headers: &[&str], query: Option<&str>) -> Result<Option<String>, AuthError> {
        let values: Vec<&[u8]> = headers.iter().map(|h| h.as_bytes()).collect();
        auth().check(Presented {
            authorization: &values,
            query_token: query,
        })
    }

    #[test]
    fn the_forms_of_a_good_token_that_are_taken() {
        let alice = Ok(Some("alice".to_string()));
        for header in [
            format!("Bearer {GOOD}"),
            format!("bearer {GOOD}"),
            format!("BEARER  {GOOD}"),
        ] {
            assert_eq!(check(&[&header], None), alice, "{header}");
        }
        assert_eq!(check(&[], Some(GOOD)), alice);
        assert_eq!(check(&[&format!("Bearer {GOOD}")], Some(GOOD)), alice);
    }

    #[test]
    fn every_other_form_is_refused() {
        let long = "x".repeat(5000);
        let refused: Vec<(Vec<String>, Option<&str>)> = vec![
            (vec![], None),
            (vec![GOOD.to_string()], None),
            (vec![format!("Basic {GOOD}")], None),
            (vec![format!("Bearer{GOOD}")], None),
            (vec!["Bearer ".to_string()], None),
            (vec!["Bearer".to_string()], None),
            (vec![format!("Bearer {GOOD} ")], None),
            (vec![format!("Bearer {GOOD}x")], None),
            (vec![format!("Bearer {}", &GOOD[1..])], None),
            (vec![format!("Bearer {GOOD}\t")], None),
            (vec![format!("Bearer {GOOD} {GOOD}")], None),
            (vec![format!("Bearer {long}")], None),
            (
                vec![format!("Bearer {GOOD}"), format!("Bearer {GOOD}")],
                None,
            ),
            (vec![format!("Bearer {GOOD}")], Some("wrong-token-0000000")),
            (vec![], Some("")),
            (vec![], Some("wrong-token-0000000")),
            (vec![], Some(&GOOD[..10])),
        ];
        for (headers, query) in refused {
            let h: Vec<&str> = headers.iter().map(String::as_str).collect();
            assert!(
                check(&h, query).is_err(),
                "accepted {headers:?} with query {query:?}"
            );
        }
        let values: Vec<&[u8]> = vec![b"Bearer \xff\xfe"];
        assert!(
            auth()
                .check(Presented {
                    authorization: &values,
                    query_token: None
                })
                .is_err()
        );
    }

    #[test]
    fn without_tokens_everyone_is_anonymous() {
        let open = Authenticator::default();
        assert!(!open.required());
        assert_eq!(open.check(Presented::default()), Ok(None));
        let values: Vec<&[u8]> = vec![b"Bearer whatever"];
        assert_eq!(
            open.check(Presented {
                authorization: &values,
                query_token: None
            }),
            Ok(None)
        );
    }
}
