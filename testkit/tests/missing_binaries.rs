//! A missing test binary is a clear, one-line failure that names the binary and the
//! command that provisions it — never a silent skip.

use dbcrate_testkit::{Deps, KitError, PgServer, S3Server, SftpServer, TempDir, PROVISION_COMMAND};

fn assert_names_fix(err: KitError, binary: &str) {
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "not one line: {msg}");
    assert!(msg.contains(binary), "does not name {binary}: {msg}");
    assert!(
        msg.contains(PROVISION_COMMAND),
        "does not name the fix: {msg}"
    );
}

#[test]
fn each_server_names_its_missing_binary_and_the_provisioning_command() {
    let empty = TempDir::new("empty-cache").unwrap();
    let deps = Deps::at(empty.path());
    assert_names_fix(
        PgServer::start_with(&deps, 16).unwrap_err(),
        "pg/16/bin/pg_dump",
    );
    assert_names_fix(S3Server::start_with(&deps).unwrap_err(), "bin/garage");
    assert_names_fix(SftpServer::start_with(&deps).unwrap_err(), "bin/sshd");
}

#[test]
fn an_unsupported_major_is_refused() {
    let err = PgServer::start(12).unwrap_err().to_string();
    assert!(
        err.contains("12") && err.contains("not a supported major"),
        "{err}"
    );
}
