//! Agent enrolment and mutual TLS against the real agent listener: certificates as the
//! control plane makes them (whatever the CSR asks), every agent route behind a verified
//! client certificate, revocation refused at the TLS layer from the next connection,
//! renewal, the signed CRL, and each attack of the issue refused with a clear error (and
//! an audit row where an organisation is known).

use crate::harness::{csr, csr_with, Api, Auth, NOW};
use crate::one_connection::OneConnection;
use dbcrate_control::db::Db;
use dbcrate_control::{audit, setup};
use rcgen::{CertificateParams, KeyPair};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// An HTTPS client presenting `chain_pem` with `key`, on a fresh connection pool.
fn agent_client(api: &Api, chain_pem: &str, key: &KeyPair) -> reqwest::Client {
    let identity = format!("{}{}", key.serialize_pem(), chain_pem);
    api.client(Some(&identity))
}

async fn enrol_token(api: &Api, admin: &Auth, org: &str) -> String {
    api.post(
        &format!("/api/v1/orgs/{org}/enrolment-tokens"),
        admin,
        json!({ "name": "db1.example.com" }),
    )
    .await
    .ok()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn enrol(api: &Api, token: &str, csr: &str) -> crate::harness::Reply {
    api.post(
        "/agent/v1/enroll",
        &Auth::None,
        json!({ "token": token, "csr": csr, "name": "db1" }),
    )
    .await
}

async fn refusals(api: &Api, org: &str) -> Vec<String> {
    audit::rows(&api.db, org)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "agent.enrol.refused")
        .map(|r| r.details)
        .collect()
}

async fn get(
    client: &reqwest::Client,
    url: String,
) -> Result<(StatusCode, Vec<u8>), reqwest::Error> {
    let response = client.get(url).send().await?;
    let status = response.status();
    Ok((status, response.bytes().await?.to_vec()))
}

