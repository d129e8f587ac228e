//! The OpenAPI document describes exactly the routes the router has: every route in
//! `control/src/http.rs` is documented, every documented operation is served, and the
//! binary serves the checked-in document.

use crate::harness::{Api, Auth};
use reqwest::Method;
use std::collections::BTreeSet;

/// `(METHOD, path)` pairs from the router's `.route("…", get(…).post(…))` calls.
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

fn documented() -> BTreeSet<(String, String)> {
    let doc: serde_json::Value = serde_json::from_str(dbcrate_control::http::OPENAPI).unwrap();
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

#[tokio::test]
async fn the_binary_serves_the_document_and_every_operation_answers() {
    let engine = crate::harness::Engine::sqlite();
    let api = Api::start(engine.db().await).await;
    let served = api.get("/api/v1/openapi.json", &Auth::None).await;
    assert_eq!(served.text, dbcrate_control::http::OPENAPI);
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
