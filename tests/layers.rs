//! The module map of docs/design.md, checked: no import cycle between the crate's
//! top-level modules (issue #14). A module "imports" another when its files name
//! `crate::<other>` anywhere (code, paths in doc comments): stricter than the compiler.

#![allow(clippy::expect_used, clippy::indexing_slicing)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Top-level module -> the top-level modules its files name.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for e in std::fs::read_dir(&src).expect("src").flatten() {
        let p = e.path();
        let name = p
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string();
        if name == "lib" || name == "main" {
            continue;
        }
        let list = files.entry(name).or_default();
        if p.is_dir() {
            rust_files(&p, list);
        } else if p.extension().is_some_and(|x| x == "rs") {
            list.push(p);
        }
    }
    let mut graph = BTreeMap::new();
    for (module, paths) in &files {
        let mut names = BTreeSet::new();
        for path in paths {
            let text = std::fs::read_to_string(path).expect("read");
            for (at, _) in text.match_indices("crate::") {
                let rest = &text[at + "crate::".len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                let other = &rest[..end];
                if other != module && files.contains_key(other) {
                    names.insert(other.to_string());
                }
            }
        }
        graph.insert(module.clone(), names);
    }
    graph
}

fn reaches(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_string()];
    while let Some(m) = todo.pop() {
        for next in graph.get(&m).into_iter().flatten() {
            if seen.insert(next.clone()) {
                todo.push(next.clone());
            }
        }
    }
    seen
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let graph = imports();
    assert!(graph.len() > 20, "modules found: {graph:?}");
    let mut cycles = Vec::new();
    for a in graph.keys() {
        for b in reaches(&graph, a) {
            if a < &b && reaches(&graph, &b).contains(a) {
                cycles.push(format!("{a} <-> {b}"));
            }
        }
    }
    assert!(
        cycles.is_empty(),
        "import cycles (docs/design.md, the map): {cycles:?}"
    );
}

#[test]
fn the_leaves_import_nothing_of_ours() {
    let graph = imports();
    for leaf in [
        "contracts",
        "util",
        "mime",
        "cidr",
        "memory",
        "metrics",
        "shutdown",
    ] {
        assert_eq!(graph.get(leaf), Some(&BTreeSet::new()), "{leaf}");
    }
    // The connection layer knows no protocol.
    let net = graph.get("net").expect("net");
    for protocol in ["imap", "pop3", "lmtp", "managesieve", "http", "server"] {
        assert!(!net.contains(protocol), "net imports {protocol}");
    }
}
