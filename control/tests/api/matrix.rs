//! Every organisation route × every role (as a person and as an API token) × a member
//! of another organisation: the expected answer for each, and a foreign organisation's
//! objects answered exactly like missing ones.

use crate::harness::{Api, Auth, NOW};
use dbcrate_control::db::Db;
use reqwest::Method;
use serde_json::{json, Value};

/// A route: method, path (with `{org}`, `{user}`, `{invitation}`, `{token}`, `{agent}`,
/// `{database}`),
/// lowest role, whether a person is needed (tokens refused), and the body.
struct Route {
    method: Method,
    path: &'static str,
    min_role: &'static str,
    person_only: bool,
    body: Option<fn(usize) -> Value>,
}

fn routes() -> Vec<Route> {
    let r = |method, path, min_role, person_only, body| Route {
        method,
        path,
        min_role,
        person_only,
        body,
    };
    vec![
        r(Method::GET, "/api/v1/orgs/{org}", "viewer", false, None),
        r(
            Method::GET,
            "/api/v1/orgs/{org}/members",
            "viewer",
            false,
            None,
        ),
        r(
            Method::POST,
            "/api/v1/orgs/{org}/members",
            "admin",
            true,
            Some(|n| json!({ "email": format!("new{n}@example.com"), "role": "viewer" })),
        ),
        r(
            Method::PATCH,
            "/api/v1/orgs/{org}/members/{user}",
            "admin",
            true,
            Some(|_| json!({ "role": "operator" })),
        ),
        r(
            Method::DELETE,
            "/api/v1/orgs/{org}/members/{user}",
            "admin",
            true,
            None,
        ),
        r(
            Method::POST,
            "/api/v1/orgs/{org}/members/{user}/password-reset",
            "admin",
            true,
            None,
        ),
        r(
            Method::GET,
            "/api/v1/orgs/{org}/invitations",
            "admin",
            false,
            None,
        ),
        r(
            Method::DELETE,
            "/api/v1/orgs/{org}/invitations/{invitation}",
            "admin",
            true,
            None,
        ),
        r(
            Method::GET,
            "/api/v1/orgs/{org}/api-tokens",
            "admin",
            false,
            None,
        ),
        r(
            Method::POST,
            "/api/v1/orgs/{org}/api-tokens",
            "admin",
            true,
            Some(|n| json!({ "name": format!("t{n}"), "role": "viewer" })),
        ),
        r(
            Method::DELETE,
            "/api/v1/orgs/{org}/api-tokens/{token}",
            "admin",
            true,
            None,
        ),
        r(
            Method::GET,
            "/api/v1/orgs/{org}/audit",
            "admin",
            false,
            None,
        ),
        r(
            Method::POST,
            "/api/v1/orgs/{org}/recovery-key",
            "owner",
            true,
            None,
        ),
        r(
            Method::POST,
            "/api/v1/orgs/{org}/customer-seal",
            "owner",
            true,
            Some(|_| json!({ "passphrase": "a passphrase of 16+ characters" })),
        ),
        r(
            Method::POST,
            "/api/v1/orgs/{org}/customer-seal/disable",
            "owner",
            true,
            Some(|_| json!({ "passphrase": "a passphrase of 16+ characters" })),
        ),
        r(
            Method::POST,
            "/api/v1/orgs/{org}/enrolment-tokens",
            "operator",
            false,
            Some(|n| json!({ "name": format!("host{n}") })),
        ),
        r(
            Method::GET,
            "/api/v1/orgs/{org}/agents",
            "viewer",
            false,
            None,
        ),
        r(
            Method::GET,
            "/api/v1/orgs/{org}/databases",
            "viewer",
            false,
            None,
        ),
        r(
            Method::POST,
            "/api/v1/orgs/{org}/databases",
            "admin",
            false,
            Some(|n| {
                json!({ "name": format!("db{n}"), "host": "db.example", "dbname": "app",
                        "username": "backup", "agent_id": "AGENT" })
            }),
        ),
        r(
            Method::PUT,
            "/api/v1/orgs/{org}/databases/{database}",
            "admin",
            false,
            Some(|_| {
                json!({ "host": "db2.example", "dbname": "app", "username": "backup",
                        "agent_id": "AGENT" })
            }),
        ),
        r(
            Method::GET,
            "/api/v1/orgs/{org}/schedules",
            "viewer",
            false,
            None,
        ),
        r(
            Method::GET,
            "/api/v1/orgs/{org}/destinations",
            "viewer",
            false,
            None,
        ),
        r(
            Method::POST,
            "/api/v1/orgs/{org}/destinations",
            "admin",
            false,
            Some(|n| {
                json!({ "name": format!("dir{n}"), "kind": "directory",
                        "settings": { "path": "DIRECTORY" } })
            }),
        ),
        r(
            Method::POST,
            "/api/v1/orgs/{org}/schedules",
            "operator",
            false,
            Some(|_| {
                json!({ "database_id": "DATABASE", "destination_id": "DESTINATION",
                        "cron": "0 3 * * *", "time_zone": "Europe/Berlin", "keep_daily": 7 })
            }),
        ),
        r(
            Method::PUT,
            "/api/v1/orgs/{org}/schedules/{schedule}",
            "operator",
            false,
            Some(|n| {
                json!({ "cron": format!("{} 4 * * *", n % 60), "time_zone": "Europe/Berlin",
                        "keep_last": 0, "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 0,
                        "keep_yearly": 0, "enabled": n % 2 == 0 })
            }),
        ),
        r(
            Method::POST,
            "/api/v1/orgs/{org}/alert-channels",
            "admin",
            false,
            Some(|n| {
                json!({ "name": format!("hook{n}"), "kind": "slack",
                        "url": "https://127.0.0.1:9/hook" })
            }),
        ),
        r(
            Method::GET,
            "/api/v1/orgs/{org}/alert-channels",
            "viewer",
            false,
            None,
        ),
        r(
            Method::POST,
            "/api/v1/orgs/{org}/alert-channels/{channel}/test",
            "admin",
            false,
            None,
        ),
        r(
            Method::DELETE,
            "/api/v1/orgs/{org}/alert-channels/{channel}",
            "admin",
            false,
            None,
        ),
        r(
            Method::GET,
            "/api/v1/orgs/{org}/alerts",
            "viewer",
            false,
            None,
        ),
        r(
            Method::GET,
            "/api/v1/orgs/{org}/alert-deliveries",
            "viewer",
            false,
            None,
        ),
        r(
            Method::POST,
            "/api/v1/orgs/{org}/agents/{agent}/revoke",
            "admin",
            false,
            None,
        ),
    ]
}

