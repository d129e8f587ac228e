//! The OpenAPI document is the contract, generated from the handlers' types
//! (`dbcrate_control::http::openapi`), and these tests hold it to the code:
//!
//! - every route of `control/src/http.rs` is documented, and every documented
//!   operation is served;
//! - the checked-in `control/openapi.json` is the generated document, byte for byte
//!   (regenerate it with `DBCRATE_WRITE_OPENAPI=1 cargo nextest run -p dbcrate-control
//!   --test api openapi`), and the binary serves exactly that;
//! - the live check: every documented response — each route, each status, each content
//!   type — is produced by a real request and its body validated against the documented
//!   schema, on both database engines. The validator reads the document as closed: an
//!   answer with a field the schema does not list fails, as does one missing a required
//!   field or with a value of another type, so a handler cannot add, drop or retype a
//!   field without the document following. `/api/v1` answers must also be in the
//!   canonical form (compact, keys sorted) the `json!` answers had, so their bytes stay
//!   what clients saw before the types;
//! - each schema that mirrors a `dbcrate_core::wire` type matches a fully filled value of
//!   that type exactly.

use crate::common::totp_code;
use crate::harness::{csr, Api, Auth, Reply};
use dbcrate_control::db::Db;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// `(METHOD, path)` pairs from the routers' `.route("…", get(…).post(…))` calls.
fn router_routes() -> BTreeSet<(String, String)> {
    let source = include_str!("../../src/http.rs");
    let mut out = BTreeSet::new();
    for chunk in source.split(".route(").skip(1) {
        let path = chunk.split('"').nth(1).unwrap().to_string();
        // The handler expression ends at the call's closing parenthesis.
        let mut depth = 1;
        let end = chunk
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .unwrap()
            .0;
        let handlers = &chunk[..end];
        for method in ["get", "post", "patch", "delete", "put"] {
            let needle = format!("{method}(");
            let found = handlers
                .match_indices(&needle)
                .any(|(i, _)| i == 0 || !handlers.as_bytes()[i - 1].is_ascii_alphanumeric());
            if found {
                out.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// The document the code generates (and serves).
fn generated() -> &'static str {
    dbcrate_control::http::openapi::document()
}

fn document() -> Value {
    serde_json::from_str(generated()).unwrap()
}

fn documented() -> BTreeSet<(String, String)> {
    let doc = document();
    let mut out = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
            assert!(
                op["responses"].is_object(),
                "{method} {path} has no responses"
            );
            out.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    out
}

#[test]
fn every_route_is_documented_and_every_documented_route_exists() {
    let routes = router_routes();
    assert!(
        routes.len() >= 20,
        "the router parse found too little: {routes:?}"
    );
    assert_eq!(routes, documented());
}

#[test]
fn the_checked_in_document_is_the_generated_one() {
    if std::env::var_os("DBCRATE_WRITE_OPENAPI").is_some() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
        std::fs::write(&path, generated()).unwrap();
        return;
    }
    assert!(
        dbcrate_control::http::OPENAPI == generated(),
        "control/openapi.json is not the document the code generates; regenerate it with \
         DBCRATE_WRITE_OPENAPI=1 cargo nextest run -p dbcrate-control --test api openapi"
    );
}

#[tokio::test]
async fn the_binary_serves_the_document_and_every_operation_answers() {
    let engine = crate::harness::Engine::sqlite();
    let api = Api::start(engine.db().await).await;
    let served = api.get("/api/v1/openapi.json", &Auth::None).await;
    assert_eq!(served.text, generated());
    for (method, path) in documented() {
        let path = path
            .replace("{org}", "org_00000000000000000000000000000000")
            .replace("{user}", "usr_00000000000000000000000000000000")
            .replace("{token}", "tok_00000000000000000000000000000000")
            .replace("{invitation}", "inv_00000000000000000000000000000000")
            .replace("{agent}", "agt_00000000000000000000000000000000")
            .replace("{database}", "dbs_00000000000000000000000000000000")
            .replace("{job}", "job_00000000000000000000000000000000")
            .replace("{schedule}", "sch_00000000000000000000000000000000");
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let reply = api.send(method.clone(), &path, &Auth::None, None).await;
        let code = reply.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(
            code != "no_such_route" && code != "method_not_allowed",
            "{method} {path} is documented but not served: {}",
            reply.text
        );
    }
}

// ---------------------------------------------------------------------------------
// A validator for the part of JSON Schema the document uses. Unknown keywords fail, so
// a construct the validator does not check cannot slip through unchecked.

/// Keywords that only describe (or that the document uses for requests only).
const ANNOTATIONS: &[&str] = &[
    "description",
    "format",
    "title",
    "default",
    "example",
    "examples",
    "contentMediaType",
    "contentEncoding",
    "deprecated",
    "readOnly",
    "writeOnly",
];

struct Schemas<'d> {
    doc: &'d Value,
}

impl<'d> Schemas<'d> {
    fn named(&self, name: &str) -> &'d Value {
        let schema = &self.doc["components"]["schemas"][name];
        assert!(!schema.is_null(), "no schema {name}");
        schema
    }

    fn resolve(&self, reference: &str) -> &'d Value {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("a $ref the validator cannot follow: {reference}"));
        self.named(name)
    }

    /// Errors of `value` against `schema`, each with its JSON path. `exact`: every
    /// documented property must be present too (for fully filled values).
    fn check(
        &self,
        schema: &Value,
        value: &Value,
        at: &str,
        exact: bool,
        errors: &mut Vec<String>,
    ) {
        let Some(map) = schema.as_object() else {
            if schema != &Value::Bool(true) {
                errors.push(format!(
                    "{at}: a schema the validator cannot read: {schema}"
                ));
            }
            return;
        };
        for key in map.keys() {
            let known = [
                "$ref",
                "type",
                "properties",
                "required",
                "additionalProperties",
                "items",
                "enum",
                "oneOf",
                "anyOf",
                "allOf",
                "minimum",
                "maximum",
                "minLength",
                "maxLength",
            ];
            assert!(
                known.contains(&key.as_str()) || ANNOTATIONS.contains(&key.as_str()),
                "{at}: the document uses {key}, which the validator does not check: {schema}"
            );
        }
        if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
            self.check(self.resolve(reference), value, at, exact, errors);
        }
        if let Some(all) = map.get("allOf").and_then(Value::as_array) {
            for s in all {
                self.check(s, value, at, exact, errors);
            }
        }
        for (keyword, wanted) in [("oneOf", Some(1)), ("anyOf", None)] {
            if let Some(branches) = map.get(keyword).and_then(Value::as_array) {
                let passing: Vec<Vec<String>> = branches
                    .iter()
                    .map(|s| {
                        let mut e = Vec::new();
                        self.check(s, value, at, exact, &mut e);
                        e
                    })
                    .collect();
                let ok = passing.iter().filter(|e| e.is_empty()).count();
                let fine = match wanted {
                    Some(n) => ok == n,
                    None => ok >= 1,
                };
                if !fine {
                    errors.push(format!(
                        "{at}: {ok} branches of {keyword} match {value}: {passing:?}"
                    ));
                }
            }
        }
        if let Some(types) = map.get("type") {
            let types: Vec<&str> = match types {
                Value::String(t) => vec![t.as_str()],
                Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap()).collect(),
                other => panic!("{at}: type {other}"),
            };
            let fits = types.iter().any(|t| match *t {
                "null" => value.is_null(),
                "boolean" => value.is_boolean(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "string" => value.is_string(),
                "array" => value.is_array(),
                "object" => value.is_object(),
                other => panic!("{at}: unknown type {other}"),
            });
            if !fits {
                errors.push(format!("{at}: {value} is not of type {types:?}"));
                return;
            }
        }
        if let Some(allowed) = map.get("enum").and_then(Value::as_array) {
            if !allowed.contains(value) {
                errors.push(format!("{at}: {value} is not one of {allowed:?}"));
            }
        }
        if let (Some(min), Some(n)) = (map.get("minimum").and_then(Value::as_f64), value.as_f64()) {
            if n < min {
                errors.push(format!("{at}: {n} is below the minimum {min}"));
            }
        }
        if let (Some(max), Some(n)) = (map.get("maximum").and_then(Value::as_f64), value.as_f64()) {
            if n > max {
                errors.push(format!("{at}: {n} is above the maximum {max}"));
            }
        }
        if let (Some(items), Some(values)) = (map.get("items"), value.as_array()) {
            for (i, v) in values.iter().enumerate() {
                self.check(items, v, &format!("{at}[{i}]"), exact, errors);
            }
        }
        if let Some(object) = value.as_object() {
            let properties = map.get("properties").and_then(Value::as_object);
            for name in map
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = name.as_str().unwrap();
                if !object.contains_key(name) {
                    errors.push(format!("{at}: the required field {name} is missing"));
                }
            }
            if let (true, Some(properties)) = (exact, properties) {
                for name in properties.keys() {
                    if !object.contains_key(name) {
                        errors.push(format!("{at}: the documented field {name} is missing"));
                    }
                }
            }
            for (name, v) in object {
                let path = format!("{at}.{name}");
                match (
                    properties.and_then(|p| p.get(name)),
                    map.get("additionalProperties"),
                ) {
                    (Some(s), _) => self.check(s, v, &path, exact, errors),
                    (None, Some(Value::Bool(true))) => {}
                    (None, Some(s @ Value::Object(_))) => self.check(s, v, &path, exact, errors),
                    // A schema with properties is closed unless it says otherwise: an
                    // answer's field the document does not list is drift.
                    (None, _) if properties.is_some() => {
                        errors.push(format!("{path}: a field the document does not list"))
                    }
                    // A free-form object (settings, details).
                    (None, _) => {}
                }
            }
        }
    }

    #[track_caller]
    fn assert_valid(&self, schema: &Value, value: &Value, exact: bool, what: &str) {
        let mut errors = Vec::new();
        self.check(schema, value, "$", exact, &mut errors);
        assert!(
            errors.is_empty(),
            "{what} does not match its documented schema:\n  {}\nvalue: {value}",
            errors.join("\n  ")
        );
    }
}