/// The status and JSON body of the answer to `request`, which must connect.
async fn answer(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

/// A renewal request with a fresh CSR, on `client`.
fn renewal(api: &Api, client: &reqwest::Client) -> reqwest::RequestBuilder {
    client
        .post(api.url("/agent/v1/certificate/renew"))
        .json(&json!({ "csr": csr().1 }))
}

async fn enrolment_and_mutual_tls(db: Db) {
    let api = Api::start(db).await;
    let (a, owner) = api.init_owner().await;
    let org = a.org.id.clone();

    // A CSR asking for names, usages and CA powers of its own gets none of them — a CA
    // request is refused outright.
    let mut ca_params = CertificateParams::new(vec!["evil.example".into()]).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let token = enrol_token(&api, &owner, &org).await;
    enrol(&api, &token, &csr_with(ca_params).1)
        .await
        .fails(422, "invalid_input");
    enrol(
        &api,
        &token,
        "-----BEGIN CERTIFICATE REQUEST-----\nnonsense\n-----END CERTIFICATE REQUEST-----\n",
    )
    .await
    .fails(422, "invalid_input");
    let oversized = format!("{}{}", csr().1, "A".repeat(20 * 1024));
    enrol(&api, &token, &oversized)
        .await
        .fails(422, "invalid_input");
    // A CSR whose signature does not verify (no proof of possession of the key).
    enrol(&api, &token, &flip_last_byte(&csr().1))
        .await
        .fails(422, "invalid_input");

    let (key, csr_pem) = csr_with(CertificateParams::new(vec!["evil.example".into()]).unwrap());
    let enrolled = enrol(&api, &token, &csr_pem).await.ok();
    assert_eq!(enrolled["org_id"], org.as_str());
    let agent_id = enrolled["agent_id"].as_str().unwrap().to_string();
    let chain = enrolled["certificate_chain"].as_str().unwrap().to_string();
    check_leaf(&chain, &org, &agent_id);

    // The token works once; expired and other organisations' tokens are refused.
    enrol(&api, &token, &csr().1)
        .await
        .fails(401, "not_signed_in");
    let expired = enrol_token(&api, &owner, &org).await;
    sqlx::query("UPDATE enrolment_tokens SET expires_at = 1 WHERE used_at IS NULL")
        .execute(api.db.pool())
        .await
        .unwrap();
    enrol(&api, &expired, &csr().1)
        .await
        .fails(401, "not_signed_in");
    let fresh = enrol_token(&api, &owner, &org).await;
    api.post(
        "/agent/v1/enroll",
        &Auth::None,
        json!({ "token": fresh, "csr": csr().1, "name": "db2", "org_id": "org_00000000000000000000000000000000" }),
    )
    .await
    .fails(401, "not_signed_in");
    enrol(&api, "dbce_unknown", &csr().1)
        .await
        .fails(401, "not_signed_in");
    let reasons = refusals(&api, &org).await.join(" ");
    for reason in [
        "bad CSR",
        "token used already",
        "token expired",
        "token of another organisation",
    ] {
        assert!(
            reasons.contains(reason),
            "no audited refusal for {reason}: {reasons}"
        );
    }

    // With its certificate the agent reads its config and CRL; without, nothing.
    let client = agent_client(&api, &chain, &key);
    let (_, config) = answer(client.get(api.url("/agent/v1/config"))).await;
    assert_eq!(config["recipient"], a.org.recipient.as_str(), "{config}");
    assert_eq!(config["agent_id"], agent_id.as_str());
    // It is the wire's type, every setting as configured (the harness's 1 s polls) or
    // its default, the same the agent assumes.
    let typed: dbcrate_core::wire::ConfigAnswer = serde_json::from_value(config.clone()).unwrap();
    assert_eq!(
        (typed.org_id.as_str(), typed.agent_id.as_str()),
        (org.as_str(), agent_id.as_str())
    );
    assert_eq!(
        (
            typed.poll_interval_secs,
            typed.crl_interval_secs,
            typed.heartbeat_secs,
            typed.renew_at_fraction
        ),
        (
            1,
            dbcrate_core::wire::DEFAULT_CRL_INTERVAL_SECS,
            dbcrate_core::wire::DEFAULT_HEARTBEAT_SECS,
            dbcrate_core::wire::DEFAULT_RENEW_AT_FRACTION
        )
    );
    api.get("/agent/v1/config", &Auth::None)
        .await
        .fails(401, "client_certificate_required");
    let (status, crl) = get(&client, api.url("/agent/v1/crl")).await.unwrap();
    assert_eq!(status, 200);
    assert!(crl_lists(&crl, &chain).is_empty());

    // Renewal: a new key, a new serial, the same agent.
    let (new_key, new_csr) = csr();
    let (_, renewed) = answer(
        client
            .post(api.url("/agent/v1/certificate/renew"))
            .json(&json!({ "csr": new_csr })),
    )
    .await;
    let new_chain = renewed["certificate_chain"].as_str().unwrap().to_string();
    check_leaf(&new_chain, &org, &agent_id);
    assert_ne!(serial_of(&new_chain), serial_of(&chain));
    let renewed_client = agent_client(&api, &new_chain, &new_key);
    assert_eq!(
        get(&renewed_client, api.url("/agent/v1/config"))
            .await
            .unwrap()
            .0,
        200
    );

    // Another organisation's agent sees only its own organisation.
    let b = dbcrate_control::orgs::create(&api.db, &api.keys, "Other", "system:test", NOW)
        .await
        .unwrap();
    let b_token = dbcrate_control::agents::create_token(
        &api.db,
        &b.id,
        "b",
        None,
        "system:test",
        dbcrate_core::time::unix_now(),
    )
    .await
    .unwrap();
    let (b_key, b_csr) = csr();
    let b_enrolled = enrol(&api, b_token.token.expose_secret(), &b_csr)
        .await
        .ok();
    let b_chain = b_enrolled["certificate_chain"]
        .as_str()
        .unwrap()
        .to_string();
    let b_client = agent_client(&api, &b_chain, &b_key);
    let (_, b_config) = answer(b_client.get(api.url("/agent/v1/config"))).await;
    assert_eq!(b_config["org_id"], b.id.as_str());
    assert_eq!(b_config["recipient"], b.recipient.as_str());
    // Org A's people cannot revoke org B's agent (it does not exist for them).
    let b_agent = b_enrolled["agent_id"].as_str().unwrap();
    api.post(
        &format!("/api/v1/orgs/{org}/agents/{b_agent}/revoke"),
        &owner,
        json!({}),
    )
    .await
    .fails(404, "not_found");

    // A certificate from another deployment, and an expired one, fail the handshake.
    let foreign = foreign_deployment_chain(&org, &agent_id);
    assert!(get(
        &agent_client(&api, &foreign.0, &foreign.1),
        api.url("/agent/v1/config")
    )
    .await
    .is_err());
    let (expired_key, expired_chain) = expired_certificate(&api, &org, &agent_id).await;
    assert!(get(
        &agent_client(&api, &expired_chain, &expired_key),
        api.url("/agent/v1/config")
    )
    .await
    .is_err());

    // Revocation: refused at the TLS layer on the next connection, renewal included; the
    // CRL lists both serials, signed by the organisation CA.
    let revoked = api
        .post(
            &format!("/api/v1/orgs/{org}/agents/{agent_id}/revoke"),
            &owner,
            json!({}),
        )
        .await
        .ok();
    assert_eq!(revoked["serials"].as_array().unwrap().len(), 2);
    let fresh_client = agent_client(&api, &new_chain, &new_key);
    assert!(get(&fresh_client, api.url("/agent/v1/config"))
        .await
        .is_err());
    let renew_again = renewal(&api, &agent_client(&api, &chain, &key))
        .send()
        .await;
    assert!(renew_again.is_err(), "a revoked certificate renewed");
    // A connection opened before the revocation is refused at the application layer,
    // with the code the agent stops on (and the message older agents compare whole),
    // renewal included.
    let reply = renewed_client
        .get(api.url("/agent/v1/config"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 401);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"]["code"], "agent_revoked", "{body}");
    assert_eq!(body["error"]["message"], "this agent has been revoked");
    let reply = renewal(&api, &renewed_client).send().await.unwrap();
    assert_eq!(reply.status(), 401);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"]["code"], "agent_revoked", "{body}");
    // Agent B is unaffected; its org's CRL is its own.
    let (status, b_crl) = get(
        &agent_client(&api, &b_chain, &b_key),
        api.url("/agent/v1/crl"),
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    assert!(crl_lists(&b_crl, &b_chain).is_empty());
    let a_crl = dbcrate_control::pki::crl::current(
        &api.db,
        &api.keys,
        &org,
        dbcrate_core::time::unix_now(),
    )
    .await
    .unwrap();
    let listed = crl_lists(&a_crl, &chain);
    assert!(listed.contains(&serial_of(&chain)) && listed.contains(&serial_of(&new_chain)));

    dbcrate_testkit::assert_audited(
        api.db.pool(),
        &org,
        &[
            "agent.enrolment_token.create",
            "agent.enrol",
            "agent.certificate.renew",
            "agent.revoke",
            "pki.org_ca.create",
        ],
    )
    .await;
    let listed = api
        .get(&format!("/api/v1/orgs/{org}/agents"), &owner)
        .await
        .ok();
    assert!(listed["items"][0]["revoked_at"].is_i64());
    assert!(audit::verify(&api.db, &org).await.unwrap().is_ok());
}

/// The CSR with the last byte of its signature changed.
fn flip_last_byte(csr_pem: &str) -> String {
    use base64::Engine;
    use rustls::pki_types::pem::PemObject;
    let der = rustls::pki_types::CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
        .unwrap();
    let mut bytes = der.as_ref().to_vec();
    *bytes.last_mut().unwrap() ^= 1;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    format!("-----BEGIN CERTIFICATE REQUEST-----\n{b64}\n-----END CERTIFICATE REQUEST-----\n")
}

fn parse_chain(chain_pem: &str) -> Vec<Vec<u8>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .map(|c| c.unwrap().to_vec())
        .collect()
}

fn serial_of(chain_pem: &str) -> String {
    use x509_parser::prelude::FromDer;
    let der = &parse_chain(chain_pem)[0];
    let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).unwrap();
    dbcrate_core::hex::encode(cert.raw_serial())
}

/// The leaf is the control plane's, whatever the CSR asked for.
fn check_leaf(chain_pem: &str, org: &str, agent: &str) {
    use x509_parser::prelude::*;
    let chain = parse_chain(chain_pem);
    assert_eq!(chain.len(), 2, "leaf and organisation CA");
    let (_, cert) = X509Certificate::from_der(&chain[0]).unwrap();
    let basic = cert.basic_constraints().unwrap().map(|b| b.value.ca);
    assert_ne!(basic, Some(true), "an agent certificate must not be a CA");
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth && !eku.any);
    let names: Vec<String> = cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, [format!("URI(urn:dbcrate:agent:{org}:{agent})")]);
    let lifetime = cert.validity().not_after.timestamp() - cert.validity().not_before.timestamp();
    assert!((86_400..=86_400 + 120).contains(&lifetime), "{lifetime}");
    assert_eq!(cert.raw_serial().len(), 16);
    let (_, issuer) = X509Certificate::from_der(&chain[1]).unwrap();
    assert!(cert.verify_signature(Some(issuer.public_key())).is_ok());
}

