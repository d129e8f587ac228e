//! Every API request body: the routes are taken from the control plane's own OpenAPI
//! document (every operation that takes a body, the agent listener's included), so a
//! route added later is fuzzed without touching this file. Each input picks a route by
//! its first byte; the rest is the body, sent through the whole router (extractors,
//! validation, handler, database) as an owner's API token — or, for the agent routes,
//! as an enrolled agent's verified client certificate.
//!
//! Beyond "no panic": bad input must be refused as the caller's mistake, never answered
//! 500 (an internal error means input reached somewhere it should not have).
#![no_main]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use dbcrate_control::backups::jobs::wakeups::JobWakeups;
use dbcrate_control::http::AppState;
use dbcrate_control::server::{ClientAddr, PeerCertificates};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

/// A route that takes a body, with its path parameters filled in.
struct Route {
    method: Method,
    path: String,
    agent: bool,
}

struct World {
    runtime: tokio::runtime::Runtime,
    parts: Parts,
}

/// What requests are made with.
struct Parts {
    app: axum::Router,
    agent_app: axum::Router,
    routes: Vec<Route>,
    bearer: String,
    agent_cert: PeerCertificates,
}

const NOW: &str = "2026-12-05T00:00:00Z";

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let parts = runtime.block_on(set_up());
        World { runtime, parts }
    })
}

/// An organisation with an owner's API token and an enrolled agent, on SQLite in memory
/// (a file under /dev/shm: the pool's connections share it).
async fn set_up() -> Parts {
    use dbcrate_control::{accounts, db::Db, envelope::MasterKeys, local, secrets, setup};
    let dir = std::env::temp_dir().join(format!("dbcrate-fuzz-api-{}", std::process::id()));
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() {
        shm.join(dir.file_name().unwrap())
    } else {
        dir
    };
    remove_dead_runs(dir.parent().expect("a parent"));
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    let url = format!("sqlite://{}?mode=rwc", dir.join("control.db").display());
    let db = Db::connect(&url).await.expect("the database");
    db.migrate().await.expect("the schema");
    let keys = MasterKeys::parse("mk1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        .expect("the fuzzing master key");
    secrets::audit_key::load(&db, &keys, NOW)
        .await
        .expect("the audit key");
    let init = setup::init(&db, &keys, "Fuzz", "owner@fuzz.example", NOW)
        .await
        .expect("an organisation");
    let org = init.org.id.clone();
    let now = dbcrate_core::time::unix_now();
    let (_, bearer) = accounts::api_tokens::create(
        &db,
        &org,
        accounts::api_tokens::NewToken {
            name: "fuzz",
            role: "admin",
            lifetime_days: None,
        },
        &format!("user:{}", init.owner_id),
        accounts::roles::Role::Owner,
        now,
    )
    .await
    .expect("an API token");
    let (enrolled, _) = local::enrol_agent(&db, &keys, &org, now)
        .await
        .expect("an agent");
    let leaf = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::pem_slice_iter(enrolled.chain_pem.as_bytes())
            .next()
            .expect("a certificate")
            .expect("PEM")
    };
    let reach = local::loopback_reach(&dir).expect("a reach policy");
    let state = AppState {
        db,
        keys: Arc::new(keys),
        agents: Default::default(),
        agent_tls: None,
        reach: Arc::new(reach),
        job_wakeups: JobWakeups::new(),
    };
    let routes = routes(&org);
    assert!(routes.len() > 20, "the document lists the API's routes");
    Parts {
        app: dbcrate_control::http::router(state.clone()),
        agent_app: dbcrate_control::http::agent_router(state),
        routes,
        bearer: format!("Bearer {}", bearer.expose_secret()),
        agent_cert: PeerCertificates(Arc::new(vec![leaf])),
    }
}

/// Removes the scratch directories of earlier runs whose process is gone (libFuzzer
/// ends a run by exiting, so no run removes its own).
fn remove_dead_runs(parent: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("dbcrate-fuzz-api-"))
        else {
            continue;
        };
        if !std::path::Path::new("/proc").join(pid).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Every operation of the OpenAPI document with a request body.
fn routes(org: &str) -> Vec<Route> {
    let document: serde_json::Value =
        serde_json::from_str(dbcrate_control::http::openapi::document()).expect("JSON");
    let mut routes = Vec::new();
    for (path, operations) in document["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            if operation.get("requestBody").is_none() {
                continue;
            }
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            routes.push(Route {
                method,
                path: fill(path, org),
                agent: path.starts_with("/agent/"),
            });
        }
    }
    routes
}

/// `path` with `{org}` this organisation and any other parameter a well-formed id that
/// names nothing (bodies are what is fuzzed; unknown ids end in 404s).
fn fill(path: &str, org: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        let name = &rest[start + 1..end - 1];
        out.push_str(&match name {
            "org" => org.to_string(),
            other => format!(
                "{}_0123456789abcdef0123456789abcdef",
                &other[..3.min(other.len())]
            ),
        });
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let World { runtime, parts } = world();
    let route = &parts.routes[usize::from(pick) % parts.routes.len()];
    let mut request = Request::builder()
        .method(route.method.clone())
        .uri(&route.path)
        .header("content-type", "application/json")
        .header("user-agent", "dbcrate-agent/0.1.0");
    if !route.agent {
        request = request.header("authorization", &parts.bearer);
    }
    let mut request = request.body(Body::from(body.to_vec())).expect("a request");
    // What the server adds to every request of a connection.
    request
        .extensions_mut()
        .insert(ClientAddr(std::net::SocketAddr::from((
            [127, 0, 0, 1],
            40000,
        ))));
    let app = if route.agent {
        request.extensions_mut().insert(parts.agent_cert.clone());
        &parts.agent_app
    } else {
        &parts.app
    };
    let status = runtime.block_on(async {
        let mut app = app.clone();
        let response = tower_service::Service::call(&mut app, request)
            .await
            .unwrap_or_else(|never| match never {});
        response.status()
    });
    assert_ne!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{} {} answered 500 for body {:?}",
        route.method,
        route.path,
        String::from_utf8_lossy(body)
    );
});
