//! Flow 5, the destinations: "Test" probes and shows each step without saving; "Save"
//! saves only a destination whose probe passed; a failed form comes back filled, its
//! secrets excepted. Against a real directory, a real S3-compatible store and a real
//! OpenSSH SFTP server.

use crate::harness::{Dashboard, Pages};
use crate::http::{csrf_of, send, sign_in_as};
use dbcrate_control::accounts::roles::Role;
use dbcrate_testkit::{S3Server, SftpServer, TempDir};
use reqwest::{Method, StatusCode};

async fn destinations_saved(d: &Dashboard) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM destinations")
        .fetch_one(d.db.pool())
        .await
        .unwrap()
}

fn count(d: &Dashboard) -> i64 {
    d.rt.block_on(destinations_saved(d))
}

#[test]
fn flow_5_test_a_failing_and_a_passing_directory_then_save_it() {
    let d = Dashboard::start();
    let password = d.add_person("admin@example.com", Role::Admin, &d.org_id);
    let dir = TempDir::new("flow5-destination").unwrap();
    let b = d.browser();
    let mut pages = Pages::new(&b, "flow5");
    d.sign_in(&b, "admin@example.com", &password);
    b.goto(&d.url(&format!("/orgs/{}/destinations", d.org_id)))
        .unwrap();
    assert_eq!(b.title().unwrap(), "Destinations · dbcrate");
    pages.check("destinations-empty");
    b.click_through(&b.find("a[href$='kind=directory']").unwrap())
        .unwrap();
    assert_eq!(b.title().unwrap(), "Add a directory · dbcrate");
    pages.check("destinations-new-directory");

    // A directory that does not exist: the probe's steps say where it failed.
    b.fill_in("#name", "local").unwrap();
    b.fill_in("#path", "/nonexistent/backups").unwrap();
    b.submit("button[value=test]").unwrap();
    let steps = b.text_of("ol.probe").unwrap();
    assert!(steps.contains("failed"), "{steps}");
    assert_eq!(
        b.execute(
            "return document.querySelector('#path').value;",
            serde_json::json!([])
        )
        .unwrap(),
        "/nonexistent/backups",
        "the form stays filled"
    );
    pages.check("destinations-test-failed");
    b.submit("button[value=save]").unwrap();
    assert!(b
        .text_of("[role=alert]")
        .unwrap()
        .contains("nothing was saved"));
    assert_eq!(count(&d), 0);

    // A real one: the test passes and saves nothing; Save saves it.
    b.fill_in("#path", &dir.path().display().to_string())
        .unwrap();
    b.submit("button[value=test]").unwrap();
    let steps = b.text_of("ol.probe").unwrap();
    for step in [
        "list: passed",
        "write: passed",
        "read: passed",
        "delete: passed",
    ] {
        assert!(steps.contains(step), "{step:?} not in {steps}");
    }
    assert_eq!(count(&d), 0, "a test saves nothing");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "the probe object is gone"
    );
    pages.check("destinations-test-passed");
    b.submit("button[value=save]").unwrap();
    assert!(b
        .text_of("[role=status]")
        .unwrap()
        .contains("local is added"));
    assert!(b
        .text_of("tbody tr")
        .unwrap()
        .contains(&dir.path().display().to_string()));
    assert!(dir.path().join("README-dbcrate.txt").exists());
    assert_eq!(count(&d), 1);
    pages.check("destinations-added");
}

