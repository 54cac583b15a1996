//! Lets the `chronodb` binary (and this package's tests) find libtorch where it was built
//! against: an rpath to `$LIBTORCH/lib` (the libtorch folder that `scripts/libtorch.sh`
//! makes and `scripts/env.sh` points `LIBTORCH` at). A binary copied elsewhere on the same
//! machine then starts with no environment variables set.
//!
//! Also puts the GraphQL console's files (GraphiQL and React, fetched by
//! `scripts/graphiql.sh` into `$GRAPHIQL_DIR`) where the server compiles them in, and sets
//! `cfg(graphiql)` when they are there; without them the server says the console is not
//! built in.

const CONSOLE_FILES: [&str; 4] = [
    "graphiql.min.js",
    "graphiql.min.css",
    "react.production.min.js",
    "react-dom.production.min.js",
];

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(libtorch) = std::env::var("LIBTORCH")
        && !libtorch.is_empty()
    {
        let lib = std::path::Path::new(&libtorch).join("lib");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }

    println!("cargo::rustc-check-cfg=cfg(graphiql)");
    println!("cargo:rerun-if-env-changed=GRAPHIQL_DIR");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let source = std::env::var("GRAPHIQL_DIR")
        .ok()
        .map(std::path::PathBuf::from);
    let present = source
        .as_ref()
        .is_some_and(|dir| CONSOLE_FILES.iter().all(|f| dir.join(f).is_file()));
    for f in CONSOLE_FILES {
        let target = out.join(f);
        match (&source, present) {
            (Some(dir), true) => {
                println!("cargo:rerun-if-changed={}", dir.join(f).display());
                std::fs::copy(dir.join(f), &target).expect("copy a console file");
            }
            _ => std::fs::write(&target, b"").expect("write a placeholder"),
        }
    }
    if present {
        println!("cargo:rustc-cfg=graphiql");
    }
}
