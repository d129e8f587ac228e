//! Payloads as today's control plane and agent send them still parse (with fields a
//! newer peer may add), and every message survives a round trip.

use super::*;
use crate::secret::{SecretBytes, SecretString};
use serde::de::DeserializeOwned;

fn parse<T: DeserializeOwned>(json: &str) -> T {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// serialize → deserialize.
fn again<T: Serialize + DeserializeOwned>(value: &T) -> T {
    parse(&serde_json::to_string(value).unwrap())
}

fn secret(text: &str) -> SecretString {
    SecretString::new(text.to_string())
}

fn same_secret(a: &Option<SecretString>, b: &Option<SecretString>) -> bool {
    a.as_ref().map(SecretString::expose_secret) == b.as_ref().map(SecretString::expose_secret)
}

/// Equality for credentials, the secrets compared through `expose_secret`.
fn same_credentials(a: &JobCredentials, b: &JobCredentials) -> bool {
    let (da, db) = (&a.database, &b.database);
    let database = (&da.host, da.port, &da.dbname, &da.username, &da.tls_mode)
        == (&db.host, db.port, &db.dbname, &db.username, &db.tls_mode)
        && same_secret(&da.password, &db.password);
    let destination = a.destination.kind == b.destination.kind
        && a.destination.settings == b.destination.settings
        && match (&a.destination.credentials, &b.destination.credentials) {
            (None, None) => true,
            (Some(x), Some(y)) => {
                same_secret(&x.access_key_id, &y.access_key_id)
                    && same_secret(&x.secret_access_key, &y.secret_access_key)
                    && same_secret(&x.private_key, &y.private_key)
            }
            _ => false,
        };
    let restore = same_restore(a.restore.as_ref(), b.restore.as_ref());
    database && destination && restore && a.recipients == b.recipients
}

fn same_restore(a: Option<&RestorePart>, b: Option<&RestorePart>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => {
            (&x.object_key, x.size, &x.sha256) == (&y.object_key, y.size, &y.sha256)
                && x.file_key.expose_secret() == y.file_key.expose_secret()
                && match (&x.globals, &y.globals) {
                    (None, None) => true,
                    (Some(g), Some(h)) => {
                        (&g.object_key, g.size, &g.sha256) == (&h.object_key, h.size, &h.sha256)
                            && g.file_key.expose_secret() == h.file_key.expose_secret()
                    }
                    _ => false,
                }
        }
        _ => false,
    }
}

