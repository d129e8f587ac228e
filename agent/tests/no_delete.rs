//! The agent has no delete code path: neither its own code nor the storage library it
//! uses calls any delete or remove operation of the S3 or SFTP clients. Deleting
//! backups (retention) is the control plane's alone. This test reads the source, so a
//! delete call added anywhere in those crates fails the build's tests.

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
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
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
        rust_files(&root.join(dir), &mut files);
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
