//! Proves the kit's SFTP server with the stock OpenSSH client: upload and rename a file,
//! with the host key pinned, and refuse a client that does not know the host key.

use dbcrate_testkit::{Deps, SftpServer};
use std::process::{Command, Output};

fn sftp(server: &SftpServer, known_hosts: &std::path::Path, batch: &str) -> Output {
    let deps = Deps::from_env();
    let dir = dbcrate_testkit::TempDir::new("sftp-batch").unwrap();
    let batch_file = dir.path().join("batch");
    std::fs::write(&batch_file, batch).unwrap();
    Command::new(deps.tool("sftp").unwrap())
        .arg("-S")
        .arg(deps.tool("ssh").unwrap())
        .arg("-b")
        .arg(&batch_file)
        .arg("-i")
        .arg(server.client_key())
        .args(["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"])
        .args(["-o", "IdentitiesOnly=yes", "-F", "/dev/null"])
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .arg("-P")
        .arg(server.port().to_string())
        .arg(format!("{}@127.0.0.1", server.user()))
        .output()
        .unwrap()
}

#[test]
fn upload_and_rename() {
    let server = SftpServer::start().expect("start sshd");
    let known_hosts = server.write_known_hosts().unwrap();
    let local = dbcrate_testkit::TempDir::new("sftp-local").unwrap();
    let source = local.path().join("payload.bin");
    std::fs::write(&source, b"backup bytes").unwrap();

    let batch = format!(
        "put {} upload.tmp\nrename upload.tmp final.bin\nls -l\n",
        source.display()
    );
    let out = sftp(&server, &known_hosts, &batch);
    assert!(
        out.status.success(),
        "sftp failed: {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    assert_eq!(
        std::fs::read(server.root().join("final.bin")).unwrap(),
        b"backup bytes"
    );
    assert!(
        !server.root().join("upload.tmp").exists(),
        "temp name left behind"
    );
}

#[test]
fn unknown_host_key_is_refused() {
    let server = SftpServer::start().expect("start sshd");
    let dir = dbcrate_testkit::TempDir::new("empty-known-hosts").unwrap();
    let empty = dir.path().join("known_hosts");
    std::fs::write(&empty, "").unwrap();
    let out = sftp(&server, &empty, "ls\n");
    assert!(!out.status.success(), "sftp accepted an unknown host key");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Host key verification failed"),
        "unexpected error: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