/// The serials a CRL lists, after checking its signature with the chain's CA.
fn crl_lists(crl_der: &[u8], chain_pem: &str) -> Vec<String> {
    use x509_parser::prelude::*;
    let chain = parse_chain(chain_pem);
    let (_, ca) = X509Certificate::from_der(&chain[1]).unwrap();
    let (_, crl) = CertificateRevocationList::from_der(crl_der).unwrap();
    crl.verify_signature(ca.public_key())
        .expect("the CRL is signed by the organisation CA");
    crl.iter_revoked_certificates()
        .map(|r| dbcrate_core::hex::encode(r.raw_serial()))
        .collect()
}

/// A chain from a look-alike deployment: same names, another root.
fn foreign_deployment_chain(org: &str, agent: &str) -> (String, KeyPair) {
    use rcgen::SanType;
    let ca = dbcrate_testkit::TestCa::new("dbcrate look-alike deployment");
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![SanType::URI(
        format!("urn:dbcrate:agent:{org}:{agent}")
            .try_into()
            .unwrap(),
    )];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let leaf = ca.sign(params, &key);
    (format!("{}{}", leaf.pem(), ca.cert_pem()), key)
}

/// A certificate from the real organisation CA that expired yesterday.
async fn expired_certificate(api: &Api, org: &str, agent: &str) -> (KeyPair, String) {
    let (key, csr_pem) = csr();
    let then = dbcrate_core::time::unix_now() - 3 * 86_400;
    let ca =
        dbcrate_control::pki::ca::org_signing_ca(&api.db, &api.keys, org, "test", "test", then)
            .await
            .unwrap();
    let csr = dbcrate_control::pki::issue::parse_csr(&csr_pem).unwrap();
    let issued = dbcrate_control::pki::issue::sign(&ca, &csr, org, agent, then, 86_400).unwrap();
    (key, issued.chain_pem)
}