/// The smallest body a request schema accepts: each required field with a value of its
/// type (for probes that must get past body parsing).
fn sample(schemas: &Schemas, schema: &Value) -> Value {
    if let Some(reference) = schema["$ref"].as_str() {
        return sample(schemas, schemas.resolve(reference));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec!["object"],
    };
    match types.iter().find(|t| **t != "null").copied() {
        Some("string") => json!("x"),
        Some("integer") | Some("number") => json!(1),
        Some("boolean") => json!(false),
        Some("array") => json!([]),
        _ => {
            let mut out = serde_json::Map::new();
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap();
                out.insert(
                    name.to_string(),
                    sample(schemas, &schema["properties"][name]),
                );
            }
            Value::Object(out)
        }
    }
}

// ---------------------------------------------------------------------------------
// The live check.

/// A request body for [`Live::call`].
enum Payload {
    None,
    Json(Value),
    /// Bytes with an optional content type.
    Raw(Option<&'static str>, Vec<u8>),
}

/// Which listener and client a call uses.
#[derive(Clone, Copy)]
enum Via<'c> {
    Api,
    /// The agent listener with this client (with or without a certificate).
    Agent(&'c reqwest::Client),
}

/// Sends requests, validates every answer against the document, and records which
/// documented responses were seen.
struct Live<'a> {
    api: &'a Api,
    doc: Value,
    client: reqwest::Client,
    /// `(METHOD, path template, status, content type)` of each validated answer.
    seen: BTreeSet<(String, String, String, String)>,
}

