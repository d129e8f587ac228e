//! Destinations through the API against real storage (Garage S3, OpenSSH sshd, a
//! directory): saved only after the list / write / read / delete probe passes, each
//! step's outcome answered, a README at the prefix, credentials sealed and never shown.

use crate::harness::{Api, Auth};
use dbcrate_control::db::Db;
use dbcrate_testkit::{S3Server, SftpServer, TempDir};
use serde_json::{json, Value};

async fn owner(api: &Api) -> (String, Auth) {
    let (a, auth) = api.init_owner().await;
    (a.org.id, auth)
}

fn steps(reply: &Value) -> Vec<(String, String)> {
    reply["error"]["details"]["probe"]
        .as_array()
        .or_else(|| reply["probe"].as_array())
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().to_string(),
                s["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn count(db: &Db) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM destinations")
        .fetch_one(db.pool())
        .await
        .unwrap()
}

/// A directory `dest` on `sftp` owned by its login user, the destination settings that
/// pin its host key, and the client's private key.
fn sftp_destination(sftp: &SftpServer) -> (std::path::PathBuf, Value, String) {
    let target = sftp.root().join("dest");
    std::fs::create_dir(&target).unwrap();
    let owner_meta = std::fs::metadata(sftp.root()).unwrap();
    {
        use std::os::unix::fs::MetadataExt;
        let _ = std::os::unix::fs::chown(&target, Some(owner_meta.uid()), Some(owner_meta.gid()));
    }
    let key = std::fs::read_to_string(sftp.client_key()).unwrap();
    let settings = json!({
        "host": "127.0.0.1", "port": sftp.port(), "user": sftp.user(),
        "path": target, "host_key": sftp.known_hosts_line(),
    });
    (target, settings, key)
}

