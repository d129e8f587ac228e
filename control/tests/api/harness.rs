//! A real control-plane API server for tests: in-process, HTTPS on 127.0.0.1 with a
//! freshly generated self-signed certificate (the embedded default), on either
//! database engine, and a client that pins that certificate.

use dbcrate_control::config::AgentSettings;
use dbcrate_control::db::Db;
use dbcrate_control::envelope::MasterKeys;
use dbcrate_control::local::{self, LocalControlPlane};
use dbcrate_testkit::{PgServer, TempDir};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::sync::Arc;

pub const NOW: &str = "2026-11-29T05:00:00Z";

/// Runs `$body(db)` on SQLite and on PostgreSQL, as two tests.
#[macro_export]
macro_rules! both_engines {
    ($sqlite:ident, $postgres:ident, $body:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $sqlite() {
            let engine = $crate::harness::Engine::sqlite();
            $body(engine.db().await).await;
        }
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $postgres() {
            let engine = $crate::harness::Engine::postgres();
            $body(engine.db().await).await;
        }
    };
}

/// A database to test on, kept alive for the test.
pub enum Engine {
    Sqlite(TempDir),
    Postgres(PgServer),
}

impl Engine {
    pub fn sqlite() -> Self {
        Self::Sqlite(TempDir::new("control-api-db").unwrap())
    }

    pub fn postgres() -> Self {
        let server = PgServer::start(17).unwrap();
        server.create_database("control").unwrap();
        Self::Postgres(server)
    }

    pub async fn db(&self) -> Db {
        let url = match self {
            Self::Sqlite(dir) => dbcrate_testkit::sqlite_url(&dir.path().join("c.db")),
            Self::Postgres(server) => server.url("control"),
        };
        let db = Db::connect(&url).await.unwrap();
        db.migrate().await.unwrap();
        db
    }
}

/// How a request authenticates.
#[derive(Clone)]
pub enum Auth {
    None,
    /// A browser session: cookie plus CSRF token.
    Session {
        cookie: String,
        csrf: String,
    },
    /// A session cookie without the CSRF header (what a cross-site form would send).
    CookieOnly(String),
    Bearer(String),
}

impl Auth {
    /// `request` with this authentication's headers (the API and OpenAPI tests send
    /// requests their own ways, but authenticate them alike).
    pub fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => request,
            Auth::Session { cookie, csrf } => request
                .header("cookie", cookie)
                .header("x-csrf-token", csrf),
            Auth::CookieOnly(cookie) => request.header("cookie", cookie),
            Auth::Bearer(token) => request.bearer_auth(token),
        }
    }
}

pub struct Api {
    pub base: String,
    /// The agent listener (mutual TLS).
    pub agent_base: String,
    /// The server certificate (PEM), for clients to pin.
    pub cert_pem: Vec<u8>,
    pub db: Db,
    pub keys: Arc<MasterKeys>,
    client: reqwest::Client,
    _local: LocalControlPlane,
    _dir: TempDir,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

/// A client builder that trusts the server certificate `cert_pem` and no other root.
fn pinned_to(cert_pem: &[u8]) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem).unwrap())
        .tls_built_in_root_certs(false)
}

/// A fresh key and a CSR for it, with `params` asking for whatever a test wants.
pub fn csr_with(params: rcgen::CertificateParams) -> (rcgen::KeyPair, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    (key, csr)
}

/// A fresh key and a plain CSR for it, as an enrolling agent sends.
pub fn csr() -> (rcgen::KeyPair, String) {
    csr_with(rcgen::CertificateParams::default())
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text))
    }

    /// The stable error code of an error answer.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code: {} {}", self.status, self.text))
            .to_string()
    }

    /// Asserts status and error code.
    #[track_caller]
    pub fn fails(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.text);
        assert_eq!(self.code(), code, "{}", self.text);
    }

    /// [`Self::fails`], and the answer's text says `needle`.
    #[track_caller]
    pub fn fails_saying(&self, status: u16, code: &str, needle: &str) {
        self.fails(status, code);
        assert!(
            self.text.contains(needle),
            "no {needle:?} in: {}",
            self.text
        );
    }

    /// Asserts a 2xx and returns the JSON body.
    #[track_caller]
    pub fn ok(&self) -> Value {
        assert!(self.status.is_success(), "{} {}", self.status, self.text);
        self.json()
    }
}

