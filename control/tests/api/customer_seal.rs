//! Customer-sealed organisation keys over the API: switching on and off takes an owner
//! with a recent second factor; the organisation shows its mode; exports and managed
//! restores need the passphrase while sealed and say so; a wrong passphrase is refused
//! and audited, never recorded.

use crate::common::totp_code;
use crate::harness::{Api, Auth};
use dbcrate_control::db::Db;
use serde_json::json;

const PASS: &str = "correct horse battery staple";

async fn step_up(api: &Api, owner: &Auth, seed: &str, ahead: i64) {
    api.post(
        "/api/v1/session/second-factor",
        owner,
        json!({ "code": totp_code(seed, ahead) }),
    )
    .await
    .ok();
}

async fn customer_seal(db: Db) {
    let api = Api::start(db).await;
    let (init, owner) = api.init_owner().await;
    let org = init.org.id.clone();
    let seal = format!("/api/v1/orgs/{org}/customer-seal");
    let unseal = format!("/api/v1/orgs/{org}/customer-seal/disable");
    let export = format!("/api/v1/orgs/{org}/recovery-key");
    let show = format!("/api/v1/orgs/{org}");
    assert_eq!(api.get(&show, &owner).await.ok()["key_mode"], "managed");

    // Without a recent second factor: refused.
    api.post(&seal, &owner, json!({ "passphrase": PASS }))
        .await
        .fails(403, "recent_second_factor_required");
    let enrol = api
        .post(
            "/api/v1/account/second-factor",
            &owner,
            json!({ "password": "owner passphrase!" }),
        )
        .await
        .ok();
    let seed = enrol["secret"].as_str().unwrap().to_string();
    api.post(
        "/api/v1/account/second-factor/confirm",
        &owner,
        json!({ "code": totp_code(&seed, 0), "password": "owner passphrase!" }),
    )
    .await
    .ok();
    step_up(&api, &owner, &seed, 1).await;
    let before = api.post(&export, &owner, json!({})).await;
    assert!(before.status.is_success(), "{}", before.text);

    // Too short, then a good passphrase.
    let short = api
        .post(&seal, &owner, json!({ "passphrase": "too short" }))
        .await;
    short.fails(422, "invalid_input");
    assert!(short.text.contains("16"), "{}", short.text);
    let sealed = api
        .post(&seal, &owner, json!({ "passphrase": PASS }))
        .await
        .ok();
    assert_eq!(sealed["key_mode"], "customer_sealed");
    assert_eq!(
        api.get(&show, &owner).await.ok()["key_mode"],
        "customer_sealed"
    );
    let listed = api.get("/api/v1/orgs", &owner).await.ok();
    assert_eq!(listed["items"][0]["key_mode"], "customer_sealed");

    // Export: without the passphrase (no body at all, or an empty object) a clear 409;
    // a wrong one 422, audited; the right one the same key as before.
    let reply = api.send(reqwest::Method::POST, &export, &owner, None).await;
    reply.fails(409, "customer_passphrase_required");
    assert!(reply.text.contains("passphrase"), "{}", reply.text);
    api.post(&export, &owner, json!({}))
        .await
        .fails(409, "customer_passphrase_required");
    let wrong = api
        .post(
            &export,
            &owner,
            json!({ "passphrase": "wrong wrong wrong wrong" }),
        )
        .await;
    wrong.fails(422, "customer_passphrase_invalid");
    assert!(!wrong.text.contains("wrong wrong"));
    api.post(&export, &owner, json!({ "passphrase": PASS, "extra": 1 }))
        .await
        .fails(422, "invalid_body");
    let after = api
        .post(&export, &owner, json!({ "passphrase": PASS }))
        .await;
    assert!(after.status.is_success(), "{}", after.text);
    let key_line = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("AGE-SECRET-KEY-1"))
            .unwrap()
            .to_string()
    };
    assert_eq!(key_line(&after.text), key_line(&before.text));

    // A managed restore needs the passphrase too (checked before anything is read).
    let zeros = "0".repeat(32);
    let restore = api
        .post(
            &format!("/api/v1/orgs/{org}/restores"),
            &owner,
            json!({ "backup_id": format!("bkp_{zeros}"), "target_database_id": format!("dbs_{zeros}") }),
        )
        .await;
    restore.fails(409, "customer_passphrase_required");

    // Audited, never the passphrase.
    let audit = api
        .get(&format!("/api/v1/orgs/{org}/audit"), &owner)
        .await
        .ok()
        .to_string();
    assert!(audit.contains("org.key.customer_seal.enable"), "{audit}");
    assert!(
        audit.contains("org.key.customer_seal.wrong_passphrase"),
        "{audit}"
    );
    assert!(!audit.contains("horse") && !audit.contains("wrong wrong"));

    // Switching off: the passphrase is needed, then managed mode is back.
    api.post(
        &unseal,
        &owner,
        json!({ "passphrase": "wrong wrong wrong wrong" }),
    )
    .await
    .fails(422, "customer_passphrase_invalid");
    api.post(&unseal, &owner, json!({ "passphrase": PASS }))
        .await
        .ok();
    assert_eq!(api.get(&show, &owner).await.ok()["key_mode"], "managed");
    let managed = api.post(&export, &owner, json!({})).await;
    assert!(managed.status.is_success(), "{}", managed.text);
    assert_eq!(key_line(&managed.text), key_line(&before.text));
    api.post(&unseal, &owner, json!({ "passphrase": PASS }))
        .await
        .fails(409, "conflict");
}

crate::both_engines!(sqlite_customer_seal, postgres_customer_seal, customer_seal);
