//! The agent has no delete code path: neither its own code nor the storage library it
//! uses calls any delete or remove operation of the S3 or SFTP clients. Deleting
//! backups (retention) is the control plane's alone. This test reads the source, so a
//! delete call added anywhere in those crates fails the build's tests.
//!
//! The storage crate's deletes for the control plane live only in its `admin` module
//! (`storage/src/admin.rs`, `storage/src/admin/`), compiled only with the `admin`
//! feature; the scan skips that module, and a second test checks that the agent never
//! enables the feature.

use std::path::{Path, PathBuf};

/// Method names of the S3 and SFTP clients that delete or remove something.
const FORBIDDEN: &[&str] = &[
    ".delete_object(",
    ".delete_objects(",
    ".delete_bucket",
    ".delete_object_tagging(",
    "DeleteObject",
    ".remove_file(",
    ".remove_dir(",
    "remove_dir_all(",
];

/// Local-filesystem removals that are not storage deletes, each with the reason. The
/// line must contain the whole text.
const ALLOWED: &[(&str, &str)] = &[
    (
        "tokio::fs::remove_file(&self.temp)",
        "the file sink's own temp file in a local directory",
    ),
    (
        "std::fs::remove_file(&tmp)",
        "the agent's identity: a stale temp file before a rewrite",
    ),
    (
        "std::fs::remove_file(&path).map_err(io(\"cannot remove\", &path))",
        "the agent's identity: a completed renewal journal",
    ),
    (
        "tokio::fs::remove_file(&download)",
        "the registry client's own download scratch file",
    ),
    (
        "tokio::fs::remove_dir_all(&staging)",
        "the registry client's own unpack staging directory",
    ),
    (
        "std::fs::remove_dir_all(&self.private_dir)",
        "a parallel restore's own private staging directory on the agent's host, removed \
         when the restore ends",
    ),
    (
        "std::fs::remove_dir_all(leftover.path())",
        "a staging directory that a killed agent's parallel restore left on this host",
    ),
    (
        "tokio::fs::remove_dir_all(&final_dir)",
        "the registry client's own tool cache: tools an older agent unpacked without \
         keeping their archive, fetched again",
    ),
];

/// The storage crate's control-plane module, built only with its `admin` feature,
/// which [`the_agent_never_enables_the_storage_admin_feature`] keeps out of the agent.
const ADMIN_ONLY: &[&str] = &["storage/src/admin.rs", "storage/src/admin"];

fn is_admin_only(root: &Path, path: &Path) -> bool {
    ADMIN_ONLY.iter().any(|a| path == root.join(a))
}

fn rust_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if is_admin_only(root, &path) {
            continue;
        }
        if path.is_dir() {
            rust_files(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn agent_and_storage_code_call_no_delete_or_remove() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut files = Vec::new();
    for dir in ["agent/src", "storage/src"] {
        rust_files(root, &root.join(dir), &mut files);
    }
    assert!(files.len() > 20, "found only {} files", files.len());
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if FORBIDDEN.iter().any(|f| code.contains(f))
                && !ALLOWED.iter().any(|(text, _)| code.contains(text))
            {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "delete/remove calls in agent code:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_catches_a_delete_call() {
    let sample = "    client.delete_object().bucket(b).key(k).send().await?;";
    assert!(FORBIDDEN.iter().any(|f| sample.contains(f)));
    let sftp = "    let _ = self.connection.sftp.remove_file(&path).await;";
    assert!(FORBIDDEN.iter().any(|f| sftp.contains(f)));
    assert!(!ALLOWED.iter().any(|(text, _)| sftp.contains(text)));
}

#[test]
fn the_agent_never_enables_the_storage_admin_feature() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    // The module the scan skips must really be behind the feature.
    let lib = std::fs::read_to_string(root.join("storage/src/lib.rs")).unwrap();
    assert!(
        lib.contains("#[cfg(feature = \"admin\")]\npub mod admin;"),
        "storage/src/lib.rs must declare `pub mod admin` only under the admin feature"
    );
    let storage = std::fs::read_to_string(root.join("storage/Cargo.toml")).unwrap();
    let default = storage
        .lines()
        .find(|l| l.trim_start().starts_with("default"))
        .unwrap_or("");
    assert!(
        !default.contains("admin"),
        "dbcrate-storage's default features must not include admin: {default}"
    );

    // The agent's dependency line: the workspace one, with no features of its own.
    let manifest = std::fs::read_to_string(root.join("agent/Cargo.toml")).unwrap();
    let deps: Vec<&str> = manifest
        .lines()
        .filter(|l| l.trim_start().starts_with("dbcrate-storage"))
        .collect();
    assert_eq!(
        deps,
        ["dbcrate-storage.workspace = true"],
        "agent/Cargo.toml must depend on dbcrate-storage without features"
    );
    // The workspace entry enables no features either (it is what the agent inherits).
    let workspace = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let entry = workspace
        .lines()
        .find(|l| l.trim_start().starts_with("dbcrate-storage"))
        .unwrap();
    assert!(
        !entry.contains("features") && !entry.contains("admin"),
        "the workspace's dbcrate-storage entry must not enable features: {entry}"
    );

    // Nothing under agent/ names the feature: no manifest, build script or source.
    let mut hits = Vec::new();
    scan_for_admin_feature(&root.join("agent"), &mut hits);
    assert!(
        hits.is_empty(),
        "agent/ enables or names the storage admin feature:\n{}",
        hits.join("\n")
    );
}

/// Lines under `dir` (manifests and Rust sources, except this test) that enable or
/// use the admin feature or module.
fn scan_for_admin_feature(dir: &Path, hits: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                scan_for_admin_feature(&path, hits);
            }
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let relevant = name.ends_with(".toml") || name.ends_with(".rs");
        if !relevant || path.ends_with("tests/no_delete.rs") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            if line.contains("\"admin\"")
                || line.contains("dbcrate-storage/admin")
                || line.contains("dbcrate_storage::admin")
            {
                hits.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
            }
        }
    }
}