impl Api {
    /// A control plane whose tenants may reach loopback storage and directories under the
    /// temp dir (where the test servers and directories are).
    pub async fn start(db: Db) -> Self {
        Self::start_with_reach(db, local::loopback_reach(&std::env::temp_dir()).unwrap()).await
    }

    /// A control plane with the reach policy `reach`.
    pub async fn start_with_reach(db: Db, reach: dbcrate_storage::reach::ReachPolicy) -> Self {
        let agents = AgentSettings {
            // Long polls answer within a second in tests.
            poll_interval_secs: 1,
            ..AgentSettings::default()
        };
        Self::start_with(db, reach, agents).await
    }

    /// A control plane with the reach policy `reach` and agent settings `agents`.
    pub async fn start_with(
        db: Db,
        reach: dbcrate_storage::reach::ReachPolicy,
        agents: AgentSettings,
    ) -> Self {
        let dir = TempDir::new("control-api").unwrap();
        let keys = Arc::new(crate::common::keys_with_audit_key(&db, NOW).await);
        let local = local::start(
            db.clone(),
            keys.clone(),
            &dir.path().join("tls"),
            agents,
            reach,
        )
        .await
        .unwrap();
        let cert_pem = local.cert_pem.clone().into_bytes();
        let client = pinned_to(&cert_pem).https_only(true).build().unwrap();
        Self {
            base: local.api_url.clone(),
            agent_base: local.agent_url.clone(),
            cert_pem,
            db,
            keys,
            client,
            _local: local,
            _dir: dir,
        }
    }

    /// A client that trusts this server's certificate only, presenting `identity_pem` (a
    /// key and its certificate chain, as an enrolled agent does) when one is given.
    pub fn client(&self, identity_pem: Option<&str>) -> reqwest::Client {
        let mut builder = pinned_to(&self.cert_pem);
        if let Some(pem) = identity_pem {
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        builder.build().unwrap()
    }

    /// Enrols an agent of `org` through the library; returns its id.
    pub async fn enrol_agent(&self, org: &str) -> String {
        let now = dbcrate_core::time::unix_now();
        dbcrate_control::local::enrol_agent(&self.db, &self.keys, org, now)
            .await
            .unwrap()
            .0
            .agent_id
    }

    /// Makes the agent listener trust a newly created organisation CA's agents at once.
    pub async fn _local_reload(&self) {
        self._local.state.reload_agent_tls().await;
    }

    /// The base URL a path is served on: `/agent/…` on the agent listener.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("/agent/") {
            format!("{}{path}", self.agent_base)
        } else {
            format!("{}{path}", self.base)
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        body: Option<Value>,
    ) -> Reply {
        let mut request = auth.apply(self.client.request(method, self.url(path)));
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.finish(request).await
    }

