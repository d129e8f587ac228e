//! When each agent was last seen and the version it runs, as the agent list shows them:
//! written by the agent listener from the agent's own calls (the version from its
//! `User-Agent`), at most every half minute, never for a revoked agent.

use crate::harness::{csr, Api};
use dbcrate_control::agents::presence::SEEN_EVERY_SECS;
use dbcrate_control::db::Db;
use serde_json::{json, Value};

async fn listed(api: &Api, owner: &crate::harness::Auth, org: &str, agent: &str) -> Value {
    let list = api
        .get(&format!("/api/v1/orgs/{org}/agents"), owner)
        .await
        .ok();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == agent)
        .cloned()
        .unwrap_or_else(|| panic!("{agent} is not listed: {list}"))
}

async fn agents_are_seen_with_their_version(db: Db) {
    let api = Api::start(db).await;
    let (a, owner) = api.init_owner().await;
    let org = a.org.id.clone();
    let token = api
        .post(
            &format!("/api/v1/orgs/{org}/enrolment-tokens"),
            &owner,
            json!({ "name": "db1" }),
        )
        .await
        .ok()["token"]
        .clone();
    let (key, csr_pem) = csr();
    let enrolled = api
        .post(
            "/agent/v1/enroll",
            &crate::harness::Auth::None,
            json!({ "token": token, "csr": csr_pem, "name": "db1" }),
        )
        .await
        .ok();
    let agent = enrolled["agent_id"].as_str().unwrap().to_string();
    let identity = format!(
        "{}{}",
        key.serialize_pem(),
        enrolled["certificate_chain"].as_str().unwrap()
    );
    let client = api.client(Some(&identity));

    // Enrolled, never called since: not seen, no version.
    let before = listed(&api, &owner, &org, &agent).await;
    assert_eq!(before["last_seen_at"], Value::Null, "{before}");
    assert_eq!(before["version"], Value::Null, "{before}");
    assert_eq!(before["online"], false, "{before}");

    let call = |user_agent: &'static str| {
        client
            .get(api.url("/agent/v1/config"))
            .header("user-agent", user_agent)
            .send()
    };
    assert!(call("dbcrate-agent/9.8.7")
        .await
        .unwrap()
        .status()
        .is_success());
    let seen = listed(&api, &owner, &org, &agent).await;
    assert_eq!(seen["version"], "9.8.7", "{seen}");
    assert_eq!(seen["online"], true, "{seen}");
    let first_seen = seen["last_seen_at"].as_i64().expect("a time");

    // A new version is taken at once; a header that is not an agent's leaves it.
    assert!(call("dbcrate-agent/9.9.0")
        .await
        .unwrap()
        .status()
        .is_success());
    assert_eq!(listed(&api, &owner, &org, &agent).await["version"], "9.9.0");
    assert!(call("dbcrate-agent/<b>9</b>")
        .await
        .unwrap()
        .status()
        .is_success());
    assert!(call("curl/8.0").await.unwrap().status().is_success());
    assert_eq!(listed(&api, &owner, &org, &agent).await["version"], "9.9.0");

    // Long ago: offline; the next call brings it back.
    let long_ago = first_seen - 10 * SEEN_EVERY_SECS - 3600;
    sqlx::query("UPDATE agents SET last_seen_at = $1 WHERE id = $2")
        .bind(long_ago)
        .bind(&agent)
        .execute(api.db.pool())
        .await
        .unwrap();
    assert_eq!(listed(&api, &owner, &org, &agent).await["online"], false);
    assert!(call("dbcrate-agent/9.9.0")
        .await
        .unwrap()
        .status()
        .is_success());
    let back = listed(&api, &owner, &org, &agent).await;
    assert!(
        back["last_seen_at"].as_i64().unwrap() >= first_seen,
        "{back}"
    );
    assert_eq!(back["online"], true, "{back}");

    // A revoked agent's calls are refused before they count as seen.
    api.post(
        &format!("/api/v1/orgs/{org}/agents/{agent}/revoke"),
        &owner,
        json!({}),
    )
    .await
    .ok();
    sqlx::query("UPDATE agents SET last_seen_at = $1 WHERE id = $2")
        .bind(long_ago)
        .bind(&agent)
        .execute(api.db.pool())
        .await
        .unwrap();
    let _ = call("dbcrate-agent/9.9.1").await;
    let revoked = listed(&api, &owner, &org, &agent).await;
    assert_eq!(revoked["last_seen_at"], long_ago, "{revoked}");
    assert_eq!(revoked["version"], "9.9.0", "{revoked}");
}

crate::both_engines!(
    sqlite_agents_are_seen_with_their_version,
    postgres_agents_are_seen_with_their_version,
    agents_are_seen_with_their_version
);