#[test]
fn recorded_control_plane_answers_still_parse() {
    let enrolled: EnrolAnswer = parse(
        r#"{"agent_id":"agt_1","certificate_chain":"-----BEGIN CERTIFICATE-----\n…",
            "not_after":1767312000,"org_id":"org_1","root_ca":"-----BEGIN CERTIFICATE-----\n…",
            "issued_by_a_newer_control_plane":{"x":1}}"#,
    );
    assert_eq!(
        (enrolled.org_id.as_str(), enrolled.not_after),
        ("org_1", 1767312000)
    );
    let renewed: RenewAnswer =
        parse(r#"{"certificate_chain":"PEM","not_after":1767398400,"serial":"ab"}"#);
    assert_eq!(renewed.not_after, 1767398400);

    let config: ConfigAnswer = parse(
        r#"{"agent_id":"agt_1","crl_interval_secs":60,"heartbeat_secs":5,"org_id":"org_1",
            "poll_interval_secs":10,"recipient":"age1xyz",
            "registry":{"root_keys":["RWQ…"],"url":"https://registry.example"},
            "renew_at_fraction":0.8,"new_setting":true}"#,
    );
    assert_eq!(
        config,
        ConfigAnswer {
            org_id: "org_1".into(),
            agent_id: "agt_1".into(),
            recipient: "age1xyz".into(),
            poll_interval_secs: 10,
            crl_interval_secs: 60,
            heartbeat_secs: 5,
            renew_at_fraction: 0.8,
            registry: Some(RegistrySettings {
                url: "https://registry.example".into(),
                root_keys: vec!["RWQ…".into()],
            }),
        }
    );
    // Registry settings the agent cannot use still parse: the agent tells why.
    let unusable: ConfigAnswer =
        parse(r#"{"org_id":"o","agent_id":"a","recipient":"r","registry":{"url":"http://x"}}"#);
    assert_eq!(unusable.registry.unwrap().root_keys, Vec::<String>::new());
    // Without a registry, and from a control plane that sends no intervals: the
    // defaults, the same the control plane starts from.
    let bare: ConfigAnswer =
        parse(r#"{"org_id":"o","agent_id":"a","recipient":"age1","registry":null}"#);
    assert_eq!(
        (
            bare.poll_interval_secs,
            bare.crl_interval_secs,
            bare.heartbeat_secs,
            bare.renew_at_fraction,
            bare.registry
        ),
        (30, 300, 20, 0.8, None)
    );

    let none: NextJobAnswer = parse(r#"{"job":null}"#);
    assert_eq!(none.job, None);
    let claimed: NextJobAnswer = parse(
        r#"{"job":{"attempt":2,"database_name":"shop","id":"job_1","kind":"backup",
            "object_key":"shop/2026/01/02/20260102T030000Z-job_1.pgdump.zst.age","priority":1}}"#,
    );
    let job = claimed.job.unwrap();
    assert_eq!(
        (job.kind, job.attempt, job.id.as_str()),
        (JobKind::Backup, 2, "job_1")
    );
    let later: Job =
        parse(r#"{"attempt":1,"database_name":"d","id":"j","kind":"verify","object_key":"k"}"#);
    assert_eq!(
        later.kind,
        JobKind::Unknown,
        "a kind from a newer control plane"
    );

    let backup: JobCredentials = parse(
        r#"{"database":{"dbname":"shop","host":"db.internal","password":"db-password-123",
            "port":5432,"tls_mode":"require","username":"backup","sslrootcert":"x"},
            "destination":{"credentials":{"access_key_id":"AKID","secret_access_key":"s3-secret-xyz"},
            "kind":"s3","settings":{"bucket":"b","prefix":"p"}},
            "recipients":["age1abc"],"restore":null,"expires_at":5}"#,
    );
    assert_eq!(backup.database.port, 5432);
    assert_eq!(
        backup.database.password.as_ref().unwrap().expose_secret(),
        "db-password-123"
    );
    let creds = backup.destination.credentials.as_ref().unwrap();
    assert_eq!(
        creds.secret_access_key.as_ref().unwrap().expose_secret(),
        "s3-secret-xyz"
    );
    assert!(creds.private_key.is_none());
    assert_eq!(
        creds.to_secret_json().expose_secret(),
        &serde_json::json!({"access_key_id": "AKID", "secret_access_key": "s3-secret-xyz"})
    );
    assert!(backup.restore.is_none());
    let restore: JobCredentials = parse(
        r#"{"database":{"dbname":"shop","host":"127.0.0.1","password":null,"port":5432,
            "tls_mode":"disable","username":"postgres"},
            "destination":{"credentials":null,"kind":"directory","settings":{"path":"/b"}},
            "recipients":["age1abc"],
            "restore":{"file_key":"000102030405060708090a0b0c0d0e0f","object_key":"shop/k",
            "sha256":"ab","size":4096,"verified":true}}"#,
    );
    let part = restore.restore.as_ref().unwrap();
    assert_eq!(
        part.file_key.expose_secret(),
        &std::array::from_fn(|i| i as u8)
    );
    assert_eq!((part.object_key.as_str(), part.size), ("shop/k", 4096));
    assert!(restore.database.password.is_none() && restore.destination.credentials.is_none());

    let lease: ProgressAnswer = parse(r#"{"lease_secs":120}"#);
    assert_eq!(lease.lease_secs, 120);
    let state: CompletionAnswer = parse(r#"{"state":"queued"}"#);
    assert_eq!(state.state, "queued");
    let refused: ErrorAnswer =
        parse(r#"{"error":{"code":"not_found","message":"no such job","details":[1]}}"#);
    assert_eq!(refused.error.message, "no such job");
}

#[test]
fn recorded_agent_requests_still_parse() {
    let enrol: EnrolRequest =
        parse(r#"{"token":"dbce_abc","csr":"PEM","name":"db1","agent_version":"0.2"}"#);
    assert_eq!(
        (enrol.token.expose_secret(), enrol.org_id),
        ("dbce_abc", None)
    );
    let renew: RenewRequest = parse(r#"{"csr":"PEM"}"#);
    assert_eq!(renew.csr, "PEM");
    let beat: ProgressReport = parse(r#"{"bytes":1024,"phase":"dumping","rate":7}"#);
    assert_eq!(beat.bytes, 1024);
    // A failure from an agent that named no attempt, and a success with a field this
    // version does not know.
    let failed: Completion = parse(r#"{"succeeded":false,"error":"pg_dump failed"}"#);
    assert_eq!(failed, Completion::failed("pg_dump failed".into()));
    let done: Completion = parse(
        r#"{"succeeded":true,"object_key":"shop/k","size":4096,"dump_size":9000,
            "duration_ms":1500,"sha256":"ab","pg_server_version":"17.2",
            "pg_dump_version":"17.2","attempt":1,"reported_by_a_newer_agent":{"anything":1}}"#,
    );
    assert_eq!(
        (done.size, done.attempt, done.dump_size),
        (4096, Some(1), Some(9000))
    );
}

#[test]
fn every_message_survives_a_round_trip() {
    let enrol = EnrolRequest {
        token: secret("dbce_token"),
        csr: "PEM".into(),
        name: "db1".into(),
        org_id: Some("org_1".into()),
    };
    let back = again(&enrol);
    assert_eq!(back.token.expose_secret(), "dbce_token");
    assert_eq!(
        (back.csr, back.name, back.org_id),
        (enrol.csr, enrol.name, enrol.org_id)
    );

    let enrolled = EnrolAnswer {
        org_id: "org_1".into(),
        agent_id: "agt_1".into(),
        certificate_chain: "chain".into(),
        root_ca: "root".into(),
        not_after: 99,
    };
    assert_eq!(again(&enrolled), enrolled);
    let renew = RenewRequest { csr: "PEM".into() };
    assert_eq!(again(&renew), renew);
    let renewed = RenewAnswer {
        certificate_chain: "chain".into(),
        not_after: 7,
    };
    assert_eq!(again(&renewed), renewed);
    for registry in [
        None,
        Some(RegistrySettings {
            url: "https://r.example".into(),
            root_keys: vec!["k1".into(), "k2".into()],
        }),
    ] {
        let config = ConfigAnswer {
            org_id: "o".into(),
            agent_id: "a".into(),
            recipient: "age1".into(),
            poll_interval_secs: 1,
            crl_interval_secs: 2,
            heartbeat_secs: 3,
            renew_at_fraction: 0.5,
            registry,
        };
        assert_eq!(again(&config), config);
    }

    for kind in [JobKind::Backup, JobKind::Restore, JobKind::Drill] {
        let job = Job {
            id: "job_1".into(),
            kind,
            attempt: 3,
            database_name: "shop".into(),
            object_key: "shop/k".into(),
            count_rows: kind == JobKind::Backup,
        };
        assert_eq!(JobKind::from_name(kind.as_str()), kind);
        let next = NextJobAnswer { job: Some(job) };
        assert_eq!(again(&next), next);
    }
    let none = NextJobAnswer { job: None };
    assert_eq!(serde_json::to_string(&none).unwrap(), r#"{"job":null}"#);
    assert_eq!(again(&none), none);

    let backup = JobCredentials {
        restore: None,
        database: DatabaseConnection {
            host: "db".into(),
            port: 6432,
            dbname: "shop".into(),
            username: "backup".into(),
            tls_mode: "verify-full".into(),
            password: Some(secret("pw")),
        },
        destination: Destination {
            kind: "sftp".into(),
            settings: serde_json::json!({ "host": "h", "path": "/p" }),
            credentials: Some(DestinationCredentials {
                private_key: Some(secret("-----BEGIN OPENSSH PRIVATE KEY-----")),
                ..DestinationCredentials::default()
            }),
        },
        recipients: vec!["age1a".into(), "age1b".into()],
        drill: None,
    };
    assert!(same_credentials(&again(&backup), &backup));
    let restore = JobCredentials {
        restore: Some(RestorePart {
            object_key: "shop/k".into(),
            size: 10,
            sha256: "cd".repeat(32),
            file_key: SecretBytes::new([0xa5; 16]),
            globals: Some(GlobalsPart {
                object_key: "shop/g".into(),
                size: 3,
                sha256: "ef".repeat(32),
                file_key: SecretBytes::new([0x5a; 16]),
            }),
        }),
        database: DatabaseConnection {
            password: None,
            ..backup.database
        },
        destination: Destination {
            kind: "directory".into(),
            settings: serde_json::json!({ "path": "/b" }),
            credentials: None,
        },
        recipients: vec![],
        drill: Some(DrillPart {
            row_counts: Some([("a.b".to_string(), 2)].into()),
            check_query: Some("SELECT true".into()),
        }),
    };
    let text = serde_json::to_string(&restore).unwrap();
    assert!(text.contains(&"a5".repeat(16)), "{text}");
    assert!(same_credentials(&parse(&text), &restore));
    // A wrong secret is told apart.
    let mut other: JobCredentials = parse(&text);
    other.restore.as_mut().unwrap().file_key = SecretBytes::new([0xa4; 16]);
    assert!(!same_credentials(&other, &restore));
    assert!(
        text.contains(&"5a".repeat(16)),
        "the globals' file key: {text}"
    );

    let beat = ProgressReport {
        bytes: 5,
        phase: "backing up".into(),
    };
    assert_eq!(again(&beat), beat);
    let lease = ProgressAnswer { lease_secs: 120 };
    assert_eq!(again(&lease), lease);
    let done = Completion {
        succeeded: true,
        object_key: Some("shop/k".into()),
        size: 1,
        dump_size: Some(2),
        duration_ms: Some(3),
        sha256: "ab".repeat(32),
        pg_server_version: "17.2".into(),
        pg_dump_version: "17.3".into(),
        error: None,
        attempt: Some(4),
        globals: Some(StoredObject {
            object_key: "shop/g".into(),
            size: 5,
            sha256: "ef".repeat(32),
        }),
        row_counts: Some([("sales.orders".to_string(), 3)].into()),
        drill: Some(DrillReport {
            restore_ms: Some(9),
            tables_checked: 1,
            check_query_passed: Some(false),
        }),
    };
    assert_eq!(again(&done), done);
    let failed = Completion::failed("boom".into());
    assert_eq!(again(&failed), failed);
    let state = CompletionAnswer {
        state: "succeeded".into(),
    };
    assert_eq!(again(&state), state);
    let refused = ErrorAnswer {
        error: ErrorDetail {
            code: "conflict".into(),
            message: "given once".into(),
        },
    };
    assert_eq!(again(&refused), refused);
}

#[test]
fn secrets_never_show_in_debug() {
    let credentials: JobCredentials = parse(
        r#"{"database":{"dbname":"d","host":"h","password":"hunter2","port":1,
            "tls_mode":"disable","username":"u"},
            "destination":{"credentials":{"access_key_id":"AKIDSECRET","secret_access_key":"s3cr3t"},
            "kind":"s3","settings":{}},"recipients":[],
            "restore":{"file_key":"ffeeddccbbaa99887766554433221100","object_key":"k",
            "sha256":"","size":0}}"#,
    );
    let enrol: EnrolRequest = parse(r#"{"token":"dbce_tok","csr":"c","name":"n"}"#);
    let shown = format!("{credentials:?} {enrol:?}");
    for secret in [
        "hunter2",
        "AKIDSECRET",
        "s3cr3t",
        "ffeedd",
        "255, 238",
        "dbce_tok",
    ] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("<redacted>"), "{shown}");
}

#[test]
fn the_paths_are_the_routes() {
    assert_eq!(
        paths::credentials("job_1"),
        "/agent/v1/jobs/job_1/credentials"
    );
    assert_eq!(paths::progress("job_1"), "/agent/v1/jobs/job_1/progress");
    assert_eq!(paths::complete("job_1"), "/agent/v1/jobs/job_1/complete");
}
