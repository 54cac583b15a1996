//! GraphQL requests bounded by construction: every request is measured before anything
//! recurses over it, and every answer is counted while it is built.
//!
//! Before parsing (the parser recurses on nested values and selections), the query text is
//! checked without recursion: its size (`server.graphql_max_query_bytes`) and how deeply
//! its brackets nest — lists, input objects, arguments and selection sets alike
//! (`server.graphql_max_nesting`). After parsing, the selections are counted as execution
//! would see them, every fragment spread expanded (each fragment counted once and
//! remembered, so a fragment bomb costs its size, not its expansion):
//! `server.graphql_max_selections` bounds aliases, repeated fields and fragments together.
//! While the answer is built, each list or object resolver charges the values it will
//! produce (rows × selected fields) to the request's budget
//! (`server.graphql_max_result_values`), so nested relations cannot multiply an answer
//! past it. Each refusal is a GraphQL error naming its key, with `extensions.kind` =
//! `ResourceExhausted`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ErrorExtensions, Name, Positioned, ServerError, ServerResult, Variables};

/// The limits of one GraphQL request (from `server.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphQlLimits {
    /// `server.graphql_max_query_bytes`: the query text.
    pub max_query_bytes: usize,
    /// `server.graphql_max_nesting`: brackets (`[`, `{`, `(`) open at once in the text.
    pub max_nesting: usize,
    /// `server.graphql_max_selections`: fields selected, fragments expanded.
    pub max_selections: usize,
    /// `server.graphql_max_result_values`: values in one answer.
    pub max_result_values: usize,
}

fn exhausted(message: String) -> ServerError {
    let mut e = ServerError::new(message, None);
    let mut ext = async_graphql::ErrorExtensionValues::default();
    ext.set("kind", "ResourceExhausted");
    e.extensions = Some(ext);
    e
}

/// How deeply the brackets of a GraphQL text nest, outside strings and comments; stops
/// counting (and returns) as soon as `stop_above` is passed. No recursion.
pub fn nesting(text: &str, stop_above: usize) -> usize {
    let bytes = text.as_bytes();
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                // A block string: ends at the next """ not escaped as \""".
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'[' | b'{' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > stop_above {
                    return deepest;
                }
            }
            b']' | b'}' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    deepest
}

/// The selections of a document's operations with every fragment spread expanded,
/// counted up to just past `stop_above`. Each fragment's count is worked out once; a
/// fragment that spreads itself (refused later by validation) counts as empty.
pub fn selections(doc: &ExecutableDocument, stop_above: usize) -> usize {
    struct Counter<'a> {
        doc: &'a ExecutableDocument,
        fragments: HashMap<&'a Name, Option<usize>>,
        stop_above: usize,
    }
    impl<'a> Counter<'a> {
        fn set(&mut self, set: &'a Positioned<SelectionSet>) -> usize {
            let mut n = 0usize;
            for item in &set.node.items {
                n = n.saturating_add(match &item.node {
                    Selection::Field(f) => 1usize.saturating_add(self.set(&f.node.selection_set)),
                    Selection::InlineFragment(f) => self.set(&f.node.selection_set),
                    Selection::FragmentSpread(s) => self.fragment(&s.node.fragment_name.node),
                });
                if n > self.stop_above {
                    break;
                }
            }
            n
        }
        fn fragment(&mut self, name: &'a Name) -> usize {
            match self.fragments.get(name) {
                Some(Some(n)) => return *n,
                Some(None) => return 0, // a cycle
                None => {}
            }
            let Some(def) = self.doc.fragments.get(name) else {
                return 0;
            };
            self.fragments.insert(name, None);
            let n = self.set(&def.node.selection_set);
            self.fragments.insert(name, Some(n));
            n
        }
    }
    let mut counter = Counter {
        doc,
        fragments: HashMap::new(),
        stop_above,
    };
    let mut total = 0usize;
    for (_, op) in doc.operations.iter() {
        total = total.saturating_add(counter.set(&op.node.selection_set));
        if total > stop_above {
            break;
        }
    }
    total
}

/// The answer's budget of values, shared by the resolvers of one request.
#[derive(Debug)]
pub struct ResultBudget {
    left: AtomicUsize,
    max: usize,
}

impl ResultBudget {
    /// A budget of `max` values.
    pub fn new(max: usize) -> Self {
        Self {
            left: AtomicUsize::new(max),
            max,
        }
    }

