//! Joining an organisation by invitation: inviting an e-mail address answers the same
//! whether or not it has an account (so it reveals nothing about other organisations'
//! people), nobody becomes a member until the invited person accepts, and invitation
//! tokens are one-time, expiring, revocable and bound to their e-mail address.

use crate::harness::{Api, Auth, Reply, NOW};
use dbcrate_control::accounts::members;
use dbcrate_control::accounts::roles::Role;
use dbcrate_control::audit;
use dbcrate_control::db::Db;
use reqwest::Method;
use serde_json::{json, Value};

/// Creates `email` with `password` as the owner of a new organisation `name`, through
/// the library (as another tenant would be); returns (org id, user id).
async fn other_tenant(api: &Api, name: &str, email: &str, password: &str) -> (String, String) {
    let org = dbcrate_control::orgs::create(&api.db, &api.keys, name, "system:test", NOW)
        .await
        .unwrap();
    let user = crate::common::owner_of(&api.db, &org.id, email, password, NOW).await;
    (org.id, user)
}

/// known@b.example (password "known's passphrase"), the owner of "Other tenant":
/// somebody with an account, but not here. Returns (org id, user id).
async fn known_elsewhere(api: &Api) -> (String, String) {
    other_tenant(api, "Other tenant", "known@b.example", "known's passphrase").await
}

async fn count(db: &Db, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(db.pool()).await.unwrap()
}

/// The answer with the invitation's own values (id, token, times) replaced, and the
/// headers that may differ (date) left out.
fn normalised(reply: &Reply, created_at: i64) -> (u16, String, Vec<(String, String)>) {
    let body = reply.json();
    let mut text = reply.text.clone();
    for field in ["id", "token"] {
        text = text.replace(body[field].as_str().unwrap(), &format!("<{field}>"));
    }
    let created = body["created_at"].as_i64().unwrap();
    assert!(
        (created - created_at).abs() <= 2,
        "{created} vs {created_at}"
    );
    assert_eq!(
        body["expires_at"].as_i64().unwrap() - created,
        7 * 86_400,
        "invitations last a week by default"
    );
    text = text.replace(&created.to_string(), "<created_at>").replace(
        &body["expires_at"].as_i64().unwrap().to_string(),
        "<expires_at>",
    );
    let headers = reply
        .headers
        .iter()
        .filter(|(name, _)| *name != "date")
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_string()))
        .collect();
    (reply.status.as_u16(), text, headers)
}