async fn destinations_are_probed(db: Db) {
    let api = Api::start(db).await;
    let (org, owner) = owner(&api).await;
    let path = format!("/api/v1/orgs/{org}/destinations");

    // A directory: probed, README written, saved.
    let dir = TempDir::new("control-destination").unwrap();
    let reply = api
        .post(
            &path,
            &owner,
            json!({ "name": "local", "kind": "directory", "settings": { "path": dir.path() } }),
        )
        .await;
    let saved = reply.ok();
    assert_eq!(reply.status.as_u16(), 201);
    assert!(
        steps(&saved).iter().all(|(_, outcome)| outcome == "ok"),
        "{saved}"
    );
    let readme = std::fs::read_to_string(dir.path().join("README-dbcrate.txt")).unwrap();
    assert!(
        readme.contains("age -d -i recovery.key") && readme.contains("age1"),
        "{readme}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "the probe left {leftovers:?}");

    // A directory that does not exist: refused at the list step, nothing saved.
    let before = count(&api.db).await;
    let reply = api
        .post(&path, &owner, json!({ "name": "nowhere", "kind": "directory", "settings": { "path": "/nonexistent/backups" } }))
        .await;
    reply.fails(422, "probe_failed");
    assert_eq!(
        steps(&reply.json())[0],
        ("list".to_string(), "failed".to_string())
    );
    assert_eq!(count(&api.db).await, before);

    // S3: wrong secret fails the probe (and the secret is not echoed); the right one saves.
    let s3 = S3Server::start().unwrap();
    let settings = json!({
        "endpoint": s3.endpoint(), "region": s3.region(), "bucket": s3.bucket(),
        "prefix": "acme/backups", "path_style": true,
    });
    let wrong =
        json!({ "access_key_id": s3.access_key_id(), "secret_access_key": "not-the-secret-0000" });
    let reply = api
        .post(
            &path,
            &owner,
            json!({ "name": "bucket", "kind": "s3", "settings": settings, "credentials": wrong }),
        )
        .await;
    reply.fails(422, "probe_failed");
    assert!(!reply.text.contains("not-the-secret-0000"));
    let right =
        json!({ "access_key_id": s3.access_key_id(), "secret_access_key": s3.secret_access_key() });
    let saved = api
        .post(
            &path,
            &owner,
            json!({ "name": "bucket", "kind": "s3", "settings": settings, "credentials": right }),
        )
        .await
        .ok();
    assert_eq!(saved["has_credentials"], true);
    assert!(!saved.to_string().contains(s3.secret_access_key()));
    let listing = s3
        .curl(&[], "?list-type=2&prefix=acme%2Fbackups%2F")
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert!(
        listing.contains("acme/backups/README-dbcrate.txt"),
        "{listing}"
    );
    assert!(
        !listing.contains(".dbcrate-probe"),
        "the probe object stayed: {listing}"
    );

    // SFTP with a pinned host key and a private key in the request.
    let sftp = SftpServer::start().unwrap();
    let (target, sftp_settings, key) = sftp_destination(&sftp);
    let saved = api
        .post(&path, &owner, json!({ "name": "sftp", "kind": "sftp", "settings": sftp_settings, "credentials": { "private_key": key } }))
        .await
        .ok();
    assert_eq!(saved["kind"], "sftp");
    assert!(target.join("README-dbcrate.txt").exists());
    // A wrong host key pin: refused at the first step.
    let mut pinned_wrong = sftp_settings.clone();
    pinned_wrong["host_key"] =
        json!("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHh0aGlzIGlzIG5vdCB0aGUgaG9zdCBrZXkgYXQgYWxs");
    api.post(&path, &owner, json!({ "name": "sftp2", "kind": "sftp", "settings": pinned_wrong, "credentials": { "private_key": key } }))
        .await
        .fails(422, "probe_failed");

    // An account that may write but not delete: the probe reports the delete step
    // (retention needs it), names the object it had to leave, and saves nothing.
    let before = count(&api.db).await;
    let no_delete = SftpServer::start_refusing(&["remove"]).unwrap();
    let (kept, settings, key_nd) = sftp_destination(&no_delete);
    let reply = api
        .post(&path, &owner, json!({ "name": "sftp3", "kind": "sftp", "settings": settings, "credentials": { "private_key": key_nd } }))
        .await;
    reply.fails(422, "probe_failed");
    let outcomes: Vec<String> = steps(&reply.json())
        .into_iter()
        .map(|(step, outcome)| format!("{step}:{outcome}"))
        .collect();
    assert_eq!(
        outcomes,
        ["list:ok", "write:ok", "read:ok", "delete:failed"],
        "{}",
        reply.text
    );
    assert!(
        reply.text.contains("grant delete permission"),
        "{}",
        reply.text
    );
    assert_eq!(count(&api.db).await, before);
    let left: Vec<_> = std::fs::read_dir(&kept)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        left.len() == 1 && left[0].starts_with(".dbcrate-probe-"),
        "expected only the probe object that could not be deleted (and no README): {left:?}"
    );

    // Bad shapes are plain input errors.
    api.post(
        &path,
        &owner,
        json!({ "name": "x", "kind": "ftp", "settings": {} }),
    )
    .await
    .fails(422, "invalid_input");
    api.post(
        &path,
        &owner,
        json!({ "name": "x", "kind": "directory", "settings": { "path": "relative" } }),
    )
    .await
    .fails(422, "invalid_input");
    api.post(&path, &owner, json!({ "name": "x", "kind": "s3", "settings": { "bucket": "b", "colour": 1 }, "credentials": right }))
        .await
        .fails(422, "invalid_input");

    let listed = api.get(&path, &owner).await.ok();
    assert_eq!(listed["items"].as_array().unwrap().len(), 3);
    let dump = dbcrate_testkit::every_text_in_database(api.db.pool()).await;
    assert!(!dump.contains(s3.secret_access_key()));
    assert!(!dump.contains(key.lines().nth(1).unwrap()));
}

crate::both_engines!(
    sqlite_destinations_are_probed,
    postgres_destinations_are_probed,
    destinations_are_probed
);