    /// Sends raw bytes with the given content type.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path)).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        if let Auth::Session { cookie, csrf } = auth {
            request = request
                .header("cookie", cookie)
                .header("x-csrf-token", csrf);
        }
        self.finish(request).await
    }

    async fn finish(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        assert!(status.as_u16() < 500, "server error {status}: {text}");
        assert_eq!(
            headers.get("cache-control").map(|v| v.to_str().unwrap()),
            Some("no-store"),
            "every answer is no-store"
        );
        Reply {
            status,
            headers,
            text,
        }
    }

    pub async fn get(&self, path: &str, auth: &Auth) -> Reply {
        self.send(Method::GET, path, auth, None).await
    }

    pub async fn post(&self, path: &str, auth: &Auth, body: Value) -> Reply {
        self.send(Method::POST, path, auth, Some(body)).await
    }

    /// Signs in; returns the session auth (or panics with the reply).
    pub async fn sign_in(&self, email: &str, password: &str, code: Option<&str>) -> Auth {
        let mut body = serde_json::json!({ "email": email, "password": password });
        if let Some(code) = code {
            body["second_factor"] = code.into();
        }
        let reply = self.post("/api/v1/session", &Auth::None, body).await;
        let json = reply.ok();
        let set_cookie = reply.headers["set-cookie"].to_str().unwrap().to_string();
        let cookie = set_cookie.split(';').next().unwrap().to_string();
        Auth::Session {
            cookie,
            csrf: json["csrf_token"].as_str().unwrap().to_string(),
        }
    }

    /// Sets up the first organisation, Acme, with owner@a.example, who signs in and sets
    /// the password "owner passphrase!". Returns the set-up and the owner's session.
    pub async fn init_owner(&self) -> (dbcrate_control::setup::Initialised, Auth) {
        let a = dbcrate_control::setup::init(&self.db, &self.keys, "Acme", "owner@a.example", NOW)
            .await
            .unwrap();
        let owner = self
            .first_sign_in(
                "owner@a.example",
                a.one_time_password.expose_secret(),
                "owner passphrase!",
            )
            .await;
        (a, owner)
    }

    /// Signs in with a one-time password and sets `new_password`.
    pub async fn first_sign_in(&self, email: &str, one_time: &str, new_password: &str) -> Auth {
        let auth = self.sign_in(email, one_time, None).await;
        self.post(
            "/api/v1/account/password",
            &auth,
            serde_json::json!({ "current_password": one_time, "new_password": new_password }),
        )
        .await
        .ok();
        auth
    }

    /// Invites `email` with `role` through the API as `admin`; returns the answer (with
    /// the invitation token).
    pub async fn invite(&self, admin: &Auth, org: &str, email: &str, role: &str) -> Value {
        let reply = self.try_invite(admin, org, email, role).await;
        assert_eq!(reply.status.as_u16(), 201, "{}", reply.text);
        reply.json()
    }

    /// Asks to invite `email` with `role` as `auth`; returns the answer, whatever it is.
    pub async fn try_invite(&self, auth: &Auth, org: &str, email: &str, role: &str) -> Reply {
        self.post(
            &format!("/api/v1/orgs/{org}/members"),
            auth,
            serde_json::json!({ "email": email, "role": role }),
        )
        .await
    }

    /// Makes an API token `name` with `role` in `org` as `auth`; returns the token (the
    /// secret a bearer sends).
    pub async fn api_token(&self, auth: &Auth, org: &str, name: &str, role: &str) -> String {
        self.post(
            &format!("/api/v1/orgs/{org}/api-tokens"),
            auth,
            serde_json::json!({ "name": name, "role": role }),
        )
        .await
        .ok()["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Creates an account with the invitation `token` and `password`, signed out;
    /// returns the answer, whatever it is.
    pub async fn create_account(&self, token: &str, password: &str) -> Reply {
        self.post(
            "/api/v1/invitations/create-account",
            &Auth::None,
            serde_json::json!({ "token": token, "new_password": password }),
        )
        .await
    }

    /// Adds a new person through the API: `admin` invites them, and they create their
    /// account with the invitation token and a password of their own. Returns (user id,
    /// password).
    pub async fn add_member(
        &self,
        admin: &Auth,
        org: &str,
        email: &str,
        role: &str,
    ) -> (String, String) {
        let token = self.invite(admin, org, email, role).await["token"]
            .as_str()
            .unwrap()
            .to_string();
        let password = format!("{email}'s passphrase");
        let json = self.create_account(&token, &password).await.ok();
        (json["user_id"].as_str().unwrap().to_string(), password)
    }
}