async fn inviting_reveals_nothing(db: Db) {
    let api = Api::start(db).await;
    let (a, owner) = api.init_owner().await;
    let org = a.org.id.clone();
    let (b_org, known) = known_elsewhere(&api).await;
    let members_path = format!("/api/v1/orgs/{org}/members");
    let users_before = count(&api.db, "SELECT count(*) FROM users").await;

    // The same request for an address with an account elsewhere and for one without.
    let now = dbcrate_core::time::unix_now();
    let to_known = api
        .try_invite(&owner, &org, "Known@B.example", "operator")
        .await;
    let to_unknown = api
        .try_invite(&owner, &org, "Fresh@B.example", "operator")
        .await;
    assert_eq!(to_known.status.as_u16(), 201, "{}", to_known.text);
    let (known_json, unknown_json) = (to_known.json(), to_unknown.json());
    assert!(known_json["token"].as_str().unwrap().starts_with("dbci_"));
    assert_ne!(known_json["token"], unknown_json["token"]);
    let (known_status, known_text, known_headers) = normalised(&to_known, now);
    let (unknown_status, unknown_text, unknown_headers) = normalised(&to_unknown, now);
    assert_eq!(known_status, unknown_status);
    assert_eq!(
        known_text.replace("known@b.example", "<email>"),
        unknown_text.replace("fresh@b.example", "<email>"),
        "the answers differ beyond the invitation's own values"
    );
    assert_eq!(known_headers, unknown_headers);
    assert!(
        !to_known.text.contains(&known),
        "the account's id is revealed"
    );
    assert!(!to_known.text.contains("user_id"));

    // No account is created for the unknown address, and the known account is not a
    // member until it accepts.
    assert_eq!(
        count(&api.db, "SELECT count(*) FROM users").await,
        users_before
    );
    assert_eq!(members::role_of(&api.db, &org, &known).await.unwrap(), None);
    let listed = api.get(&members_path, &owner).await.ok();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "{listed}");

    // The invitation list and the audit rows say the same about both, and nothing
    // about the other organisation.
    let invitations = api
        .get(&format!("/api/v1/orgs/{org}/invitations"), &owner)
        .await
        .ok();
    let items = invitations["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&items[0]), keys(&items[1]));
    for item in items {
        assert_eq!(item["status"], "pending");
        assert_eq!(item["role"], "operator");
    }
    let text = invitations.to_string();
    assert!(!text.contains("dbci_"), "tokens are never listed");
    for secret in [b_org.as_str(), "Other tenant", known.as_str()] {
        assert!(!text.contains(secret), "{secret} revealed: {text}");
    }
    let created: Vec<Value> = audit::rows(&api.db, &org)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "invitation.create")
        .map(|r| serde_json::from_str(&r.details).unwrap())
        .collect();
    assert_eq!(created.len(), 2);
    assert_eq!(keys(&created[0]), keys(&created[1]));
    let chain = audit::rows(&api.db, &org).await.unwrap();
    assert!(
        chain
            .iter()
            .all(|r| (r.action != "user.create" && r.action != "member.add")
                || r.actor == "system:init"),
        "an account or membership was made before anyone accepted"
    );

    // Inviting an address that is a member here already is refused, as before; a
    // pending invitation is not silently replaced.
    for email in ["owner@a.example", "known@b.example", "fresh@b.example"] {
        api.try_invite(&owner, &org, email, "viewer")
            .await
            .fails(409, "conflict");
    }
}

crate::both_engines!(
    sqlite_inviting_reveals_nothing,
    postgres_inviting_reveals_nothing,
    inviting_reveals_nothing
);

