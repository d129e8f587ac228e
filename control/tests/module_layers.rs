//! The control plane's modules stay layered as the crate's top doc says: each module
//! depends only on the ones listed before it in the table in `src/lib.rs` (or its own
//! row), and no two modules or files import each other, directly or in a circle. A
//! newcomer can then read the crate from the bottom up, and a change low down cannot
//! be knotted into the handlers above it.
//!
//! Read from the source text (what `use crate::…`, `crate::…` and `super::…` paths name,
//! outside `#[cfg(test)]` modules), so it runs without building anything.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, as (module path, text).
fn files(dir: &Path, module: &[String], out: &mut Vec<(Vec<String>, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if path.is_dir() {
            let mut inner = module.to_vec();
            inner.push(name);
            files(&path, &inner, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let mut path_of = module.to_vec();
            if name != "mod" {
                path_of.push(name);
            }
            out.push((path_of, std::fs::read_to_string(&path).unwrap()));
        }
    }
}

/// The text without line comments and without `#[cfg(test)]` items (tests may reach
/// anywhere).
fn production_code(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<i32> = None;
    let mut depth = 0i32;
    let mut pending_test = false;
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        if skip_depth.is_none() && code.trim() == "#[cfg(test)]" {
            pending_test = true;
            continue;
        }
        if pending_test && skip_depth.is_none() {
            skip_depth = Some(depth);
            pending_test = false;
        }
        let opens = code.matches('{').count() as i32;
        let closes = code.matches('}').count() as i32;
        depth += opens - closes;
        match skip_depth {
            Some(at) => {
                if depth <= at && (opens > 0 || closes > 0 || code.trim_end().ends_with(';')) {
                    skip_depth = None;
                }
            }
            None => {
                out.push_str(code);
                out.push('\n');
            }
        }
    }
    out
}

/// The module paths a piece of code names after `prefix::` (expanding `{a, b::c}`).
fn named_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let needle = format!("{prefix}::");
    let mut rest = code;
    while let Some(at) = rest.find(&needle) {
        let before = rest[..at].chars().last();
        rest = &rest[at + needle.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let end = group
                .char_indices()
                .find(|&(_, c)| {
                    depth += match c {
                        '{' => 1,
                        '}' => -1,
                        _ => 0,
                    };
                    depth == 0
                })
                .map_or(group.len(), |(i, _)| i);
            let mut item = String::new();
            let mut level = 0;
            for c in group[..end].chars().chain([',']) {
                match c {
                    '{' => level += 1,
                    '}' => level -= 1,
                    ',' if level == 0 => {
                        found.push(segments(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
        } else {
            found.push(segments(rest));
        }
    }
    found.retain(|p| !p.is_empty());
    found
}

/// The leading lower-case path segments of `text` (`a::b::Type` gives `[a, b]`).
fn segments(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in text.trim().split("::") {
        let ident: String = part
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty()
            || !ident.starts_with(|c: char| c.is_ascii_lowercase())
            || ident == "self"
        {
            break;
        }
        out.push(ident);
        if ident_len(part) != part.trim_end().len() {
            break;
        }
    }
    out
}

fn ident_len(part: &str) -> usize {
    part.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .count()
}

/// The longest prefix of `path` that is a module (file) of the crate.
fn module_of(path: &[String], modules: &BTreeSet<Vec<String>>) -> Option<Vec<String>> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|p| modules.contains(p))
}

/// Module-to-module edges: every file and what it names.
fn edges() -> BTreeMap<Vec<String>, BTreeSet<Vec<String>>> {
    let mut all = Vec::new();
    files(&src(), &[], &mut all);
    all.retain(|(path, _)| path != &["lib"] && path != &["main"]);
    let modules: BTreeSet<Vec<String>> = all.iter().map(|(p, _)| p.clone()).collect();
    let mut edges = BTreeMap::new();
    for (path, text) in &all {
        let code = production_code(text);
        let mut targets = BTreeSet::new();
        for named in named_after(&code, "crate") {
            targets.extend(module_of(&named, &modules));
        }
        let parent = &path[..path.len() - 1];
        for named in named_after(&code, "super") {
            let full: Vec<String> = parent.iter().cloned().chain(named).collect();
            targets.extend(module_of(&full, &modules));
        }
        targets.remove(path);
        edges.insert(path.clone(), targets);
    }
    edges
}

/// The rows of the table in `src/lib.rs`: each row's module names, bottom layer first.
fn layers() -> Vec<Vec<String>> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| l.strip_prefix("//! | ["))
        .map(|row| {
            let first = row.split(" | ").next().unwrap();
            first
                .split(", ")
                .map(|m| {
                    m.trim_matches(|c| c == '[' || c == ']' || c == '`')
                        .to_string()
                })
                .collect()
        })
        .collect()
}

