//! The error keeps its reason and its cause through everything the agent does to it.

use super::*;
use std::error::Error as _;

#[test]
fn a_reason_decides_the_kind() {
    assert_eq!(
        Error::because(Reason::Revoked, "x").kind(),
        ErrorKind::Identity
    );
    assert_eq!(
        Error::because(Reason::Expired, "x").kind(),
        ErrorKind::Identity
    );
    assert_eq!(
        Error::because(Reason::StaleCrl, "x").kind(),
        ErrorKind::Integrity
    );
    assert_eq!(
        Error::identity("this agent has been revoked").reason(),
        None
    );
}

#[test]
fn context_and_notes_keep_the_reason_and_the_cause() {
    let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "no");
    let e = Error::because(Reason::Expired, "the certificate ended")
        .with_source(io)
        .context("GET /agent/v1/crl")
        .note("re-enrol");
    assert_eq!(e.reason(), Some(Reason::Expired));
    assert_eq!(e.kind(), ErrorKind::Identity);
    assert_eq!(
        e.to_string(),
        "GET /agent/v1/crl: the certificate ended; re-enrol"
    );
    let cause = e.source().expect("the cause is kept");
    assert_eq!(
        cause.downcast_ref::<std::io::Error>().map(|e| e.kind()),
        Some(std::io::ErrorKind::PermissionDenied)
    );
}

#[test]
fn the_message_is_still_one_line_and_unchanged_by_a_cause() {
    let e = Error::new(ErrorKind::PgTool, "pg_dump failed\n  line two\n\n")
        .with_source(std::io::Error::other("ignored for the text"));
    assert_eq!(e.to_string(), "pg_dump failed | line two");
}

#[test]
fn a_storage_error_stays_reachable_as_the_cause() {
    let e: Error = dbcrate_storage::Error::unreachable("cannot resolve the name \"x\"").into();
    assert_eq!(e.kind(), ErrorKind::Storage);
    assert_eq!(e.to_string(), "cannot resolve the name \"x\"");
    let storage = e
        .source()
        .and_then(|s| s.downcast_ref::<dbcrate_storage::Error>())
        .expect("the storage error is the source");
    assert_eq!(storage.class(), dbcrate_storage::FailureClass::Connect);
}
