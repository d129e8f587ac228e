//! Bad input gets a clear 4xx with a stable code, never a 500, and changes nothing.

use crate::harness::{Api, Auth, NOW};
use dbcrate_control::db::Db;
use dbcrate_control::setup;
use reqwest::Method;
use serde_json::json;

async fn counts(db: &Db) -> Vec<i64> {
    let mut out = Vec::new();
    for table in [
        "users",
        "memberships",
        "invitations",
        "api_tokens",
        "audit_log",
        "secrets",
        "user_secrets",
    ] {
        out.push(
            sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
                .fetch_one(db.pool())
                .await
                .unwrap(),
        );
    }
    out
}

async fn bad_input(db: Db) {
    let api = Api::start(db).await;
    let init = setup::init(&api.db, &api.keys, "Acme", "owner@example.com", NOW)
        .await
        .unwrap();
    let org = init.org.id.clone();
    let owner = api
        .first_sign_in(
            "owner@example.com",
            init.one_time_password.expose_secret(),
            "owner passphrase!",
        )
        .await;
    let members = format!("/api/v1/orgs/{org}/members");
    let before = counts(&api.db).await;

    // Bodies.
    api.send_raw(
        Method::POST,
        &members,
        &owner,
        Some("application/json"),
        b"{\"email\": ".to_vec(),
    )
    .await
    .fails(400, "malformed_json");
    api.post(
        &members,
        &owner,
        json!({ "email": "a@example.com", "role": "viewer", "admin": true }),
    )
    .await
    .fails(422, "invalid_body");
    api.post(&members, &owner, json!({ "email": 7, "role": "viewer" }))
        .await
        .fails(422, "invalid_body");
    api.post(&members, &owner, json!({ "email": "a@example.com" }))
        .await
        .fails(422, "invalid_body");
    let huge = format!(
        "{{\"email\": \"{}\", \"role\": \"viewer\"}}",
        "a".repeat(70 * 1024)
    );
    api.send_raw(
        Method::POST,
        &members,
        &owner,
        Some("application/json"),
        huge.into_bytes(),
    )
    .await
    .fails(413, "body_too_large");
    api.send_raw(Method::POST, &members, &owner, None, b"{}".to_vec())
        .await
        .fails(415, "unsupported_media_type");
    api.send_raw(
        Method::POST,
        &members,
        &owner,
        Some("text/plain"),
        b"{}".to_vec(),
    )
    .await
    .fails(415, "unsupported_media_type");

    // Values the rules refuse: nothing is written.
    api.try_invite(&owner, &org, "not an address", "viewer")
        .await
        .fails(422, "invalid_input");
    api.try_invite(&owner, &org, "b@example.com", "superuser")
        .await
        .fails(422, "invalid_input");
    api.post(
        &format!("/api/v1/orgs/{org}/api-tokens"),
        &owner,
        json!({ "name": "", "role": "viewer" }),
    )
    .await
    .fails(422, "invalid_input");
    api.post(
        &format!("/api/v1/orgs/{org}/api-tokens"),
        &owner,
        json!({ "name": "x", "role": "viewer", "expires_in_days": 100000 }),
    )
    .await
    .fails(422, "invalid_input");
    assert_eq!(
        counts(&api.db).await,
        before,
        "a refused request wrote something"
    );

    // Ids and routes.
    api.get("/api/v1/orgs/not-an-id", &owner)
        .await
        .fails(404, "not_found");
    api.get("/api/v1/orgs/org_%27%20OR%201=1", &owner)
        .await
        .fails(404, "not_found");
    api.send(
        Method::PATCH,
        &format!("{members}/usr_nope"),
        &owner,
        Some(json!({ "role": "viewer" })),
    )
    .await
    .fails(404, "not_found");
    api.send(
        Method::DELETE,
        &format!("{members}/usr_00000000000000000000000000000000"),
        &owner,
        None,
    )
    .await
    .fails(404, "not_found");
    api.get("/api/v1/nothing-here", &owner)
        .await
        .fails(404, "no_such_route");
    api.send(Method::PUT, &members, &owner, None)
        .await
        .fails(405, "method_not_allowed");

    // Queries.
    let audit = format!("/api/v1/orgs/{org}/audit");
    api.get(&format!("{audit}?from=yesterday"), &owner)
        .await
        .fails(422, "invalid_input");
    api.get(&format!("{audit}?limit=0"), &owner)
        .await
        .fails(422, "invalid_input");
    api.get(&format!("{audit}?limit=many"), &owner)
        .await
        .fails(400, "invalid_query");
    api.get(&format!("{audit}?format=xml"), &owner)
        .await
        .fails(400, "invalid_query");
    api.get(&format!("{audit}?colour=blue"), &owner)
        .await
        .fails(400, "invalid_query");

    // Credentials.
    api.get("/api/v1/orgs", &Auth::None)
        .await
        .fails(401, "not_signed_in");
    api.get(
        "/api/v1/orgs",
        &Auth::CookieOnly("__Host-dbcrate_session=garbage".into()),
    )
    .await
    .fails(401, "not_signed_in");
    api.get("/api/v1/orgs", &Auth::Bearer("dbct_garbage".into()))
        .await
        .fails(401, "not_signed_in");
    let Auth::Session { cookie, .. } = &owner else {
        unreachable!()
    };
    api.try_invite(
        &Auth::CookieOnly(cookie.clone()),
        &org,
        "c@example.com",
        "viewer",
    )
    .await
    .fails(403, "csrf_token_invalid");
    api.try_invite(
        &Auth::Session {
            cookie: cookie.clone(),
            csrf: "0".repeat(64),
        },
        &org,
        "c@example.com",
        "viewer",
    )
    .await
    .fails(403, "csrf_token_invalid");
    assert_eq!(
        counts(&api.db).await,
        before,
        "a refused request wrote something"
    );

    // Wrong passwords, then throttling per account.
    for _ in 0..5 {
        api.post(
            "/api/v1/session",
            &Auth::None,
            json!({ "email": "owner@example.com", "password": "guess" }),
        )
        .await
        .fails(401, "wrong_credentials");
    }
    api.post(
        "/api/v1/session",
        &Auth::None,
        json!({ "email": "owner@example.com", "password": "owner passphrase!" }),
    )
    .await
    .fails(429, "throttled");

    // An expired session.
    sqlx::query("UPDATE sessions SET last_seen_at = last_seen_at - 3600")
        .execute(api.db.pool())
        .await
        .unwrap();
    api.get("/api/v1/orgs", &owner)
        .await
        .fails(401, "not_signed_in");
}

crate::both_engines!(sqlite_bad_input, postgres_bad_input, bad_input);