fn rank(role: &str) -> usize {
    match role {
        "owner" => 3,
        "admin" => 2,
        "operator" => 1,
        _ => 0,
    }
}

struct Caller {
    label: String,
    auth: Auth,
    role: &'static str,
    is_token: bool,
    foreign: bool,
}

async fn roles_matrix(db: Db) {
    let api = Api::start(db).await;
    let (a, owner) = api.init_owner().await;
    let b = dbcrate_control::orgs::create(&api.db, &api.keys, "Other", "system:test", NOW)
        .await
        .unwrap();
    let org = a.org.id.clone();

    // A person and a token for each role in org A; an owner and an owner's token in B.
    let mut callers = Vec::new();
    for role in ["owner", "admin", "operator", "viewer"] {
        let auth = if role == "owner" {
            owner.clone()
        } else {
            let email = format!("{role}@a.example");
            let (_, password) = api.add_member(&owner, &org, &email, role).await;
            api.sign_in(&email, &password, None).await
        };
        callers.push(Caller {
            label: format!("{role} person"),
            auth,
            role,
            is_token: false,
            foreign: false,
        });
        let token = api.api_token(&owner, &org, role, role).await;
        callers.push(Caller {
            label: format!("{role} token"),
            auth: Auth::Bearer(token),
            role,
            is_token: true,
            foreign: false,
        });
    }
    let stranger = crate::common::owner_of(
        &api.db,
        &b.id,
        "owner@b.example",
        "stranger passphrase",
        NOW,
    )
    .await;
    let foreign = api
        .sign_in("owner@b.example", "stranger passphrase", None)
        .await;
    let foreign_token = api.api_token(&foreign, &b.id, "b", "owner").await;
    callers.push(Caller {
        label: "owner of another org".into(),
        auth: foreign,
        role: "owner",
        is_token: false,
        foreign: true,
    });
    callers.push(Caller {
        label: "token of another org".into(),
        auth: Auth::Bearer(foreign_token),
        role: "owner",
        is_token: true,
        foreign: true,
    });

    let missing_org = "org_00000000000000000000000000000000";
    // Objects that bodies refer to: an agent, a database and a destination of org A.
    let agent = api.enrol_agent(&org).await;
    let database = dbcrate_control::backups::databases::create(
        &api.db,
        &api.keys,
        &org,
        &crate::common::remote_database("matrix", &agent),
        "system:test",
        0,
    )
    .await
    .unwrap()
    .id;
    let destination = crate::backups::fixture_destination(&api.db, &org).await;
    let schedule = dbcrate_control::backups::schedules::create(
        &api.db,
        &org,
        &dbcrate_control::backups::schedules::NewSchedule {
            database_id: &database,
            destination_id: &destination,
            cron: "0 3 * * *",
            time_zone: "UTC",
            retention: Default::default(),
        },
        "system:test",
        0,
    )
    .await
    .unwrap()
    .id;
    let directory = dbcrate_testkit::TempDir::new("matrix-destination").unwrap();
    let mut n = 0;
    let mut checked = 0;
    for route in routes() {
        for caller in &callers {
            n += 1;
            // Fresh targets, so allowed calls succeed and change nothing shared.
            let mut path = route.path.replace("{org}", &org);
            if path.contains("{user}") {
                let email = format!("target{n}@a.example");
                let user = api.add_member(&owner, &org, &email, "viewer").await.0;
                path = path.replace("{user}", &user);
            }
            if path.contains("{invitation}") {
                let email = format!("invitee{n}@a.example");
                let invitation = api.invite(&owner, &org, &email, "viewer").await;
                path = path.replace("{invitation}", invitation["id"].as_str().unwrap());
            }
            if path.contains("{database}") {
                path = path.replace("{database}", &database);
            }
            if path.contains("{channel}") {
                let url = dbcrate_core::secret::SecretString::new("https://127.0.0.1:9/x".into());
                let new = dbcrate_control::alerts::channels::NewChannel {
                    name: &format!("target{n}"),
                    target: dbcrate_control::alerts::channels::Target::Slack(&url),
                };
                let made = dbcrate_control::alerts::channels::create(
                    &api.db,
                    &api.keys,
                    &org,
                    &new,
                    "system:test",
                    0,
                )
                .await
                .unwrap();
                path = path.replace("{channel}", &made.0.id);
            }
            if path.contains("{schedule}") {
                path = path.replace("{schedule}", &schedule);
            }
            if path.contains("{agent}") {
                path = path.replace("{agent}", &api.enrol_agent(&org).await);
            }
            if path.contains("{token}") {
                let body = json!({ "name": format!("target{n}"), "role": "viewer" });
                let created = api
                    .post(&format!("/api/v1/orgs/{org}/api-tokens"), &owner, body)
                    .await;
                path = path.replace("{token}", created.ok()["id"].as_str().unwrap());
            }
            let body = route.body.map(|b| {
                let text = b(n)
                    .to_string()
                    .replace("AGENT", &agent)
                    .replace("DATABASE", &database)
                    .replace("DESTINATION", &destination)
                    .replace("DIRECTORY", &directory.path().display().to_string());
                serde_json::from_str::<Value>(&text).unwrap()
            });
            let reply = api
                .send(route.method.clone(), &path, &caller.auth, body.clone())
                .await;
            let what = format!("{} {} as {}", route.method, route.path, caller.label);
            if caller.foreign {
                reply.fails(404, "not_found");
                // Indistinguishable from an organisation that does not exist.
                let missing = api
                    .send(
                        route.method.clone(),
                        &path.replace(&org, missing_org),
                        &caller.auth,
                        body,
                    )
                    .await;
                assert_eq!(
                    (reply.status, reply.text.clone()),
                    (missing.status, missing.text),
                    "{what}"
                );
            } else if rank(caller.role) < rank(route.min_role)
                || (caller.is_token && route.person_only)
            {
                assert_eq!(reply.status.as_u16(), 403, "{what}: {}", reply.text);
                assert_eq!(reply.code(), "forbidden", "{what}");
            } else if route.path.ends_with("recovery-key") || route.path.contains("customer-seal") {
                // Allowed by role, but the owner here has no recent second factor.
                reply.fails(403, "recent_second_factor_required");
            } else {
                assert!(
                    reply.status.is_success(),
                    "{what}: {} {}",
                    reply.status,
                    reply.text
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, routes().len() * 10);

    // Org A's owner naming org B's objects in org A's paths: not found, like nothing.
    let b_owner = &callers[8].auth;
    let b_path = |what: &str| format!("/api/v1/orgs/{}/{what}", b.id);
    let b_tokens = api.get(&b_path("api-tokens"), b_owner).await.ok();
    let b_token_id = b_tokens["items"][0]["id"].as_str().unwrap().to_string();
    let b_agent = api.enrol_agent(&b.id).await;
    let b_invitation = api
        .invite(b_owner, &b.id, "invitee@b.example", "viewer")
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let owner_auth = &callers[0].auth;
    for (method, path, body) in [
        (
            Method::PATCH,
            format!("/api/v1/orgs/{org}/members/{stranger}"),
            Some(json!({ "role": "viewer" })),
        ),
        (
            Method::DELETE,
            format!("/api/v1/orgs/{org}/members/{stranger}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/orgs/{org}/members/{stranger}/password-reset"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/orgs/{org}/api-tokens/{b_token_id}"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/v1/orgs/{org}/invitations/{b_invitation}"),
            None,
        ),
        (
            Method::POST,
            format!("/api/v1/orgs/{org}/agents/{b_agent}/revoke"),
            None,
        ),
    ] {
        api.send(method, &path, owner_auth, body)
            .await
            .fails(404, "not_found");
    }
    // Still there, untouched.
    let b_invitations = api.get(&b_path("invitations"), b_owner).await.ok();
    assert_eq!(b_invitations["items"][0]["status"], "pending");
    assert_eq!(
        dbcrate_control::accounts::members::role_of(&api.db, &b.id, &stranger)
            .await
            .unwrap(),
        Some(dbcrate_control::accounts::roles::Role::Owner)
    );
}

crate::both_engines!(sqlite_roles_matrix, postgres_roles_matrix, roles_matrix);