impl Reply {
    /// The JSON body (`Null` when there is none), after asserting the status: how
    /// [`Live::expect`] and [`Live::agent`] finish.
    #[track_caller]
    fn body_after(&self, status: u16, method: &Method, template: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "{method} {template}: {}",
            self.text
        );
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

fn fill(template: &str, args: &[(&str, &str)]) -> String {
    let mut path = template.to_string();
    for (name, value) in args {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    assert!(!path.contains('{'), "{template}: a parameter is missing");
    path
}

impl<'a> Live<'a> {
    fn new(api: &'a Api) -> Self {
        Self {
            api,
            doc: document(),
            client: api.client(None),
            seen: BTreeSet::new(),
        }
    }

    /// Sends `method template` (with `args` in the path), validates the answer against
    /// the document and returns it.
    async fn call(
        &mut self,
        via: Via<'_>,
        method: Method,
        template: &str,
        args: &[(&str, &str)],
        auth: &Auth,
        payload: Payload,
    ) -> Reply {
        let path = fill(template, args);
        // A query string is part of the request, not of the documented route.
        let template = template
            .split_once('?')
            .map_or(template, |(route, _)| route);
        let client = match via {
            Via::Api => &self.client,
            Via::Agent(client) => client,
        };
        let request = auth.apply(client.request(method.clone(), self.api.url(&path)));
        let request = match payload {
            Payload::None => request,
            Payload::Json(body) => request.json(&body),
            Payload::Raw(content_type, bytes) => {
                let request = request.body(bytes);
                match content_type {
                    Some(ct) => request.header("content-type", ct),
                    None => request,
                }
            }
        };
        let response = request.send().await.unwrap();
        let reply = Reply {
            status: response.status(),
            headers: response.headers().clone(),
            text: String::from_utf8_lossy(&response.bytes().await.unwrap()).into_owned(),
        };
        self.validate(&method, template, &reply);
        reply
    }

    /// [`Self::call`] on the API listener, asserting the status.
    async fn expect(
        &mut self,
        status: u16,
        method: Method,
        template: &str,
        args: &[(&str, &str)],
        auth: &Auth,
        payload: Payload,
    ) -> Value {
        let reply = self
            .call(Via::Api, method.clone(), template, args, auth, payload)
            .await;
        reply.body_after(status, &method, template)
    }

    /// [`Self::call`] on the agent listener with `client`, asserting the status.
    async fn agent(
        &mut self,
        client: &reqwest::Client,
        status: u16,
        method: Method,
        template: &str,
        args: &[(&str, &str)],
        payload: Payload,
    ) -> Value {
        let reply = self
            .call(
                Via::Agent(client),
                method.clone(),
                template,
                args,
                &Auth::None,
                payload,
            )
            .await;
        reply.body_after(status, &method, template)
    }

    fn validate(&mut self, method: &Method, template: &str, reply: &Reply) {
        let what = format!("{method} {template} → {}", reply.status);
        let status = reply.status.as_u16().to_string();
        let op = &self.doc["paths"][template][method.as_str().to_ascii_lowercase()];
        assert!(op.is_object(), "{what}: not a documented operation");
        let documented = &op["responses"][&status];
        assert!(
            documented.is_object(),
            "{what}: this status is not documented: {}",
            reply.text
        );
        for (name, _) in documented["headers"].as_object().into_iter().flatten() {
            assert!(
                reply.headers.contains_key(name.as_str()),
                "{what}: the documented header {name} is missing"
            );
        }
        let content_type = reply
            .headers
            .get("content-type")
            .map(|v| {
                v.to_str()
                    .unwrap()
                    .split(';')
                    .next()
                    .unwrap()
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        let Some(contents) = documented["content"].as_object() else {
            assert!(
                reply.text.is_empty(),
                "{what}: a body where none is documented"
            );
            self.seen
                .insert((method.to_string(), template.into(), status, String::new()));
            return;
        };
        let media = contents.get(&content_type).unwrap_or_else(|| {
            panic!("{what}: the content type {content_type:?} is not documented")
        });
        let schemas = Schemas { doc: &self.doc };
        if content_type == "application/json" {
            let body: Value = serde_json::from_str(&reply.text)
                .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", reply.text));
            schemas.assert_valid(&media["schema"], &body, false, &what);
            if template.starts_with("/api/v1/") && template != "/api/v1/openapi.json" {
                assert_eq!(
                    reply.text,
                    serde_json::to_string(&body).unwrap(),
                    "{what}: the answer is not in the canonical form (compact, keys sorted)"
                );
            }
        } else {
            assert!(
                !reply.text.is_empty(),
                "{what}: an empty {content_type} body"
            );
        }
        self.seen
            .insert((method.to_string(), template.into(), status, content_type));
    }

    /// Every documented `(METHOD, path, status, content type)`.
    fn documented_responses(&self) -> BTreeSet<(String, String, String, String)> {
        let mut out = BTreeSet::new();
        for (path, ops) in self.doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                for (status, response) in op["responses"].as_object().unwrap() {
                    let types: Vec<String> = match response["content"].as_object() {
                        Some(c) => c.keys().cloned().collect(),
                        None => vec![String::new()],
                    };
                    for t in types {
                        out.insert((method.to_ascii_uppercase(), path.clone(), status.clone(), t));
                    }
                }
            }
        }
        out
    }

    /// The documented operations as `(method, template, operation)`.
    fn operations(&self) -> Vec<(Method, String, Value)> {
        let mut out = Vec::new();
        for (path, ops) in self.doc["paths"].as_object().unwrap() {
            for (method, op) in ops.as_object().unwrap() {
                let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
                out.push((method, path.clone(), op.clone()));
            }
        }
        out
    }
}

/// Seeds `count` failed attempts under `key`, so the next attempt is throttled.
async fn seed_failures(db: &Db, key: &str, count: i64) {
    let now = dbcrate_core::time::unix_now();
    for _ in 0..count {
        sqlx::query(
            "INSERT INTO sign_in_failures (throttle_key, at, attempt_id) VALUES ($1, $2, $3)",
        )
        .bind(key)
        .bind(now)
        .bind(dbcrate_control::error::new_id("att").unwrap())
        .execute(db.pool())
        .await
        .unwrap();
    }
}

async fn forgive(db: &Db, key: &str) {
    sqlx::query("DELETE FROM sign_in_failures WHERE throttle_key = $1")
        .bind(key)
        .execute(db.pool())
        .await
        .unwrap();
}

fn session_cookie(auth: &Auth) -> String {
    match auth {
        Auth::Session { cookie, .. } => cookie.clone(),
        _ => panic!("not a session"),
    }
}

fn text<'v>(value: &'v Value, field: &str) -> &'v str {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("no {field} in {value}"))
}

const PASS: &str = "correct horse battery staple";

