//! Destinations cannot turn the control plane into a proxy into its own network: by
//! default loopback, link-local and private addresses are refused (names after
//! resolution, IP literals and IPv4-mapped IPv6 alike), directories only live under the
//! operator's roots, and a probe that does reach a server reports a fixed, classified
//! message — never that server's body or headers.

use crate::harness::{Api, Auth};
use dbcrate_control::db::Db;
use dbcrate_storage::reach::{Network, ReachPolicy};
use dbcrate_testkit::TempDir;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What an internal service answers: the probe must not pass any of it on.
const INTERNAL_BODY: &str =
    "<Error><Code>InternalSecret</Code><Message>db-password=hunter2</Message></Error>";
const INTERNAL_HEADER: &str = "X-Internal-Service: payroll-db.internal";

/// A plain HTTP server on loopback answering every request with [`INTERNAL_BODY`]
/// (status 500) and [`INTERNAL_HEADER`]; returns its port.
async fn internal_service() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let _ = socket.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 500 Internal Server Error\r\n{INTERNAL_HEADER}\r\n\
                     Content-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{INTERNAL_BODY}",
                    INTERNAL_BODY.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

fn s3(endpoint: &str) -> Value {
    json!({
        "name": "probe", "kind": "s3",
        "settings": { "endpoint": endpoint, "region": "garage", "bucket": "b", "path_style": true },
        "credentials": { "access_key_id": "GK0123456789abcdef01234567", "secret_access_key": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" },
    })
}

/// Posts a destination, expects the probe to fail at the list step, and returns that
/// step's message (after checking that nothing of the internal service is in the reply).
async fn list_step_error(api: &Api, org: &str, owner: &Auth, body: Value) -> String {
    let reply = api
        .post(
            &format!("/api/v1/orgs/{org}/destinations"),
            owner,
            body.clone(),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 422, "{body}: {}", reply.text);
    for leak in ["InternalSecret", "hunter2", "payroll", "X-Internal", "500"] {
        assert!(
            !reply.text.contains(leak),
            "the reply passes on {leak:?}: {}",
            reply.text
        );
    }
    let json = reply.json();
    let steps = json["error"]["details"]["probe"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(steps[0]["step"], "list", "{json}");
    assert_eq!(steps[0]["outcome"], "failed", "{json}");
    steps[0]["error"].as_str().unwrap().to_string()
}

async fn count(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM destinations")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

async fn private_addresses_are_refused(db: Db) {
    let api = Api::start_with_reach(db, ReachPolicy::default()).await;
    let (init, owner) = api.init_owner().await;
    let org = init.org.id;
    let port = internal_service().await;
    let api_port = api.base.rsplit(':').next().unwrap().to_string();
    for endpoint in [
        format!("http://127.0.0.1:{port}"),
        format!("http://localhost:{port}"),
        format!("https://127.0.0.1:{api_port}"),
        format!("http://[::1]:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
        "http://169.254.169.254".to_string(),
        "http://10.0.0.1:9000".to_string(),
        "http://0.0.0.0:9000".to_string(),
    ] {
        let error = list_step_error(&api, &org, &owner, s3(&endpoint)).await;
        assert!(
            error.starts_with("the destination is not allowed by the operator's policy"),
            "{endpoint}: {error}"
        );
        assert!(error.contains("DBCRATE_OUTBOUND_ALLOW"), "{error}");
    }
    let sftp = json!({
        "name": "probe", "kind": "sftp",
        "settings": { "host": "localhost", "port": port, "user": "u", "path": "/x", "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl" },
        "credentials": { "private_key": "not used" },
    });
    let error = list_step_error(&api, &org, &owner, sftp).await;
    assert!(error.contains("not allowed"), "{error}");

    // No directory roots configured: no directory destination at all.
    let dir = TempDir::new("control-reach").unwrap();
    let body = json!({ "name": "d", "kind": "directory", "settings": { "path": dir.path() } });
    let error = list_step_error(&api, &org, &owner, body).await;
    assert!(error.contains("DBCRATE_DIRECTORY_ROOTS"), "{error}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert_eq!(count(&api.db).await, 0);
}

async fn remote_answers_are_not_echoed(db: Db) {
    // Loopback allowed (self-hosted storage): the probe reaches the internal service,
    // and still says only what kind of failure it was.
    let reach = ReachPolicy::new(vec![Network::parse("127.0.0.0/8").unwrap()], &[]).unwrap();
    let api = Api::start_with_reach(db, reach).await;
    let (init, owner) = api.init_owner().await;
    let port = internal_service().await;
    let error = list_step_error(
        &api,
        &init.org.id,
        &owner,
        s3(&format!("http://127.0.0.1:{port}")),
    )
    .await;
    assert_eq!(error, "the storage gave an unexpected answer at step list");
    // A closed port and a refused one read the same as any unreachable host.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let error = list_step_error(
        &api,
        &init.org.id,
        &owner,
        s3(&format!("http://127.0.0.1:{closed}")),
    )
    .await;
    assert_eq!(error, "could not connect at step list");
}

async fn directories_stay_under_their_roots(db: Db) {
    let root = TempDir::new("control-roots").unwrap();
    let outside = TempDir::new("control-outside").unwrap();
    std::fs::create_dir(root.path().join("acme")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root.path().join("escape")).unwrap();
    let reach = ReachPolicy::new(vec![], &[root.path().to_path_buf()]).unwrap();
    let api = Api::start_with_reach(db, reach).await;
    let (init, owner) = api.init_owner().await;
    let org = init.org.id;
    for (path, why) in [
        ("/etc".to_string(), "not under a configured directory root"),
        (
            format!("{}/../control-outside", root.path().display()),
            ". or ..",
        ),
        (format!("{}/acme/../../x", root.path().display()), ". or .."),
        (format!("{}/escape", root.path().display()), "symbolic link"),
        (
            format!("{}/escape/deeper", root.path().display()),
            "symbolic link",
        ),
    ] {
        let body = json!({ "name": "d", "kind": "directory", "settings": { "path": path } });
        let error = list_step_error(&api, &org, &owner, body).await;
        assert!(error.contains(why), "{path}: {error}");
    }
    assert!(!std::path::Path::new("/etc/README-dbcrate.txt").exists());
    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
    assert_eq!(count(&api.db).await, 0);

    // Under the root: probed and saved as before.
    let reply = api
        .post(
            &format!("/api/v1/orgs/{org}/destinations"),
            &owner,
            json!({ "name": "d", "kind": "directory", "settings": { "path": root.path().join("acme") } }),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 201, "{}", reply.text);
    assert!(root.path().join("acme/README-dbcrate.txt").exists());
}

crate::both_engines!(
    sqlite_private_addresses_are_refused,
    postgres_private_addresses_are_refused,
    private_addresses_are_refused
);
crate::both_engines!(
    sqlite_remote_answers_are_not_echoed,
    postgres_remote_answers_are_not_echoed,
    remote_answers_are_not_echoed
);
crate::both_engines!(
    sqlite_directories_stay_under_their_roots,
    postgres_directories_stay_under_their_roots,
    directories_stay_under_their_roots
);