#[test]
fn s3_and_sftp_destinations_from_the_forms_and_secrets_never_come_back() {
    let d = Dashboard::start();
    let admin = d.add_person("admin@example.com", Role::Admin, &d.org_id);
    let viewer = d.add_person("viewer@example.com", Role::Viewer, &d.org_id);
    let s3 = S3Server::start().unwrap();
    let sftp = SftpServer::start().unwrap();
    let target = sftp.root().join("dest");
    std::fs::create_dir(&target).unwrap();
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(sftp.root()).unwrap();
        let _ = std::os::unix::fs::chown(&target, Some(meta.uid()), Some(meta.gid()));
    }
    let private_key = std::fs::read_to_string(sftp.client_key()).unwrap();
    d.rt.block_on(async {
        let a = sign_in_as(&d, "admin@example.com", &admin).await;
        let s3_path = format!("/orgs/{}/destinations/new?kind=s3", d.org_id);
        let page = send(&d, Method::GET, &s3_path, Some(&a), None, &[]).await;
        let csrf = csrf_of(&page.text);
        let secret = s3.secret_access_key().to_string();
        let endpoint = s3.endpoint().to_string();
        let post = |secret: &str, action: &str| {
            let fields = [
                ("csrf", csrf.as_str()),
                ("name", "bucket"),
                ("endpoint", endpoint.as_str()),
                ("region", s3.region()),
                ("bucket", s3.bucket()),
                ("prefix", "acme/backups"),
                ("path_style", "yes"),
                ("access_key_id", s3.access_key_id()),
                ("secret_access_key", secret),
                ("action", action),
            ]
            .map(|(k, v)| (k, v.to_string()));
            let (d, path, cookie) = (&d, s3_path.clone(), a.clone());
            async move {
                let pairs = fields.each_ref().map(|(k, v)| (*k, v.as_str()));
                send(d, Method::POST, &path, Some(&cookie), None, &pairs).await
            }
        };
        // A wrong secret: the probe fails, nothing saved, and the secret is not echoed.
        let wrong = post("not-the-secret-0000", "save").await;
        assert_eq!(
            wrong.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            wrong.text
        );
        assert!(wrong.text.contains("nothing was saved"), "{}", wrong.text);
        assert!(
            !wrong.text.contains("not-the-secret-0000"),
            "{}",
            wrong.text
        );
        assert!(
            wrong.text.contains(s3.access_key_id()),
            "the key id stays filled"
        );
        assert_eq!(destinations_saved(&d).await, 0);
        let tested = post(&secret, "test").await;
        assert_eq!(tested.status, StatusCode::OK, "{}", tested.text);
        assert!(tested.text.contains("The probe passed"), "{}", tested.text);
        assert!(
            !tested.text.contains(&secret),
            "the secret key is not sent back"
        );
        assert_eq!(destinations_saved(&d).await, 0);
        let saved = post(&secret, "save").await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
        assert_eq!(destinations_saved(&d).await, 1);

        // SFTP, with the host key pinned and the private key pasted.
        let sftp_path = format!("/orgs/{}/destinations/new?kind=sftp", d.org_id);
        let port = sftp.port().to_string();
        let target_text = target.display().to_string();
        let known_host = sftp.known_hosts_line();
        let fields = [
            ("csrf", csrf.as_str()),
            ("name", "offsite"),
            ("host", "127.0.0.1"),
            ("port", port.as_str()),
            ("user", sftp.user()),
            ("path", target_text.as_str()),
            ("host_key", known_host),
            ("private_key", private_key.as_str()),
            ("action", "test"),
        ];
        let tested = send(&d, Method::POST, &sftp_path, Some(&a), None, &fields).await;
        assert_eq!(tested.status, StatusCode::OK, "{}", tested.text);
        assert!(tested.text.contains("The probe passed"), "{}", tested.text);
        assert!(
            !tested.text.contains("PRIVATE KEY"),
            "the private key is not sent back"
        );
        let mut save = fields;
        save[8] = ("action", "save");
        let saved = send(&d, Method::POST, &sftp_path, Some(&a), None, &save).await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.text);
        assert!(target.join("README-dbcrate.txt").exists());

        // The list shows where each is, never a key; a viewer has no add links and is
        // refused when posting anyway.
        let list = format!("/orgs/{}/destinations", d.org_id);
        let page = send(&d, Method::GET, &list, Some(&a), None, &[]).await;
        assert!(page.text.contains("acme/backups"), "{}", page.text);
        assert!(page.text.contains(&target_text), "{}", page.text);
        assert!(!page.text.contains(&secret) && !page.text.contains("PRIVATE KEY"));
        let v = sign_in_as(&d, "viewer@example.com", &viewer).await;
        let page = send(&d, Method::GET, &list, Some(&v), None, &[]).await;
        assert!(!page.text.contains("destinations/new"), "{}", page.text);
        let csrf = csrf_of(&page.text);
        let mut refused = save;
        refused[0] = ("csrf", csrf.as_str());
        refused[1] = ("name", "viewer's");
        let answer = send(&d, Method::POST, &sftp_path, Some(&v), None, &refused).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN);
        assert_eq!(destinations_saved(&d).await, 2);
    });
}
