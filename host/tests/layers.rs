//! The host's layering, enforced: every top-level module of `host/src` is placed in the
//! ```layers``` block of `docs/architecture.md`, and a module may import (`crate::…`) only the
//! modules listed after it there. The order is total, so no two modules can import each other
//! and no module imports one above it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The modules in the order `docs/architecture.md` lists them, top first, with their layer.
fn order(doc: &str) -> Vec<(String, String)> {
    let block = doc.split("```layers\n").nth(1).and_then(|rest| rest.split("```").next()).expect("docs/architecture.md has a ```layers block");
    let mut out = Vec::new();
    for line in block.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (layer, modules) = line.split_once(':').unwrap_or_else(|| panic!("a layers line is `layer: module module ...`, not {line:?}"));
        out.extend(modules.split_whitespace().map(|m| (m.to_owned(), layer.trim().to_owned())));
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read host/src") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The names after each `crate::` in the code (not in comments).
fn imports(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or_default();
        for part in code.split("crate::").skip(1) {
            let name: String = part.chars().take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_').collect();
            if !name.is_empty() {
                out.push((n + 1, name));
            }
        }
    }
    out
}

#[test]
fn no_module_imports_one_above_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("../docs/architecture.md")).expect("read docs/architecture.md");
    let order = order(&doc);
    let rank: HashMap<&str, usize> = order.iter().enumerate().map(|(i, (m, _))| (m.as_str(), i)).collect();
    let layer: HashMap<&str, &str> = order.iter().map(|(m, l)| (m.as_str(), l.as_str())).collect();
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut problems = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src").to_string_lossy().into_owned();
        let module = rel.split('/').next().unwrap_or_default().trim_end_matches(".rs").to_owned();
        if module == "lib" || module == "main" {
            continue;
        }
        let Some(&own) = rank.get(module.as_str()) else {
            problems.push(format!("host/src/{rel}: module `{module}` is not placed in the layers of docs/architecture.md"));
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for (line, target) in imports(&text) {
            if target == module {
                continue;
            }
            match rank.get(target.as_str()) {
                Some(&theirs) if theirs > own => {}
                Some(_) => problems.push(format!(
                    "host/src/{rel}:{line}: `{module}` ({}) imports `{target}` ({}), which is listed before it",
                    layer[module.as_str()],
                    layer[target.as_str()]
                )),
                None => problems.push(format!("host/src/{rel}:{line}: `{target}` is not placed in the layers of docs/architecture.md")),
            }
        }
    }
    assert!(problems.is_empty(), "imports against the layering:\n{}", problems.join("\n"));
}

#[test]
fn the_check_sees_an_upward_import() {
    let order = order("```layers\nhttp: transport\nmcp: mcp\n```\n");
    assert_eq!(order, [("transport".to_owned(), "http".to_owned()), ("mcp".to_owned(), "mcp".to_owned())]);
    let found = imports("use crate::transport::respond; // crate::ignored\n/// [`crate::docs`]\nlet x = crate::mcp::headers::get(h);");
    assert_eq!(found, [(1, "transport".to_owned()), (3, "mcp".to_owned())]);
}