async fn every_documented_answer_matches_a_real_one(db: Db) {
    use Method as M;
    use Payload::{Json as J, None as Empty};
    let api = Api::start(db).await;
    let mut live = Live::new(&api);
    let (init, owner) = api.init_owner().await;
    let org = init.org.id.clone();
    let owner_id = init.owner_id.clone();
    let o = [("org", org.as_str())];

    live.expect(200, M::GET, "/api/v1/openapi.json", &[], &Auth::None, Empty)
        .await;

    // Sessions.
    let signed_in = live
        .call(
            Via::Api,
            M::POST,
            "/api/v1/session",
            &[],
            &Auth::None,
            J(json!({ "email": "owner@a.example", "password": "owner passphrase!" })),
        )
        .await;
    assert_eq!(signed_in.status.as_u16(), 200, "{}", signed_in.text);
    let second_session = Auth::Session {
        cookie: signed_in.headers["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string(),
        csrf: text(&signed_in.json(), "csrf_token").to_string(),
    };
    live.expect(
        401,
        M::POST,
        "/api/v1/session",
        &[],
        &Auth::None,
        J(json!({ "email": "owner@a.example", "password": "not the passphrase" })),
    )
    .await;
    let throttled = dbcrate_control::accounts::throttle::account_key(&api.keys, "slow@a.example");
    seed_failures(&api.db, &throttled, 5).await;
    live.expect(
        429,
        M::POST,
        "/api/v1/session",
        &[],
        &Auth::None,
        J(json!({ "email": "slow@a.example", "password": "whatever it is" })),
    )
    .await;
    live.expect(200, M::GET, "/api/v1/session", &[], &owner, Empty)
        .await;
    live.expect(
        200,
        M::DELETE,
        "/api/v1/session",
        &[],
        &second_session,
        Empty,
    )
    .await;

    // Members, invitations and accounts.
    let members = "/api/v1/orgs/{org}/members";
    let invited = live
        .expect(
            201,
            M::POST,
            members,
            &o,
            &owner,
            J(json!({ "email": "operator@a.example", "role": "operator" })),
        )
        .await;
    let create_account = "/api/v1/invitations/create-account";
    let account =
        json!({ "token": text(&invited, "token"), "new_password": "operator's passphrase" });
    let joined = live
        .expect(
            201,
            M::POST,
            create_account,
            &[],
            &Auth::None,
            J(account.clone()),
        )
        .await;
    let operator_id = text(&joined, "user_id").to_string();
    live.expect(409, M::POST, create_account, &[], &Auth::None, J(account))
        .await;
    let operator = api
        .sign_in("operator@a.example", "operator's passphrase", None)
        .await;
    live.expect(
        409,
        M::POST,
        members,
        &o,
        &owner,
        J(json!({ "email": "operator@a.example", "role": "viewer" })),
    )
    .await;
    let (viewer_id, _) = api
        .add_member(&owner, &org, "viewer@a.example", "viewer")
        .await;
    let (leaver_id, leaver_password) = api
        .add_member(&owner, &org, "leaver@a.example", "viewer")
        .await;
    live.expect(200, M::GET, members, &o, &owner, Empty).await;
    let member = "/api/v1/orgs/{org}/members/{user}";
    let a = [("org", org.as_str()), ("user", operator_id.as_str())];
    live.expect(
        200,
        M::PATCH,
        member,
        &a,
        &owner,
        J(json!({ "role": "operator" })),
    )
    .await;
    let mine = [("org", org.as_str()), ("user", owner_id.as_str())];
    live.expect(
        409,
        M::PATCH,
        member,
        &mine,
        &owner,
        J(json!({ "role": "admin" })),
    )
    .await;
    live.expect(409, M::DELETE, member, &mine, &owner, Empty)
        .await;
    let leaver = [("org", org.as_str()), ("user", leaver_id.as_str())];
    live.expect(200, M::DELETE, member, &leaver, &owner, Empty)
        .await;

    // A password reset: the viewer keeps a one-time password (a caller every route with
    // a person or a token refuses with 403 until it is changed).
    let reset = "/api/v1/orgs/{org}/members/{user}/password-reset";
    let v = [("org", org.as_str()), ("user", viewer_id.as_str())];
    let one_time = live.expect(200, M::POST, reset, &v, &owner, Empty).await;
    let must_change = api
        .sign_in(
            "viewer@a.example",
            text(&one_time, "one_time_password"),
            None,
        )
        .await;
    live.expect(422, M::POST, reset, &mine, &owner, Empty).await;
    // A member of another organisation too is not reset here.
    let other = dbcrate_control::orgs::create(
        &api.db,
        &api.keys,
        "Other",
        "system:test",
        "2026-11-29T05:00:00Z",
    )
    .await
    .unwrap();
    sqlx::query("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'viewer')")
        .bind(&other.id)
        .bind(&operator_id)
        .execute(api.db.pool())
        .await
        .unwrap();
    live.expect(409, M::POST, reset, &a, &owner, Empty).await;

    // Invitations: revoke one, accept one.
    let invitations = "/api/v1/orgs/{org}/invitations";
    let again = api.invite(&owner, &org, "leaver@a.example", "viewer").await;
    live.expect(200, M::GET, invitations, &o, &owner, Empty)
        .await;
    let to_revoke = api.invite(&owner, &org, "nobody@a.example", "viewer").await;
    let invitation = "/api/v1/orgs/{org}/invitations/{invitation}";
    let i = [
        ("org", org.as_str()),
        ("invitation", text(&to_revoke, "id")),
    ];
    live.expect(200, M::DELETE, invitation, &i, &owner, Empty)
        .await;
    live.expect(409, M::DELETE, invitation, &i, &owner, Empty)
        .await;
    let leaver_session = api
        .sign_in("leaver@a.example", &leaver_password, None)
        .await;
    let accept = "/api/v1/invitations/accept";
    let token = json!({ "token": text(&again, "token") });
    live.expect(200, M::POST, accept, &[], &leaver_session, J(token.clone()))
        .await;
    live.expect(409, M::POST, accept, &[], &leaver_session, J(token))
        .await;

    // The account: a second factor for the owner (kept for step-ups), password changes.
    let begin = "/api/v1/account/second-factor";
    let password = json!({ "password": "owner passphrase!" });
    let pending = live
        .expect(200, M::POST, begin, &[], &owner, J(password.clone()))
        .await;
    let seed = text(&pending, "secret").to_string();
    let confirm = "/api/v1/account/second-factor/confirm";
    let enabled = live
        .expect(
            200,
            M::POST,
            confirm,
            &[],
            &owner,
            J(json!({ "code": totp_code(&seed, 0), "password": "owner passphrase!" })),
        )
        .await;
    let recovery_code = enabled["recovery_codes"][0].as_str().unwrap().to_string();
    live.expect(409, M::POST, begin, &[], &owner, J(password.clone()))
        .await;
    let owner_key = dbcrate_control::accounts::throttle::account_key(&api.keys, "owner@a.example");
    let disable = "/api/v1/account/second-factor/disable";
    let wrong_code = json!({ "code": "000000", "password": "owner passphrase!" });
    seed_failures(&api.db, &owner_key, 5).await;
    live.expect(429, M::POST, begin, &[], &owner, J(password.clone()))
        .await;
    live.expect(429, M::POST, confirm, &[], &owner, J(wrong_code.clone()))
        .await;
    live.expect(429, M::POST, disable, &[], &owner, J(wrong_code.clone()))
        .await;
    let change = "/api/v1/account/password";
    live.expect(
        429,
        M::POST,
        change,
        &[],
        &owner,
        J(json!({ "current_password": "owner passphrase!", "new_password": "owner passphrase!" })),
    )
    .await;
    forgive(&api.db, &owner_key).await;
    live.expect(
        409,
        M::POST,
        disable,
        &[],
        &operator,
        J(json!({ "code": "000000", "password": "operator's passphrase" })),
    )
    .await;
    live.expect(
        200,
        M::POST,
        change,
        &[],
        &operator,
        J(json!({
            "current_password": "operator's passphrase",
            "new_password": "operator's new passphrase",
        })),
    )
    .await;
    let step_up = "/api/v1/session/second-factor";
    let sf_key = dbcrate_control::accounts::throttle::second_factor_key(&owner_id);
    seed_failures(&api.db, &sf_key, 5).await;
    live.expect(
        429,
        M::POST,
        step_up,
        &[],
        &owner,
        J(json!({ "code": "000000" })),
    )
    .await;
    forgive(&api.db, &sf_key).await;
    live.expect(
        200,
        M::POST,
        step_up,
        &[],
        &owner,
        J(json!({ "code": totp_code(&seed, 1) })),
    )
    .await;

    // API tokens.
    let tokens = "/api/v1/orgs/{org}/api-tokens";
    let made = live
        .expect(
            201,
            M::POST,
            tokens,
            &o,
            &owner,
            J(json!({ "name": "ci", "role": "viewer" })),
        )
        .await;
    let bearer = Auth::Bearer(text(&made, "token").to_string());
    live.expect(200, M::GET, tokens, &o, &owner, Empty).await;
    let spare = api
        .post(
            &fill(tokens, &o),
            &owner,
            json!({ "name": "spare", "role": "viewer" }),
        )
        .await
        .ok();
    let t = [("org", org.as_str()), ("token", text(&spare, "id"))];
    live.expect(
        200,
        M::DELETE,
        "/api/v1/orgs/{org}/api-tokens/{token}",
        &t,
        &owner,
        Empty,
    )
    .await;

    // Agents: enrolment on the agent listener, then every agent route with the
    // certificate it was given.
    let enrolment = "/api/v1/orgs/{org}/enrolment-tokens";
    let created = live
        .expect(
            201,
            M::POST,
            enrolment,
            &o,
            &owner,
            J(json!({ "name": "db1" })),
        )
        .await;
    let no_certificate = api.client(None);
    let (key, request) = csr();
    let enrol = json!({ "token": text(&created, "token"), "csr": request, "name": "db1" });
    let enrolled = live
        .agent(
            &no_certificate,
            200,
            M::POST,
            "/agent/v1/enroll",
            &[],
            J(enrol.clone()),
        )
        .await;
    live.agent(
        &no_certificate,
        401,
        M::POST,
        "/agent/v1/enroll",
        &[],
        J(enrol),
    )
    .await;
    let agent_id = text(&enrolled, "agent_id").to_string();
    api._local_reload().await;
    let agent = api.client(Some(&format!(
        "{}{}",
        key.serialize_pem(),
        text(&enrolled, "certificate_chain")
    )));
    live.agent(&agent, 200, M::GET, "/agent/v1/config", &[], Empty)
        .await;
    live.agent(&agent, 200, M::GET, "/agent/v1/crl", &[], Empty)
        .await;
    let (_, renewal) = csr();
    live.agent(
        &agent,
        200,
        M::POST,
        "/agent/v1/certificate/renew",
        &[],
        J(json!({ "csr": renewal })),
    )
    .await;
    live.expect(200, M::GET, "/api/v1/orgs/{org}/agents", &o, &owner, Empty)
        .await;
    let doomed = api.enrol_agent(&org).await;
    let d = [("org", org.as_str()), ("agent", doomed.as_str())];
    live.expect(
        200,
        M::POST,
        "/api/v1/orgs/{org}/agents/{agent}/revoke",
        &d,
        &owner,
        Empty,
    )
    .await;

    // Destinations, databases, schedules, a backup job through the agent, a restore.
    let destinations = "/api/v1/orgs/{org}/destinations";
    let dir = dbcrate_testkit::TempDir::new("control-openapi-destination").unwrap();
    let destination =
        json!({ "name": "local", "kind": "directory", "settings": { "path": dir.path() } });
    let saved = live
        .expect(
            201,
            M::POST,
            destinations,
            &o,
            &owner,
            J(destination.clone()),
        )
        .await;
    live.expect(409, M::POST, destinations, &o, &owner, J(destination))
        .await;
    live.expect(
        422,
        M::POST,
        destinations,
        &o,
        &owner,
        J(json!({ "name": "nowhere", "kind": "directory", "settings": { "path": "/nonexistent/backups" } })),
    )
    .await;
    live.expect(200, M::GET, destinations, &o, &owner, Empty)
        .await;
    let databases = "/api/v1/orgs/{org}/databases";
    let database = json!({
        "name": "shop", "host": "db1.internal", "dbname": "shop", "username": "backup",
        "password": "a database password", "agent_id": agent_id,
    });
    let shop = live
        .expect(201, M::POST, databases, &o, &owner, J(database.clone()))
        .await;
    live.expect(409, M::POST, databases, &o, &owner, J(database))
        .await;
    live.expect(200, M::GET, databases, &o, &owner, Empty).await;
    let db_args = [("org", org.as_str()), ("database", text(&shop, "id"))];
    live.expect(
        200,
        M::GET,
        "/api/v1/orgs/{org}/databases/{database}",
        &db_args,
        &owner,
        Empty,
    )
    .await;
    let edited = live
        .expect(
            200,
            M::PUT,
            "/api/v1/orgs/{org}/databases/{database}",
            &db_args,
            &owner,
            J(json!({
                "host": "db2.internal", "dbname": "shop", "username": "backup",
                "remove_password": true, "agent_id": agent_id,
            })),
        )
        .await;
    assert_eq!(edited["host"], "db2.internal");
    assert_eq!(edited["has_password"], false);
    live.expect(
        422,
        M::PUT,
        "/api/v1/orgs/{org}/databases/{database}",
        &db_args,
        &owner,
        J(json!({
            "host": "db2.internal", "dbname": "shop", "username": "backup",
            "password": "new", "remove_password": true, "agent_id": agent_id,
        })),
    )
    .await;
    let schedules = "/api/v1/orgs/{org}/schedules";
    let schedule = live
        .expect(
            201,
            M::POST,
            schedules,
            &o,
            &owner,
            J(json!({
                "database_id": text(&shop, "id"), "destination_id": text(&saved, "id"),
                "cron": "30 2 * * *", "keep_daily": 7,
            })),
        )
        .await;
    live.expect(200, M::GET, schedules, &o, &owner, Empty).await;
    let s = [("org", org.as_str()), ("schedule", text(&schedule, "id"))];
    let changed = live
        .expect(
            200,
            M::PUT,
            "/api/v1/orgs/{org}/schedules/{schedule}",
            &s,
            &owner,
            J(json!({
                "cron": "30 2 * * *", "time_zone": "Europe/Berlin", "keep_last": 0,
                "keep_daily": 7, "keep_weekly": 4, "keep_monthly": 0, "keep_yearly": 0,
                "enabled": true,
            })),
        )
        .await;
    assert_eq!(changed["keep_weekly"], 4);
    assert_eq!(changed["time_zone"], "Europe/Berlin");
    let grace = "/api/v1/orgs/{org}/schedules/{schedule}/grace";
    let patient = live
        .expect(200, M::PUT, grace, &s, &owner, J(json!({ "minutes": 240 })))
        .await;
    assert_eq!(patient["grace_minutes"], 240);
    live.expect(422, M::PUT, grace, &s, &owner, J(json!({ "minutes": 1 })))
        .await;
    let schedule_drills = "/api/v1/orgs/{org}/schedules/{schedule}/drills";
    let drilled = live
        .expect(
            200,
            M::PUT,
            schedule_drills,
            &s,
            &owner,
            J(json!({
                "every": 7, "database_id": text(&shop, "id"),
                "check_query": "SELECT count(*) > 0 FROM orders",
            })),
        )
        .await;
    assert_eq!(drilled["every"], 7);
    live.expect(
        422,
        M::PUT,
        schedule_drills,
        &s,
        &owner,
        J(json!({ "every": 0, "database_id": text(&shop, "id") })),
    )
    .await;
    live.expect(200, M::GET, "/api/v1/orgs/{org}/drills", &o, &owner, Empty)
        .await;
    live.expect(204, M::DELETE, schedule_drills, &s, &owner, Empty)
        .await;
    live.expect(
        202,
        M::POST,
        "/api/v1/orgs/{org}/schedules/{schedule}/run",
        &s,
        &owner,
        Empty,
    )
    .await;
    let claimed = live
        .agent(&agent, 200, M::GET, "/agent/v1/jobs/next", &[], Empty)
        .await;
    let job = claimed["job"]["id"].as_str().unwrap().to_string();
    let object_key = claimed["job"]["object_key"].as_str().unwrap().to_string();
    let j = [("job", job.as_str())];
    let nobody = [("job", "job_00000000000000000000000000000000")];
    let credentials = "/agent/v1/jobs/{job}/credentials";
    live.agent(&agent, 200, M::GET, credentials, &j, Empty)
        .await;
    live.agent(&agent, 409, M::GET, credentials, &j, Empty)
        .await;
    live.agent(&agent, 404, M::GET, credentials, &nobody, Empty)
        .await;
    let progress = "/agent/v1/jobs/{job}/progress";
    let beat = json!({ "bytes": 1024, "phase": "backing up" });
    live.agent(&agent, 200, M::POST, progress, &j, J(beat.clone()))
        .await;
    live.agent(&agent, 404, M::POST, progress, &nobody, J(beat))
        .await;
    let complete = "/agent/v1/jobs/{job}/complete";
    let report = json!({
        "succeeded": true, "object_key": object_key, "size": 4096, "dump_size": 9000,
        "duration_ms": 1500, "sha256": "ab".repeat(32), "pg_server_version": "17.2",
        "pg_dump_version": "17.2", "attempt": 1,
    });
    live.agent(&agent, 200, M::POST, complete, &j, J(report.clone()))
        .await;
    live.agent(&agent, 404, M::POST, complete, &j, J(report))
        .await;
    // An idle long poll answers a null job.
    live.agent(&agent, 200, M::GET, "/agent/v1/jobs/next", &[], Empty)
        .await;
    let backups = live
        .expect(200, M::GET, "/api/v1/orgs/{org}/backups", &o, &owner, Empty)
        .await;
    for (query, status) in [("?limit=1", 200), ("?page=2", 400), ("?limit=0", 422)] {
        let path = format!("/api/v1/orgs/{{org}}/backups{query}");
        let reply = live.call(Via::Api, M::GET, &path, &o, &owner, Empty).await;
        assert_eq!(reply.status.as_u16(), status, "{path}: {}", reply.text);
    }

    // Organisations and the organisation key (the owner stepped up a moment ago).
    let restores = "/api/v1/orgs/{org}/restores";
    live.expect(200, M::GET, "/api/v1/orgs", &[], &owner, Empty)
        .await;
    live.expect(200, M::GET, "/api/v1/orgs/{org}", &o, &owner, Empty)
        .await;
    let export = "/api/v1/orgs/{org}/recovery-key";
    let key = live
        .call(Via::Api, M::POST, export, &o, &owner, Empty)
        .await;
    assert_eq!(key.status.as_u16(), 200, "{}", key.text);
    live.expect(422, M::POST, export, &o, &owner, J(json!({ "extra": 1 })))
        .await;
    let seal = "/api/v1/orgs/{org}/customer-seal";
    let unseal = "/api/v1/orgs/{org}/customer-seal/disable";
    live.expect(
        200,
        M::POST,
        seal,
        &o,
        &owner,
        J(json!({ "passphrase": PASS })),
    )
    .await;
    live.expect(
        409,
        M::POST,
        seal,
        &o,
        &owner,
        J(json!({ "passphrase": PASS })),
    )
    .await;
    live.expect(409, M::POST, export, &o, &owner, Empty).await;
    let restore = json!({
        "backup_id": backups["items"][0]["id"], "target_database_id": text(&shop, "id"),
    });
    live.expect(409, M::POST, restores, &o, &owner, J(restore.clone()))
        .await;
    let org_key = format!("customer-passphrase:{org}");
    seed_failures(&api.db, &org_key, 10).await;
    let with_pass = json!({ "passphrase": PASS });
    live.expect(429, M::POST, export, &o, &owner, J(with_pass.clone()))
        .await;
    live.expect(429, M::POST, unseal, &o, &owner, J(with_pass.clone()))
        .await;
    let mut restore_with_pass = restore.clone();
    restore_with_pass["passphrase"] = json!(PASS);
    live.expect(429, M::POST, restores, &o, &owner, J(restore_with_pass))
        .await;
    forgive(&api.db, &org_key).await;
    live.expect(200, M::POST, unseal, &o, &owner, J(with_pass.clone()))
        .await;
    live.expect(409, M::POST, unseal, &o, &owner, J(with_pass))
        .await;
    live.expect(202, M::POST, restores, &o, &owner, J(restore))
        .await;

    // Alert channels, alerts and the delivery log. (The test notification goes to a
    // closed loopback port: answered 200 with the failed attempt in the record.)
    let channels = "/api/v1/orgs/{org}/alert-channels";
    let channel = json!({ "name": "ops", "kind": "webhook", "url": "https://127.0.0.1:9/hook" });
    let created = live
        .expect(201, M::POST, channels, &o, &owner, J(channel.clone()))
        .await;
    assert!(text(&created, "signing_key").starts_with("dbcwh_"));
    assert!(
        !created.to_string().contains("/hook"),
        "the URL is never answered"
    );
    live.expect(409, M::POST, channels, &o, &owner, J(channel))
        .await;
    live.expect(200, M::GET, channels, &o, &owner, Empty).await;
    let c = [
        ("org", org.as_str()),
        ("channel", text(&created["channel"], "id")),
    ];
    let tested = live
        .expect(
            200,
            M::POST,
            "/api/v1/orgs/{org}/alert-channels/{channel}/test",
            &c,
            &owner,
            Empty,
        )
        .await;
    assert_eq!(tested["event"], "test");
    assert_eq!(tested["attempts"], 1);
    live.expect(200, M::GET, "/api/v1/orgs/{org}/alerts", &o, &owner, Empty)
        .await;
    live.expect(
        200,
        M::GET,
        "/api/v1/orgs/{org}/alert-deliveries",
        &o,
        &owner,
        Empty,
    )
    .await;
    live.expect(
        204,
        M::DELETE,
        "/api/v1/orgs/{org}/alert-channels/{channel}",
        &c,
        &owner,
        Empty,
    )
    .await;

    // The audit log, in each form.
    let audit = "/api/v1/orgs/{org}/audit";
    for query in ["", "?format=jsonl", "?format=csv&action=member.add"] {
        let reply = live
            .call(
                Via::Api,
                M::GET,
                &format!("{audit}{query}"),
                &o,
                &owner,
                Empty,
            )
            .await;
        assert_eq!(reply.status.as_u16(), 200, "{}", reply.text);
    }
    let bad_format = format!("{audit}?format=xml");
    let reply = live
        .call(Via::Api, M::GET, &bad_format, &o, &owner, Empty)
        .await;
    assert_eq!(reply.status.as_u16(), 400, "{}", reply.text);
    let bad_time = format!("{audit}?from=yesterday");
    let reply = live
        .call(Via::Api, M::GET, &bad_time, &o, &owner, Empty)
        .await;
    assert_eq!(reply.status.as_u16(), 422, "{}", reply.text);

    // The refusals every route shares, from the document: not signed in (or no client
    // certificate), 403, another organisation's id, and bodies that do not parse.
    let owner_cookie = Auth::CookieOnly(session_cookie(&owner));
    for (method, template, op) in live.operations() {
        let responses = op["responses"].as_object().unwrap().clone();
        let agent_route = template.starts_with("/agent/");
        // `[{}]`: no credentials needed (the one requirement is empty).
        let secured = op.get("security") != Some(&json!([{}]));
        let session_only = op["security"] == json!([{ "session": [] }]);
        let mut args: Vec<(&str, &str)> = vec![
            ("org", &org),
            ("user", &viewer_id),
            ("invitation", "inv_00000000000000000000000000000000"),
            ("token", "tok_00000000000000000000000000000000"),
            ("agent", &agent_id),
            ("database", "dbs_00000000000000000000000000000000"),
            ("schedule", "sch_00000000000000000000000000000000"),
            ("job", "job_00000000000000000000000000000000"),
            ("channel", "ach_00000000000000000000000000000000"),
        ];
        let schemas = Schemas { doc: &live.doc };
        let body = op["requestBody"]["content"]["application/json"]["schema"].clone();
        let sample_body = (!body.is_null()).then(|| sample(&schemas, &body));
        let good = || match &sample_body {
            Some(b) => Payload::Json(b.clone()),
            None => Payload::None,
        };
        let via = if agent_route {
            Via::Agent(&agent)
        } else {
            Via::Api
        };
        let caller = if agent_route {
            Auth::None
        } else {
            owner.clone()
        };
        if responses.contains_key("401") && secured {
            let via = if agent_route {
                Via::Agent(&no_certificate)
            } else {
                Via::Api
            };
            let reply = live
                .call(via, method.clone(), &template, &args, &Auth::None, good())
                .await;
            assert_eq!(reply.status, 401, "{method} {template}: {}", reply.text);
        }
        if responses.contains_key("403") {
            let auth = if method != Method::GET {
                owner_cookie.clone()
            } else if session_only {
                bearer.clone()
            } else {
                must_change.clone()
            };
            let reply = live
                .call(via, method.clone(), &template, &args, &auth, good())
                .await;
            assert_eq!(reply.status, 403, "{method} {template}: {}", reply.text);
        }
        if responses.contains_key("404") && template.contains("{org}") {
            args[0] = ("org", "org_00000000000000000000000000000000");
            let reply = live
                .call(via, method.clone(), &template, &args, &caller, good())
                .await;
            assert_eq!(reply.status, 404, "{method} {template}: {}", reply.text);
            args[0] = ("org", &org);
        }
        if let Some(sample_body) = &sample_body {
            let big = vec![b' '; 70 * 1024];
            for (status, payload) in [
                ("400", Payload::Raw(Some("application/json"), b"{".to_vec())),
                ("413", Payload::Raw(Some("application/json"), big)),
                (
                    "415",
                    Payload::Raw(None, sample_body.to_string().into_bytes()),
                ),
                ("422", Payload::Json(json!([]))),
            ] {
                if !responses.contains_key(status) {
                    continue;
                }
                let reply = live
                    .call(via, method.clone(), &template, &args, &caller, payload)
                    .await;
                assert_eq!(
                    reply.status.as_u16().to_string(),
                    status,
                    "{method} {template}: {}",
                    reply.text
                );
            }
        }
    }

    // Last, the owner's second factor off (wrong code first).
    live.expect(401, M::POST, disable, &[], &owner, J(wrong_code))
        .await;
    live.expect(
        200,
        M::POST,
        disable,
        &[],
        &owner,
        J(json!({ "code": recovery_code, "password": "owner passphrase!" })),
    )
    .await;

    let missing: Vec<_> = live
        .documented_responses()
        .difference(&live.seen)
        .cloned()
        .collect();
    assert!(
        missing.is_empty(),
        "documented responses no request produced (so none was checked): {missing:#?}"
    );
}

crate::both_engines!(
    sqlite_every_documented_answer_matches_a_real_one,
    postgres_every_documented_answer_matches_a_real_one,
    every_documented_answer_matches_a_real_one
);

/// Each schema mirroring a `dbcrate_core::wire` type (`wire.*` in the document)
/// matches a fully filled value of that type exactly: no field more, none less, each of
/// its type. Together with the live check this holds the agent routes' documentation
/// to the types both binaries use.
#[test]
fn the_wire_schemas_mirror_the_wire_types() {
    use dbcrate_core::secret::{SecretBytes, SecretString};
    use dbcrate_core::wire;
    let doc = document();
    let schemas = Schemas { doc: &doc };
    let secret = |s: &str| SecretString::new(s.to_string());
    let registry = wire::RegistrySettings {
        url: "https://registry.example".into(),
        root_keys: vec!["RWQ…".into()],
    };
    let job = wire::Job {
        id: "job_1".into(),
        kind: wire::JobKind::Restore,
        attempt: 1,
        database_name: "shop".into(),
        object_key: "shop/2026/11/29/x.pgdump.zst.age".into(),
        count_rows: true,
    };
    let credentials = wire::JobCredentials {
        restore: Some(wire::RestorePart {
            object_key: "shop/x".into(),
            size: 10,
            sha256: "ab".repeat(32),
            file_key: SecretBytes::new([7; 16]),
            globals: Some(wire::GlobalsPart {
                object_key: "shop/x.globals".into(),
                size: 3,
                sha256: "cd".repeat(32),
                file_key: SecretBytes::new([8; 16]),
            }),
        }),
        database: wire::DatabaseConnection {
            host: "db".into(),
            port: 5432,
            dbname: "shop".into(),
            username: "backup".into(),
            tls_mode: "require".into(),
            password: Some(secret("pw")),
        },
        destination: wire::Destination {
            kind: "s3".into(),
            settings: json!({ "bucket": "b" }),
            credentials: Some(wire::DestinationCredentials {
                access_key_id: Some(secret("id")),
                secret_access_key: Some(secret("key")),
                private_key: Some(secret("pem")),
            }),
        },
        recipients: vec!["age1…".into()],
        drill: Some(wire::DrillPart {
            row_counts: Some([("sales.orders".to_string(), 7)].into()),
            check_query: Some("SELECT true".into()),
        }),
    };
    let values: Vec<(&str, Value)> = vec![
        (
            "wire.EnrolRequest",
            serde_json::to_value(wire::EnrolRequest {
                token: secret("dbce_x"),
                csr: "csr".into(),
                name: "db1".into(),
                org_id: Some("org_1".into()),
            })
            .unwrap(),
        ),
        (
            "wire.EnrolAnswer",
            serde_json::to_value(wire::EnrolAnswer {
                org_id: "org_1".into(),
                agent_id: "agt_1".into(),
                certificate_chain: "pem".into(),
                root_ca: "pem".into(),
                not_after: 1,
            })
            .unwrap(),
        ),
        (
            "wire.RenewRequest",
            serde_json::to_value(wire::RenewRequest { csr: "csr".into() }).unwrap(),
        ),
        (
            "wire.RenewAnswer",
            serde_json::to_value(wire::RenewAnswer {
                certificate_chain: "pem".into(),
                not_after: 1,
            })
            .unwrap(),
        ),
        (
            "wire.ConfigAnswer",
            serde_json::to_value(wire::ConfigAnswer {
                org_id: "org_1".into(),
                agent_id: "agt_1".into(),
                recipient: "age1…".into(),
                poll_interval_secs: 30,
                crl_interval_secs: 300,
                heartbeat_secs: 20,
                renew_at_fraction: 0.8,
                registry: Some(registry),
            })
            .unwrap(),
        ),
        (
            "wire.NextJobAnswer",
            serde_json::to_value(wire::NextJobAnswer { job: Some(job) }).unwrap(),
        ),
        (
            "wire.JobCredentials",
            serde_json::to_value(&credentials).unwrap(),
        ),
        (
            "wire.ProgressReport",
            serde_json::to_value(wire::ProgressReport {
                bytes: 1,
                phase: "backing up".into(),
            })
            .unwrap(),
        ),
        (
            "wire.ProgressAnswer",
            serde_json::to_value(wire::ProgressAnswer { lease_secs: 1 }).unwrap(),
        ),
        (
            "wire.Completion",
            serde_json::to_value(wire::Completion {
                succeeded: true,
                object_key: Some("k".into()),
                size: 1,
                dump_size: Some(2),
                duration_ms: Some(3),
                sha256: "ab".repeat(32),
                pg_server_version: "17".into(),
                pg_dump_version: "17".into(),
                error: Some("e".into()),
                attempt: Some(1),
                globals: Some(wire::StoredObject {
                    object_key: "k.globals".into(),
                    size: 4,
                    sha256: "cd".repeat(32),
                }),
                row_counts: Some([("sales.orders".to_string(), 7)].into()),
                drill: Some(wire::DrillReport {
                    restore_ms: Some(5),
                    tables_checked: 1,
                    check_query_passed: Some(true),
                }),
            })
            .unwrap(),
        ),
        (
            "wire.CompletionAnswer",
            serde_json::to_value(wire::CompletionAnswer {
                state: "succeeded".into(),
            })
            .unwrap(),
        ),
    ];
    let mirrored: BTreeSet<&str> = doc["components"]["schemas"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .filter(|name| name.starts_with("wire."))
        .collect();
    let top: BTreeSet<&str> = values.iter().map(|(name, _)| *name).collect();
    for (name, value) in &values {
        schemas.assert_valid(schemas.named(name), value, true, name);
    }
    // Every mirror is reached from one of these values (nested ones through them).
    for name in mirrored {
        let reached = top.contains(name)
            || values
                .iter()
                .any(|(top, _)| reaches(&schemas, schemas.named(top), name));
        assert!(reached, "{name} is checked against no wire value");
    }
}

fn reaches(schemas: &Schemas, schema: &Value, name: &str) -> bool {
    match schema {
        Value::Object(map) => map.iter().any(|(key, v)| {
            if key == "$ref" {
                let target = v
                    .as_str()
                    .unwrap()
                    .trim_start_matches("#/components/schemas/");
                target == name || reaches(schemas, schemas.named(target), name)
            } else {
                reaches(schemas, v, name)
            }
        }),
        Value::Array(items) => items.iter().any(|v| reaches(schemas, v, name)),
        _ => false,
    }
}
