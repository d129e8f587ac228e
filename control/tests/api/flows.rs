//! A person's whole story through the API: one-time password, password change, second
//! factor with recovery codes, recovery-key export checked with stock age, members,
//! API tokens, audit queries and exports, sign-out.

use crate::common::totp_code;
use crate::harness::{Api, Auth, NOW};
use dbcrate_control::db::Db;
use dbcrate_control::{audit, setup};
use dbcrate_testkit::assert_succeeded;
use reqwest::Method;
use serde_json::json;
use std::io::Write;

const OWNER_PW: &str = "a long and boring passphrase";

async fn account_flow(db: Db) {
    let api = Api::start(db).await;
    let init = setup::init(&api.db, &api.keys, "Acme", "owner@example.com", NOW)
        .await
        .unwrap();
    let org = init.org.id.clone();
    let otp = init.one_time_password.expose_secret().to_string();

    // First sign-in: the cookie is locked down, and only a password change is allowed.
    let reply = api
        .post(
            "/api/v1/session",
            &Auth::None,
            json!({ "email": "owner@example.com", "password": otp }),
        )
        .await;
    let body = reply.ok();
    assert_eq!(body["must_change_password"], true);
    let cookie = reply.headers["set-cookie"].to_str().unwrap();
    for attr in [
        "__Host-dbcrate_session=",
        "HttpOnly",
        "Secure",
        "SameSite=Strict",
        "Path=/",
    ] {
        assert!(cookie.contains(attr), "{attr} missing from {cookie}");
    }
    let first = Auth::Session {
        cookie: cookie.split(';').next().unwrap().to_string(),
        csrf: body["csrf_token"].as_str().unwrap().to_string(),
    };
    api.get("/api/v1/orgs", &first)
        .await
        .fails(403, "password_change_required");
    let Auth::Session {
        cookie: first_cookie,
        ..
    } = &first
    else {
        unreachable!()
    };
    api.post(
        "/api/v1/account/password",
        &Auth::CookieOnly(first_cookie.clone()),
        json!({ "current_password": otp, "new_password": OWNER_PW }),
    )
    .await
    .fails(403, "csrf_token_invalid");
    api.post(
        "/api/v1/account/password",
        &first,
        json!({ "current_password": otp, "new_password": "short" }),
    )
    .await
    .fails(422, "invalid_input");
    api.post(
        "/api/v1/account/password",
        &first,
        json!({ "current_password": "wrong one here", "new_password": OWNER_PW }),
    )
    .await
    .fails(401, "wrong_credentials");
    api.post(
        "/api/v1/account/password",
        &first,
        json!({ "current_password": otp, "new_password": OWNER_PW }),
    )
    .await
    .ok();
    let orgs = api.get("/api/v1/orgs", &first).await.ok();
    assert_eq!(orgs["items"][0]["id"], org.as_str());
    assert_eq!(orgs["items"][0]["role"], "owner");
    // The one-time password is gone.
    api.post(
        "/api/v1/session",
        &Auth::None,
        json!({ "email": "owner@example.com", "password": otp }),
    )
    .await
    .fails(401, "wrong_credentials");

    // Recovery export needs a second factor; there is none yet.
    let export = format!("/api/v1/orgs/{org}/recovery-key");
    api.post(&export, &first, json!({}))
        .await
        .fails(403, "recent_second_factor_required");

    // Enrol TOTP — only with the password, so a stolen session cannot plant its own
    // authenticator. A wrong code is refused, the right one enables and gives recovery
    // codes.
    api.post(
        "/api/v1/account/second-factor",
        &first,
        json!({ "password": "not the password" }),
    )
    .await
    .fails(401, "wrong_credentials");
    let enrol = api
        .post(
            "/api/v1/account/second-factor",
            &first,
            json!({ "password": OWNER_PW }),
        )
        .await
        .ok();
    let seed = enrol["secret"].as_str().unwrap().to_string();
    assert!(enrol["otpauth_uri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/"));
    let wrong = if totp_code(&seed, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    api.post(
        "/api/v1/account/second-factor/confirm",
        &first,
        json!({ "code": wrong, "password": OWNER_PW }),
    )
    .await
    .fails(401, "second_factor_invalid");
    api.post(
        "/api/v1/account/second-factor/confirm",
        &first,
        json!({ "code": totp_code(&seed, 0) }),
    )
    .await
    .fails(422, "invalid_body");
    let confirmed = api
        .post(
            "/api/v1/account/second-factor/confirm",
            &first,
            json!({ "code": totp_code(&seed, 0), "password": OWNER_PW }),
        )
        .await
        .ok();
    let recovery: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(recovery.len(), 10);
    api.post(
        "/api/v1/account/second-factor",
        &first,
        json!({ "password": OWNER_PW }),
    )
    .await
    .fails(409, "conflict");

    // Confirming is not a step-up; a checked code is (here a recovery code, since the
    // current step's code was just used), and then stock age decrypts a backup made for
    // the organisation with the exported key.
    api.post(&export, &first, json!({}))
        .await
        .fails(403, "recent_second_factor_required");
    api.post(
        "/api/v1/session/second-factor",
        &first,
        json!({ "code": recovery[4] }),
    )
    .await
    .ok();
    let reply = api.post(&export, &first, json!({})).await;
    assert!(reply.status.is_success(), "{}", reply.text);
    assert!(reply.text.contains("AGE-SECRET-KEY-1"));
    let decrypted = decrypt_with_stock_age(&init.org.recipient, &reply.text);
    assert_eq!(decrypted, b"a backup only the customer can read");

    // Sign out revokes the session.
    api.send(Method::DELETE, "/api/v1/session", &first, None)
        .await
        .ok();
    api.get("/api/v1/session", &first)
        .await
        .fails(401, "not_signed_in");

    // With a second factor, the password alone is not enough; codes work once.
    api.post(
        "/api/v1/session",
        &Auth::None,
        json!({ "email": "owner@example.com", "password": OWNER_PW }),
    )
    .await
    .fails(401, "second_factor_required");
    // (The current step was used to confirm; the next one is within the skew.)
    let code_now = totp_code(&seed, 1);
    let owner = api
        .sign_in("owner@example.com", OWNER_PW, Some(&code_now))
        .await;
    api.post(
        "/api/v1/session",
        &Auth::None,
        json!({ "email": "owner@example.com", "password": OWNER_PW, "second_factor": code_now }),
    )
    .await
    .fails(401, "second_factor_invalid");
    // A recovery code works once.
    api.post(
        "/api/v1/session/second-factor",
        &owner,
        json!({ "code": recovery[0] }),
    )
    .await
    .ok();
    api.post(
        "/api/v1/session/second-factor",
        &owner,
        json!({ "code": recovery[0] }),
    )
    .await
    .fails(401, "second_factor_invalid");
    let me = api.get("/api/v1/session", &owner).await.ok();
    assert_eq!(me["recovery_codes_left"], 8);

    // A step-up older than five minutes no longer allows the export.
    sqlx::query("UPDATE sessions SET second_factor_at = second_factor_at - 301")
        .execute(api.db.pool())
        .await
        .unwrap();
    api.post(&export, &owner, json!({}))
        .await
        .fails(403, "recent_second_factor_required");
    api.post(
        "/api/v1/session/second-factor",
        &owner,
        json!({ "code": recovery[3] }),
    )
    .await
    .ok();
    assert!(api
        .post(&export, &owner, json!({}))
        .await
        .status
        .is_success());

    members_and_tokens(&api, &org, &owner).await;
    audit_queries(&api, &org, &owner).await;

    // Turning the second factor off needs the password and a code.
    api.post(
        "/api/v1/account/second-factor/disable",
        &owner,
        json!({ "code": recovery[1], "password": "not the password" }),
    )
    .await
    .fails(401, "wrong_credentials");
    api.post(
        "/api/v1/account/second-factor/disable",
        &owner,
        json!({ "code": recovery[1], "password": OWNER_PW }),
    )
    .await
    .ok();
    api.sign_in("owner@example.com", OWNER_PW, None).await;

    dbcrate_testkit::assert_audited(
        api.db.pool(),
        audit::INSTANCE_CHAIN,
        &[
            "auth.sign_in",
            "auth.sign_out",
            "auth.failed",
            "auth.second_factor.failed",
            "auth.recovery_code.use",
            "user.password_change",
            "user.create",
            "user.second_factor.enrol",
            "user.second_factor.disable",
            "secret.unwrap",
        ],
    )
    .await;
    for chain in [audit::INSTANCE_CHAIN, org.as_str()] {
        assert!(audit::verify(&api.db, chain).await.unwrap().is_ok());
    }
    // No secret shown to a client is stored in clear anywhere in the database.
    let dump = dbcrate_testkit::every_text_in_database(api.db.pool()).await;
    for secret in [seed.as_str(), recovery[2].as_str(), OWNER_PW] {
        assert!(!dump.contains(secret), "{secret:?} is stored in clear");
    }
}

fn decrypt_with_stock_age(recipient: &str, identity_file: &str) -> Vec<u8> {
    let recipient: age::x25519::Recipient = recipient.parse().unwrap();
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .unwrap();
    let mut ciphertext = Vec::new();
    let mut writer = encryptor.wrap_output(&mut ciphertext).unwrap();
    writer
        .write_all(b"a backup only the customer can read")
        .unwrap();
    writer.finish().unwrap();
    let dir = dbcrate_testkit::TempDir::new("control-export").unwrap();
    std::fs::write(dir.path().join("backup.age"), &ciphertext).unwrap();
    std::fs::write(dir.path().join("org.key"), identity_file).unwrap();
    let age_bin = dbcrate_testkit::Deps::from_env().tool("age").unwrap();
    let out = std::process::Command::new(age_bin)
        .arg("-d")
        .arg("-i")
        .arg(dir.path().join("org.key"))
        .arg(dir.path().join("backup.age"))
        .output()
        .unwrap();
    assert_succeeded("stock age -d", &out);
    out.stdout
}

async fn members_and_tokens(api: &Api, org: &str, owner: &Auth) {
    let members = format!("/api/v1/orgs/{org}/members");
    // New people join through invitations and choose their own password.
    let (admin_id, admin_pw) = api
        .add_member(owner, org, "admin@example.com", "admin")
        .await;
    let (viewer_id, viewer_pw) = api
        .add_member(owner, org, "viewer@example.com", "viewer")
        .await;
    api.try_invite(owner, org, "viewer@example.com", "viewer")
        .await
        .fails(409, "conflict");
    let admin = api.sign_in("admin@example.com", &admin_pw, None).await;
    let viewer = api.sign_in("viewer@example.com", &viewer_pw, None).await;
    let listed = api.get(&members, &viewer).await.ok();
    assert_eq!(listed["items"].as_array().unwrap().len(), 3);

    // Admins cannot make owners or touch owners; the last owner stays.
    api.try_invite(&admin, org, "x@example.com", "owner")
        .await
        .fails(403, "forbidden");
    let owner_id: String =
        sqlx::query_scalar("SELECT id FROM users WHERE email = 'owner@example.com'")
            .fetch_one(api.db.pool())
            .await
            .unwrap();
    api.send(
        Method::PATCH,
        &format!("{members}/{owner_id}"),
        &admin,
        Some(json!({ "role": "viewer" })),
    )
    .await
    .fails(403, "forbidden");
    api.send(
        Method::PATCH,
        &format!("{members}/{owner_id}"),
        owner,
        Some(json!({ "role": "admin" })),
    )
    .await
    .fails(409, "conflict");
    api.send(
        Method::PATCH,
        &format!("{members}/{viewer_id}"),
        &admin,
        Some(json!({ "role": "operator" })),
    )
    .await
    .ok();

    // A password reset gives a new one-time password and ends the member's sessions.
    let reset = api
        .post(
            &format!("{members}/{viewer_id}/password-reset"),
            &admin,
            json!({}),
        )
        .await
        .ok();
    api.get("/api/v1/orgs", &viewer)
        .await
        .fails(401, "not_signed_in");
    let fresh = reset["one_time_password"].as_str().unwrap();
    api.first_sign_in("viewer@example.com", fresh, "viewer's second passphrase")
        .await;
    // A token the admin made does not outlive the admin's membership.
    let admin_token = api.api_token(&admin, org, "admin bot", "admin").await;
    let admin_bot = Auth::Bearer(admin_token);
    api.get(&members, &admin_bot).await.ok();
    api.send(
        Method::DELETE,
        &format!("{members}/{admin_id}"),
        owner,
        None,
    )
    .await
    .ok();
    api.get(&members, &admin).await.fails(404, "not_found");
    api.get(&members, &admin_bot)
        .await
        .fails(401, "not_signed_in");

    // API tokens: shown once, scoped to the org and role, revocable.
    let tokens = format!("/api/v1/orgs/{org}/api-tokens");
    let created = api
        .post(
            &tokens,
            owner,
            json!({ "name": "ci", "role": "viewer", "expires_in_days": 30 }),
        )
        .await
        .ok();
    let value = created["token"].as_str().unwrap().to_string();
    assert!(value.starts_with("dbct_"));
    let bearer = Auth::Bearer(value.clone());
    api.get(&format!("/api/v1/orgs/{org}"), &bearer).await.ok();
    api.get(&members, &bearer).await.ok();
    api.try_invite(&bearer, org, "y@example.com", "viewer")
        .await
        .fails(403, "forbidden");
    let listed = api.get(&tokens, owner).await.ok();
    assert!(
        !listed.to_string().contains(&value),
        "token values are never listed"
    );
    assert!(listed["items"][0]["last_used_at"].is_i64());
    let id = created["id"].as_str().unwrap();
    api.send(Method::DELETE, &format!("{tokens}/{id}"), owner, None)
        .await
        .ok();
    api.get(&format!("/api/v1/orgs/{org}"), &bearer)
        .await
        .fails(401, "not_signed_in");
}

async fn audit_queries(api: &Api, org: &str, owner: &Auth) {
    let base = format!("/api/v1/orgs/{org}/audit");
    let all = api.get(&base, owner).await.ok();
    let items = all["items"].as_array().unwrap().clone();
    let actions: Vec<&str> = items
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    for action in [
        "org.create",
        "member.add",
        "invitation.create",
        "invitation.accept",
        "member.role_change",
        "member.remove",
        "user.password_reset",
        "api_token.create",
        "api_token.revoke",
        "org.recovery_key.export",
        "secret.unwrap",
    ] {
        assert!(actions.contains(&action), "no {action} in {actions:?}");
    }
    let total = items.len();

    let adds = api
        .get(&format!("{base}?action=member.add"), owner)
        .await
        .ok();
    assert!(adds["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["action"] == "member.add"));
    assert_eq!(adds["items"].as_array().unwrap().len(), 3);
    let by_system = api
        .get(&format!("{base}?actor=system:init"), owner)
        .await
        .ok();
    assert!(by_system["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["actor"] == "system:init"));
    let before = api
        .get(&format!("{base}?to=2026-11-29T05:00:01Z"), owner)
        .await
        .ok();
    assert!(before["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["at"] == NOW));
    let after = api
        .get(&format!("{base}?from=2026-11-29T05:00:01Z"), owner)
        .await
        .ok();
    assert_eq!(
        before["items"].as_array().unwrap().len() + after["items"].as_array().unwrap().len(),
        total
    );

    // Pages of two, following the cursor, give every row once, in order.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = api
            .get(&format!("{base}?limit=2{cursor}"), owner)
            .await
            .ok();
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["seq"].as_i64().unwrap()),
        );
        match page["next_after"].as_i64() {
            Some(next) => cursor = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, (1..=total as i64).collect::<Vec<_>>());

    let lines = api.get(&format!("{base}?format=jsonl"), owner).await;
    assert_eq!(lines.headers["content-type"], "application/x-ndjson");
    let parsed: Vec<serde_json::Value> = lines
        .text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed.len(), total);
    assert_eq!(parsed, items);
    let csv = api
        .get(&format!("{base}?format=csv&action=member.add"), owner)
        .await;
    assert!(csv.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let mut csv_lines = csv.text.split("\r\n").filter(|l| !l.is_empty());
    assert_eq!(
        csv_lines.next(),
        Some("seq,at,actor,action,target,details,prev_hash,hash")
    );
    assert_eq!(csv_lines.count(), 3);
}

crate::both_engines!(sqlite_account_flow, postgres_account_flow, account_flow);