crate::both_engines!(
    sqlite_enrolment_and_mutual_tls,
    postgres_enrolment_and_mutual_tls,
    enrolment_and_mutual_tls
);

/// Connects twice with a client that would resume sessions; how the second handshake
/// went.
async fn second_handshake(
    api: &Api,
    url: &str,
    path: &str,
    identity: Option<(&str, &KeyPair)>,
) -> rustls::HandshakeKind {
    use rustls::pki_types::pem::PemObject;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(&api.cert_pem).unwrap())
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some((chain, key)) => {
            let chain = rustls::pki_types::CertificateDer::pem_slice_iter(chain.as_bytes())
                .map(|c| c.unwrap())
                .collect();
            let key =
                rustls::pki_types::PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())
                    .unwrap();
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let addr = url.trim_start_matches("https://").to_string();
    let mut kind = None;
    for _ in 0..2 {
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        // Read a whole answer, so session tickets (sent after the handshake) arrive.
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        kind = tls.get_ref().1.handshake_kind();
    }
    kind.unwrap()
}

#[tokio::test]
async fn the_agent_listener_never_resumes_a_session() {
    let engine = crate::harness::Engine::sqlite();
    let api = Api::start(engine.db().await).await;
    let a = setup::init(&api.db, &api.keys, "Acme", "owner@a.example", NOW)
        .await
        .unwrap();
    let now = dbcrate_core::time::unix_now();
    let token =
        dbcrate_control::agents::create_token(&api.db, &a.org.id, "h", None, "system:test", now)
            .await
            .unwrap();
    let (key, csr_pem) = csr();
    let enrolled = enrol(&api, token.token.expose_secret(), &csr_pem)
        .await
        .ok();
    let chain = enrolled["certificate_chain"].as_str().unwrap().to_string();
    // The same client against the API listener does resume: the check can tell.
    assert_eq!(
        second_handshake(&api, &api.base, "/api/v1/openapi.json", None).await,
        rustls::HandshakeKind::Resumed
    );
    assert_eq!(
        second_handshake(
            &api,
            &api.agent_base,
            "/agent/v1/config",
            Some((&chain, &key))
        )
        .await,
        rustls::HandshakeKind::Full
    );
}