    /// Takes `values` from the budget, or refuses when fewer are left.
    pub fn charge(&self, values: usize) -> async_graphql::Result<()> {
        let taken = self
            .left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(values)
            });
        match taken {
            Ok(_) => Ok(()),
            Err(_) => Err(async_graphql::Error::new(format!(
                "the answer would hold more than {} values (limit: server.graphql_max_result_values); \
                 ask for fewer rows (limit) or fields",
                self.max
            ))
            .extend_with(|_, e| e.set("kind", "ResourceExhausted"))),
        }
    }
}

/// Charges the values of `rows` rows with the fields the resolver's caller selected.
pub fn charge_rows(ctx: &async_graphql::Context<'_>, rows: usize) -> async_graphql::Result<()> {
    let fields = ctx.field().selection_set().count().max(1);
    match ctx.data_opt::<Arc<ResultBudget>>() {
        Some(budget) => budget.charge(rows.saturating_mul(fields)),
        None => Ok(()),
    }
}

/// The extension that enforces [`GraphQlLimits`] on every request (HTTP and WebSocket).
pub struct Guard(pub GraphQlLimits);

struct GuardOfRequest(GraphQlLimits);

impl ExtensionFactory for Guard {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(GuardOfRequest(self.0))
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for GuardOfRequest {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: async_graphql::Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<async_graphql::Request> {
        let budget = Arc::new(ResultBudget::new(self.0.max_result_values));
        next.run(ctx, request.data(budget)).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let limits = &self.0;
        if query.len() > limits.max_query_bytes {
            return Err(exhausted(format!(
                "the query has {} bytes, more than {} (limit: server.graphql_max_query_bytes)",
                query.len(),
                limits.max_query_bytes
            )));
        }
        if nesting(query, limits.max_nesting) > limits.max_nesting {
            return Err(exhausted(format!(
                "the query nests brackets more than {} deep (limit: server.graphql_max_nesting)",
                limits.max_nesting
            )));
        }
        // Counted on a parse of our own before async-graphql's own checks run: its depth
        // check walks every fragment spread expanded, so a fragment bomb must never reach it.
        let doc = async_graphql::parser::parse_query(query)?;
        if selections(&doc, limits.max_selections) > limits.max_selections {
            return Err(exhausted(format!(
                "the query selects more than {} fields with its fragments expanded \
                 (limit: server.graphql_max_selections)",
                limits.max_selections
            )));
        }
        next.run(ctx, query, variables).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings_and_comments() {
        assert_eq!(nesting("{ a }", 100), 1);
        assert_eq!(nesting("{ a(x: [[1]]) { b } }", 100), 4);
        assert_eq!(nesting("{ a(x: \"[[[[\") }", 100), 2);
        assert_eq!(nesting("{ a(x: \"\\\"[[[\") }", 100), 2);
        assert_eq!(nesting("# [[[[[\n{ a }", 100), 1);
        assert_eq!(nesting("{ a(x: \"\"\"[[[\\\"\"\"[[\"\"\") }", 100), 2);
        let deep = format!(
            "{{ a(x: {}1{}) }}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert_eq!(nesting(&deep, 64), 65, "stops just past the limit");
    }

    #[test]
    fn fragments_are_counted_expanded_but_worked_out_once() {
        // Nine levels of ten spreads each: 10^9 fields expanded.
        let mut q = String::from("query { ...F0 }\n");
        for level in 0..9 {
            q += &format!("fragment F{level} on Query {{ ");
            for _ in 0..10 {
                q += &format!("...F{} ", level + 1);
            }
            q += "}\n";
        }
        q += "fragment F9 on Query { a }\n";
        let doc = async_graphql::parser::parse_query(&q).unwrap();
        // Counting the whole 10^9 fields finishes only because each fragment is counted once.
        assert!(selections(&doc, 1000) > 1000);
        assert!(selections(&doc, usize::MAX) >= 1_000_000_000);
        let aliases = format!(
            "{{ {} }}",
            (0..50)
                .map(|i| format!("a{i}: x"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        let doc = async_graphql::parser::parse_query(&aliases).unwrap();
        assert_eq!(selections(&doc, 1000), 50);
        let cyclic = "query { ...A } fragment A on Query { x ...B } fragment B on Query { y ...A }";
        let doc = async_graphql::parser::parse_query(cyclic).unwrap();
        assert!(selections(&doc, 1000) < 10);
    }

    #[test]
    fn the_budget_refuses_past_its_size() {
        let b = ResultBudget::new(10);
        assert!(b.charge(6).is_ok());
        assert!(b.charge(4).is_ok());
        let e = b.charge(1).unwrap_err();
        assert!(e.message.contains("server.graphql_max_result_values"));
    }
}