async fn accepting(db: Db) {
    let api = Api::start(db).await;
    let (a, owner) = api.init_owner().await;
    let org = a.org.id.clone();
    let (b_org, known) = known_elsewhere(&api).await;
    let (_, intruder) = other_tenant(
        &api,
        "Third tenant",
        "intruder@c.example",
        "intruder's passphrase",
    )
    .await;
    let accept = "/api/v1/invitations/accept";
    let create_account = "/api/v1/invitations/create-account";
    let invitation = api
        .invite(&owner, &org, "known@b.example", "operator")
        .await;
    let token = invitation["token"].as_str().unwrap().to_string();

    // Somebody else's account cannot accept it, nor can the inviter, nor can anyone
    // make a new account for an address that has one; the invitation stays pending.
    let intruder_auth = api
        .sign_in("intruder@c.example", "intruder's passphrase", None)
        .await;
    for auth in [&intruder_auth, &owner] {
        api.post(accept, auth, json!({ "token": token }))
            .await
            .fails(403, "forbidden");
    }
    api.create_account(&token, "a takeover passphrase")
        .await
        .fails(409, "conflict");
    api.post(
        "/api/v1/session",
        &Auth::None,
        json!({ "email": "known@b.example", "password": "a takeover passphrase" }),
    )
    .await
    .fails(401, "wrong_credentials");
    assert_eq!(members::role_of(&api.db, &org, &known).await.unwrap(), None);
    assert_eq!(
        members::role_of(&api.db, &org, &intruder).await.unwrap(),
        None
    );
    // Accepting needs a signed-in person.
    api.post(accept, &Auth::None, json!({ "token": token }))
        .await
        .fails(401, "not_signed_in");

    // The invited account accepts: a member with the invited role, once.
    let known_auth = api
        .sign_in("known@b.example", "known's passphrase", None)
        .await;
    let accepted = api
        .post(accept, &known_auth, json!({ "token": token }))
        .await
        .ok();
    assert_eq!(accepted["org_id"], org.as_str());
    assert_eq!(accepted["role"], "operator");
    assert_eq!(
        members::role_of(&api.db, &org, &known).await.unwrap(),
        Some(Role::Operator)
    );
    let replay = api
        .post(accept, &known_auth, json!({ "token": token }))
        .await;
    replay.fails_saying(409, "conflict", "used already");
    api.create_account(&token, "another passphrase")
        .await
        .fails(409, "conflict");
    // The inviter sees the new member, not the member's other organisations.
    let listed = api
        .get(&format!("/api/v1/orgs/{org}/members"), &owner)
        .await
        .ok();
    assert!(listed.to_string().contains("known@b.example"));
    let listed = api
        .get(&format!("/api/v1/orgs/{org}/invitations"), &owner)
        .await
        .ok();
    assert_eq!(listed["items"][0]["status"], "accepted");
    assert!(!listed.to_string().contains(&b_org));

    // A new address: the token creates the account with the person's own password.
    let fresh = api.invite(&owner, &org, "new@a.example", "viewer").await;
    let fresh_token = fresh["token"].as_str().unwrap().to_string();
    api.create_account(&fresh_token, "short")
        .await
        .fails(422, "invalid_input");
    let created = api
        .create_account(&fresh_token, "new person's passphrase")
        .await;
    assert_eq!(created.status.as_u16(), 201, "{}", created.text);
    let new_user = created.json()["user_id"].as_str().unwrap().to_string();
    let new_auth = api
        .sign_in("new@a.example", "new person's passphrase", None)
        .await;
    api.get(&format!("/api/v1/orgs/{org}"), &new_auth)
        .await
        .ok();
    assert_eq!(
        members::role_of(&api.db, &org, &new_user).await.unwrap(),
        Some(Role::Viewer)
    );
    api.create_account(&fresh_token, "a second passphrase")
        .await
        .fails(409, "conflict");
    api.sign_in("new@a.example", "new person's passphrase", None)
        .await;

    // Expired and revoked invitations are refused with what happened.
    let late = api.invite(&owner, &org, "late@a.example", "viewer").await;
    sqlx::query("UPDATE invitations SET expires_at = expires_at - 8 * 86400 WHERE id = $1")
        .bind(late["id"].as_str().unwrap())
        .execute(api.db.pool())
        .await
        .unwrap();
    let refused = api
        .create_account(late["token"].as_str().unwrap(), "late person's passphrase")
        .await;
    refused.fails_saying(409, "conflict", "expired");
    let revoked = api.invite(&owner, &org, "gone@a.example", "viewer").await;
    let revoked_path = format!(
        "/api/v1/orgs/{org}/invitations/{}",
        revoked["id"].as_str().unwrap()
    );
    api.send(Method::DELETE, &revoked_path, &owner, None)
        .await
        .ok();
    api.send(Method::DELETE, &revoked_path, &owner, None)
        .await
        .fails(409, "conflict");
    let refused = api
        .create_account(
            revoked["token"].as_str().unwrap(),
            "gone person's passphrase",
        )
        .await;
    refused.fails_saying(409, "conflict", "revoked");
    assert_eq!(
        count(
            &api.db,
            "SELECT count(*) FROM users WHERE email LIKE '%late%' OR email LIKE '%gone%'"
        )
        .await,
        0
    );
    // Revoking an invitation that was accepted is refused: remove the member instead.
    api.send(
        Method::DELETE,
        &format!(
            "/api/v1/orgs/{org}/invitations/{}",
            invitation["id"].as_str().unwrap()
        ),
        &owner,
        None,
    )
    .await
    .fails(409, "conflict");

    // Bad tokens and bodies: clear errors naming the field.
    let unknown = api
        .post(
            accept,
            &known_auth,
            json!({ "token": format!("dbci_{}", "A".repeat(43)) }),
        )
        .await;
    unknown.fails_saying(422, "invalid_input", "token");
    let malformed = api.create_account("not a token", "a fine passphrase").await;
    malformed.fails_saying(422, "invalid_input", "token");
    api.post(create_account, &Auth::None, json!({ "token": 7 }))
        .await
        .fails(422, "invalid_body");
    let bad_days = api
        .post(
            &format!("/api/v1/orgs/{org}/members"),
            &owner,
            json!({ "email": "x@a.example", "role": "viewer", "expires_in_days": 0 }),
        )
        .await;
    bad_days.fails(422, "invalid_input");
    assert!(
        bad_days.text.contains("expires_in_days"),
        "{}",
        bad_days.text
    );

    // Every step is audited, and no token is written anywhere.
    dbcrate_testkit::assert_audited(
        api.db.pool(),
        &org,
        &[
            "invitation.create",
            "invitation.accept",
            "invitation.revoke",
            "invitation.refused",
            "member.add",
        ],
    )
    .await;
    let dump = dbcrate_testkit::every_text_in_database(api.db.pool()).await;
    for secret in [&token, &fresh_token] {
        assert!(
            !dump.contains(secret.as_str()),
            "a token is stored in clear"
        );
    }
    for chain in [audit::INSTANCE_CHAIN, org.as_str()] {
        assert!(audit::verify(&api.db, chain).await.unwrap().is_ok());
    }
}

