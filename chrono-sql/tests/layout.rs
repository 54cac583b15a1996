//! The pipeline's boundaries, checked on the source: sqlparser's types stop at translation
//! (`src/parse/`), so the planner, optimizer and executor read only ChronoDB's own AST.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn only_parse_imports_sqlparser() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 20, "found the sources");
    let mut offenders = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&src).expect("under src");
        if rel.starts_with("parse") {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("read source");
        let uses = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .any(|l| l.contains("sqlparser::"));
        if uses {
            offenders.push(rel.display().to_string());
        }
    }
    assert!(
        offenders.is_empty(),
        "sqlparser used outside src/parse/: {offenders:?}"
    );
}