/// Strongly connected groups of more than one node (circles), by Tarjan's algorithm.
fn circles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Walk<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        found: Vec<Vec<String>>,
    }
    fn visit(w: &mut Walk<'_>, v: &str) {
        let i = w.index.len();
        w.index.insert(v.to_string(), i);
        w.low.insert(v.to_string(), i);
        w.stack.push(v.to_string());
        for next in w.graph.get(v).into_iter().flatten() {
            if !w.index.contains_key(next) {
                visit(w, next);
                let low = w.low[v].min(w.low[next]);
                w.low.insert(v.to_string(), low);
            } else if w.stack.contains(next) {
                let low = w.low[v].min(w.index[next]);
                w.low.insert(v.to_string(), low);
            }
        }
        if w.low[v] == w.index[v] {
            let mut group = Vec::new();
            while let Some(top) = w.stack.pop() {
                group.push(top.clone());
                if top == v {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                w.found.push(group);
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v) {
            visit(&mut walk, v);
        }
    }
    walk.found
}

fn graph_at(depth: usize) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in edges() {
        let key = |p: &Vec<String>| p[..p.len().min(depth)].join("::");
        let from_key = key(&from);
        let entry = graph.entry(from_key.clone()).or_default();
        entry.extend(targets.iter().map(key).filter(|t| *t != from_key));
    }
    graph
}

#[test]
fn the_parser_sees_grouped_and_nested_imports() {
    let code = "use crate::{accounts::users, db::{end_write, Db}, error::Result};\n\
                let x = crate::audit::record(a);\nuse super::jobs::Job;";
    let crate_paths = named_after(code, "crate");
    assert!(crate_paths.contains(&vec!["accounts".into(), "users".into()]));
    assert!(crate_paths.contains(&vec!["db".into()]));
    assert!(crate_paths.contains(&vec!["audit".into(), "record".into()]));
    assert_eq!(named_after(code, "super"), vec![vec!["jobs".to_string()]]);
    let text = "use crate::a;\n#[cfg(test)]\nmod tests {\n    use crate::b;\n}\nuse crate::c;\n";
    let code = production_code(text);
    assert!(code.contains("crate::a") && code.contains("crate::c") && !code.contains("crate::b"));
}

#[test]
fn every_module_depends_only_on_layers_listed_before_it() {
    let layers = layers();
    assert!(layers.len() > 5, "the table in src/lib.rs was not found");
    let rank = |module: &str| {
        layers
            .iter()
            .position(|row| row.iter().any(|m| m == module))
    };
    let mut wrong = Vec::new();
    for (from, targets) in edges() {
        let Some(from_rank) = rank(&from[0]) else {
            wrong.push(format!("{} is not in the table in src/lib.rs", from[0]));
            continue;
        };
        for to in targets {
            if to[0] == from[0] {
                continue;
            }
            match rank(&to[0]) {
                Some(r) if r <= from_rank => {}
                _ => wrong.push(format!(
                    "{} uses {}, which the table in src/lib.rs lists after it",
                    from.join("::"),
                    to.join("::")
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_import_circles_between_top_level_modules_or_files() {
    for depth in [1, 2, usize::MAX] {
        let found = circles(&graph_at(depth));
        assert!(
            found.is_empty(),
            "import circles at depth {depth}: {found:?}"
        );
    }
}
