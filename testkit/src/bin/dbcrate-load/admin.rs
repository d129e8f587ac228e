//! Setting the organisation up through the control plane's JSON API, as an operator's
//! script would: first sign-in, an API token, a directory destination, enrolment
//! tokens, one database and schedule per agent, and "run now" to queue jobs.

use crate::https::{Answer, Https};
use serde_json::{json, Value};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

/// An API caller with a bearer token.
#[derive(Clone)]
pub struct Admin {
    https: Https,
    base: String,
    org: String,
    bearer: String,
}

async fn post(
    https: &Https,
    url: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> Result<Answer, String> {
    https
        .call(hyper::Method::POST, url, headers, Some(body), TIMEOUT)
        .await
}

impl Admin {
    /// Signs in as `owner` with the one-time password, sets a password, and makes an
    /// admin API token.
    pub async fn sign_in(
        https: Https,
        base: &str,
        org: &str,
        owner: &str,
        one_time: &str,
    ) -> Result<Self, String> {
        let answer = post(
            &https,
            &format!("{base}/api/v1/session"),
            &[],
            &json!({ "email": owner, "password": one_time }),
        )
        .await?;
        let session: Value = answer.json("signing in")?;
        let csrf = session["csrf_token"]
            .as_str()
            .ok_or("no csrf_token in the session")?
            .to_string();
        let cookie = answer
            .set_cookie
            .as_deref()
            .and_then(|c| c.split(';').next())
            .ok_or("no session cookie in the sign-in answer")?
            .to_string();
        let headers = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
        let password = "load generator passphrase";
        post(
            &https,
            &format!("{base}/api/v1/account/password"),
            &headers,
            &json!({ "current_password": one_time, "new_password": password }),
        )
        .await?
        .json::<Value>("setting the password")?;
        let token: Value = post(
            &https,
            &format!("{base}/api/v1/orgs/{org}/api-tokens"),
            &headers,
            &json!({ "name": "dbcrate-load", "role": "admin" }),
        )
        .await?
        .json("making an API token")?;
        Ok(Self {
            https,
            base: base.to_string(),
            org: org.to_string(),
            bearer: format!(
                "Bearer {}",
                token["token"].as_str().ok_or("no token in the answer")?
            ),
        })
    }

    async fn post(&self, path: &str, body: Value, what: &str) -> Result<Value, String> {
        let url = format!("{}/api/v1/orgs/{}{path}", self.base, self.org);
        post(
            &self.https,
            &url,
            &[("authorization", self.bearer.as_str())],
            &body,
        )
        .await?
        .json(what)
    }

    /// A directory destination at `path`; returns its id.
    pub async fn directory_destination(&self, path: &std::path::Path) -> Result<String, String> {
        let made = self
            .post(
                "/destinations",
                json!({ "name": "load", "kind": "directory", "settings": { "path": path } }),
                "making the destination",
            )
            .await?;
        id_of(&made, "destination")
    }

    /// A one-time enrolment token.
    pub async fn enrolment_token(&self, name: &str) -> Result<String, String> {
        let made = self
            .post(
                "/enrolment-tokens",
                json!({ "name": name }),
                "making an enrolment token",
            )
            .await?;
        made["token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no token in {made}"))
    }

    /// A database `name` on `agent_id` with a daily schedule into `destination` (the
    /// scheduler reads every schedule each tick; jobs come from [`Admin::run_now`], so
    /// their queue time is known to the millisecond). Returns the schedule's id.
    pub async fn database_with_schedule(
        &self,
        name: &str,
        agent_id: &str,
        destination: &str,
        minute: u32,
    ) -> Result<String, String> {
        let database = self
            .post(
                "/databases",
                json!({
                    "name": name, "host": "db.load.internal", "port": 5432, "dbname": name,
                    "username": "backup", "tls_mode": "require", "agent_id": agent_id,
                }),
                "making a database",
            )
            .await?;
        let schedule = self
            .post(
                "/schedules",
                json!({
                    "database_id": id_of(&database, "database")?,
                    "destination_id": destination,
                    "cron": format!("{minute} 3 1 1 *"), "time_zone": "UTC",
                    "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0,
                }),
                "making a schedule",
            )
            .await?;
        id_of(&schedule, "schedule")
    }

    /// Queues a backup of `schedule` now; returns the job's id.
    pub async fn run_now(&self, schedule: &str) -> Result<String, String> {
        let queued = self
            .post(&format!("/schedules/{schedule}/run"), json!({}), "run now")
            .await?;
        queued["job"]
            .as_str()
            .or_else(|| queued["job"]["id"].as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("no job in {queued}"))
    }
}

fn id_of(made: &Value, what: &str) -> Result<String, String> {
    made["id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no {what} id in {made}"))
}