crate::both_engines!(sqlite_accepting, postgres_accepting, accepting);

async fn invitation_roles(db: Db) {
    let api = Api::start(db).await;
    let (a, owner) = api.init_owner().await;
    let org = a.org.id.clone();
    let members_path = format!("/api/v1/orgs/{org}/members");
    let invitations = format!("/api/v1/orgs/{org}/invitations");
    let (admin_id, admin_pw) = api
        .add_member(&owner, &org, "admin@a.example", "admin")
        .await;
    let admin = api.sign_in("admin@a.example", &admin_pw, None).await;

    // Nobody invites above their own role; only owners invite (and uninvite) owners.
    api.try_invite(&admin, &org, "boss@a.example", "owner")
        .await
        .fails(403, "forbidden");
    let to_owner = api.invite(&owner, &org, "boss@a.example", "owner").await;
    let to_owner_path = format!("{invitations}/{}", to_owner["id"].as_str().unwrap());
    api.send(Method::DELETE, &to_owner_path, &admin, None)
        .await
        .fails(403, "forbidden");
    let to_viewer = api.invite(&admin, &org, "seer@a.example", "viewer").await;
    let to_admin = api.invite(&admin, &org, "deputy@a.example", "admin").await;
    api.send(Method::DELETE, &to_owner_path, &owner, None)
        .await
        .ok();
    // Tokens can list invitations but cannot invite.
    let bot = api.api_token(&owner, &org, "bot", "admin").await;
    let bot = Auth::Bearer(bot);
    api.get(&invitations, &bot).await.ok();
    api.try_invite(&bot, &org, "bot@a.example", "viewer")
        .await
        .fails(403, "forbidden");

    // An inviter's pending invitations do not outlive their role: demoted to operator,
    // the admin's invitations are withdrawn.
    api.send(
        Method::PATCH,
        &format!("{members_path}/{admin_id}"),
        &owner,
        Some(json!({ "role": "operator" })),
    )
    .await
    .ok();
    for invitation in [&to_viewer, &to_admin] {
        let refused = api
            .create_account(invitation["token"].as_str().unwrap(), "a fine passphrase")
            .await;
        refused.fails_saying(409, "conflict", "revoked");
    }
    let listed = api.get(&invitations, &owner).await.ok();
    assert!(listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["email"] != "admin@a.example")
        .all(|i| i["status"] == "revoked"));
}

crate::both_engines!(
    sqlite_invitation_roles,
    postgres_invitation_roles,
    invitation_roles
);
