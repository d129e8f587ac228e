//! Fails the build when any log call in the workspace names a credential field, and
//! proves on a deliberately bad fixture that the lint catches what it must.

use dbcrate_testkit::log_lint::scan_source;
use std::path::{Path, PathBuf};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if !(name.starts_with('.') || name == "target") {
                rust_files(&path, out);
            }
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_log_call_in_the_workspace_names_a_credential() {
    let mut files = Vec::new();
    rust_files(&workspace_root(), &mut files);
    assert!(
        files.len() > 10,
        "found only {} Rust files; is the walk broken?",
        files.len()
    );
    let mut problems = Vec::new();
    for file in &files {
        let src = std::fs::read_to_string(file).unwrap();
        for f in scan_source(&src) {
            problems.push(format!(
                "{}:{}: {} names `{}`",
                file.display(),
                f.line,
                f.call,
                f.name
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "log calls that name credentials (rename the field or leave it out of the log):\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_lint_catches_every_bad_line_of_the_fixture() {
    let path = workspace_root().join("testkit/tests/fixtures/log_lint/bad.rs.txt");
    let src = std::fs::read_to_string(path).unwrap();
    let expected: Vec<usize> = src
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("// BAD"))
        .map(|(i, l)| {
            if l.contains("attribute line above") {
                i
            } else {
                i + 1
            }
        })
        .collect();
    let mut found: Vec<usize> = scan_source(&src).iter().map(|f| f.line).collect();
    found.dedup();
    assert_eq!(found, expected, "findings: {:#?}", scan_source(&src));
}
