//! Names and e-mails people type are checked in one place before any side effect: NUL,
//! CR/LF, other control characters and bidirectional overrides get a 422 naming the
//! field — the same on SQLite and PostgreSQL (which refuses NUL itself, and used to
//! answer 500 after a destination's probe and README had been written).

use crate::harness::{Api, Auth};
use dbcrate_control::db::Db;
use dbcrate_testkit::TempDir;
use serde_json::json;

/// Hostile names: NUL, CR/LF, a C1 control, a right-to-left override, a zero-width space.
const HOSTILE: [&str; 5] = [
    "db\u{0}1",
    "db1\r\nforged: line",
    "db\u{85}1",
    "invoice\u{202E}fdp.exe",
    "db\u{200B}1",
];

async fn refused(api: &Api, path: &str, auth: &Auth, body: serde_json::Value, field: &str) {
    let reply = api.post(path, auth, body.clone()).await;
    reply.fails(422, "invalid_input");
    let message = reply.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.starts_with(&format!("{field} holds")),
        "{body}: {message}"
    );
}

async fn count(db: &Db, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(db.pool())
        .await
        .unwrap()
}

async fn names_are_checked(db: Db) {
    let api = Api::start(db).await;
    let (init, owner) = api.init_owner().await;
    let org = init.org.id;
    let dir = TempDir::new("control-names").unwrap();
    let audit_rows = count(&api.db, "audit_log").await;
    for name in HOSTILE {
        let email = format!("{}@example.com", name.replace('.', "-"));
        // (the organisation's route, the body with the name, the field named)
        for (route, body, field) in [
            ("enrolment-tokens", json!({ "name": name }), "name"),
            (
                "api-tokens",
                json!({ "name": name, "role": "viewer" }),
                "name",
            ),
            (
                "destinations",
                json!({ "name": name, "kind": "directory", "settings": { "path": dir.path() } }),
                "name",
            ),
            (
                "members",
                json!({ "email": email, "role": "viewer" }),
                "email",
            ),
        ] {
            let path = format!("/api/v1/orgs/{org}/{route}");
            refused(&api, &path, &owner, body, field).await;
        }
    }
    // Nothing was written: no probe object or README in the directory, no rows.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    for table in [
        "destinations",
        "enrolment_tokens",
        "api_tokens",
        "invitations",
    ] {
        assert_eq!(count(&api.db, table).await, 0, "{table}");
    }
    assert_eq!(count(&api.db, "audit_log").await, audit_rows);

    // An agent enrolling under a hostile name is refused the same way (and the refusal
    // is audited, as every enrolment refusal is).
    let token = api
        .post(
            &format!("/api/v1/orgs/{org}/enrolment-tokens"),
            &owner,
            json!({ "name": "db1.example.com" }),
        )
        .await
        .ok()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let (_key, csr) = crate::harness::csr();
    for name in HOSTILE {
        refused(
            &api,
            "/agent/v1/enroll",
            &Auth::None,
            json!({ "token": token, "csr": csr, "name": name }),
            "name",
        )
        .await;
    }
    assert_eq!(count(&api.db, "agents").await, 0);

    // Ordinary names, with accents and surrounding spaces, still work, trimmed and NFC.
    let saved = api
        .post(
            &format!("/api/v1/orgs/{org}/api-tokens"),
            &owner,
            json!({ "name": "  Zu\u{308}rich backups ", "role": "viewer" }),
        )
        .await
        .ok();
    assert_eq!(saved["name"], "Z\u{fc}rich backups", "{saved}");
}

crate::both_engines!(
    sqlite_names_are_checked,
    postgres_names_are_checked,
    names_are_checked
);