/// Counts the agent's certificates on record.
async fn certificates_of(db: &Db, agent: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM agent_certificates WHERE agent_id = $1")
        .bind(agent)
        .fetch_one(db.pool())
        .await
        .unwrap()
}

/// A certificate's validity ends on connections opened while it was valid: an agent
/// whose certificate expires keeps one kept-alive connection, and the next request on
/// it (renewal and the CRL included) is refused, not served.
async fn an_expired_certificate_is_refused_on_a_kept_alive_connection(db: Db) {
    let api = Api::start(db).await;
    let (a, _owner) = api.init_owner().await;
    let org = a.org.id.clone();
    let now = dbcrate_core::time::unix_now();
    let token =
        dbcrate_control::agents::create_token(&api.db, &org, "short", None, "system:test", now)
            .await
            .unwrap();
    let (key, csr_pem) = csr();
    let request = dbcrate_control::agents::EnrolRequest {
        token: &token.token,
        csr_pem: &csr_pem,
        name: "short",
        org_id: None,
    };
    // A certificate that lives a few seconds.
    let enrolled = dbcrate_control::agents::enrol(&api.db, &api.keys, &request, 5, now)
        .await
        .unwrap();
    // The organisation's CA is new: the listener takes its CRL now.
    api._local_reload().await;
    let agent = enrolled.agent_id.clone();

    // One connection, opened while the certificate is valid; every answer below comes
    // over it (a pooled client could open a second one and fail its handshake instead).
    let mut connection = OneConnection::open(
        &api.agent_base,
        &api.cert_pem,
        &enrolled.chain_pem,
        &key.serialize_der(),
    )
    .await;
    let (status, _) = connection
        .send("GET", "/agent/v1/config", None)
        .await
        .unwrap();
    assert_eq!(
        status, 200,
        "the certificate is valid for a few seconds yet"
    );

    while dbcrate_core::time::unix_now() <= enrolled.not_after {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // A new connection fails the handshake now.
    assert!(
        get(
            &agent_client(&api, &enrolled.chain_pem, &key),
            api.url("/agent/v1/config")
        )
        .await
        .is_err(),
        "a new connection with an expired certificate was accepted"
    );
    let refused = |reply: Result<(StatusCode, Vec<u8>), hyper::Error>, what: &str| {
        let (status, body) =
            reply.unwrap_or_else(|e| panic!("{what}: the kept-alive connection failed: {e:?}"));
        let body: Value = serde_json::from_slice(&body)
            .unwrap_or_else(|_| panic!("{what}: {status} {}", String::from_utf8_lossy(&body)));
        assert_eq!(status, 401, "{what} was served after expiry: {body}");
        assert_eq!(
            body["error"]["code"], "client_certificate_expired",
            "{body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("expired"), "{message}");
    };
    refused(
        connection.send("GET", "/agent/v1/config", None).await,
        "config",
    );
    refused(
        connection.send("GET", "/agent/v1/jobs/next", None).await,
        "the job poll",
    );
    refused(
        connection.send("GET", "/agent/v1/crl", None).await,
        "the CRL",
    );
    refused(
        connection
            .send(
                "POST",
                "/agent/v1/certificate/renew",
                Some(json!({ "csr": csr().1 })),
            )
            .await,
        "renewal",
    );
    assert_eq!(certificates_of(&api.db, &agent).await, 1, "renewed anyway");

    // The renewal itself refuses an expired certificate too, whoever calls it.
    let leaf = &parse_chain(&enrolled.chain_pem)[0];
    let identity = dbcrate_control::pki::identity::from_certificate(leaf).unwrap();
    let e = dbcrate_control::agents::renew(
        &api.db,
        &api.keys,
        &identity,
        &csr().1,
        3600,
        dbcrate_core::time::unix_now(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code.as_str(), "client_certificate_expired", "{e}");
    assert_eq!(certificates_of(&api.db, &agent).await, 1, "renewed anyway");
}

crate::both_engines!(
    sqlite_an_expired_certificate_is_refused_on_a_kept_alive_connection,
    postgres_an_expired_certificate_is_refused_on_a_kept_alive_connection,
    an_expired_certificate_is_refused_on_a_kept_alive_connection
);
