//! The e-mail alerts' SMTP client against a real SMTP server (aiosmtpd, provisioned):
//! STARTTLS and implicit TLS, AUTH required, a certificate from a private CA the
//! settings name. The message arrives over TLS, authenticated, to every recipient, with
//! its subject (non-ASCII included) and text; a wrong password, a certificate from an
//! unknown CA, the wrong TLS mode and an address the reach policy forbids all fail with
//! an error that says what went wrong and never the password.

use base64::Engine as _;
use dbcrate_control::alerts::smtp::{send, Mail, Security, SmtpSettings};
use dbcrate_core::secret::SecretString;
use dbcrate_storage::reach::ReachPolicy;
use dbcrate_testkit::{SmtpServer, SmtpTls, SMTP_PASSWORD, SMTP_USER};
use std::time::Duration;

fn settings(server: &SmtpServer, security: Security, ca: bool) -> SmtpSettings {
    SmtpSettings {
        host: "localhost".into(),
        port: server.port(),
        security,
        username: Some(SMTP_USER.into()),
        from: "dbcrate@example.com".into(),
        to: vec!["ops@example.com".into(), "oncall@example.com".into()],
        ca_pem: ca.then(|| server.ca_pem().to_string()),
    }
}

fn mail(text: &str) -> Mail<'_> {
    Mail {
        subject: "[dbcrate] Alert: backup overdue — shop",
        text,
        id: "adl_0123",
        at: 1_796_342_400,
    }
}

/// The text of a received message: its base64 body decoded.
fn body_text(data: &str) -> String {
    let (_, body) = data
        .split_once("\r\n\r\n")
        .or_else(|| data.split_once("\n\n"))
        .unwrap();
    let joined: String = body.split_whitespace().collect();
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(joined)
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn alerts_are_mailed_over_starttls_and_implicit_tls_with_auth() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let reach = dbcrate_control::local::loopback_reach(&std::env::temp_dir()).unwrap();
    let password = SecretString::new(SMTP_PASSWORD.into());
    let text =
        "No backup of shop has finished since one was due.\n.a line that starts with a dot\n";

    for (tls, security) in [
        (SmtpTls::StartTls, Security::StartTls),
        (SmtpTls::Implicit, Security::Implicit),
    ] {
        let server = SmtpServer::start(tls).unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(send(
            &reach,
            &settings(&server, security, true),
            Some(&password),
            &mail(text),
        ))
        .unwrap_or_else(|e| panic!("{tls:?}: {e}"));
        let got = server.wait_for(1, Duration::from_secs(10)).unwrap();
        let m = &got[0];
        assert_eq!(m["tls"], true, "{tls:?}: {m}");
        assert_eq!(m["authenticated"], true, "{tls:?}: {m}");
        assert_eq!(m["mail_from"], "dbcrate@example.com");
        assert_eq!(
            m["rcpt_tos"],
            serde_json::json!(["ops@example.com", "oncall@example.com"])
        );
        let data = m["data"].as_str().unwrap();
        assert!(data.contains("Subject: =?utf-8?b?"), "{data}");
        assert!(
            data.contains("Date: Fri, 04 Dec 2026 00:00:00 +0000"),
            "{data}"
        );
        assert!(data.contains("Message-ID: <adl_0123@dbcrate>"), "{data}");
        assert_eq!(body_text(data), text, "the text arrives whole");

        // A wrong password: refused, the error quotes the server, not the password.
        let wrong = SecretString::new("not the password".into());
        let err = rt
            .block_on(send(
                &reach,
                &settings(&server, security, true),
                Some(&wrong),
                &mail(text),
            ))
            .unwrap_err();
        assert!(err.contains("AUTH PLAIN") && err.contains("535"), "{err}");
        assert!(
            !err.contains("not the password") && !err.contains(SMTP_PASSWORD),
            "{err}"
        );
        // A certificate from a CA the client was not told about.
        let err = rt
            .block_on(send(
                &reach,
                &settings(&server, security, false),
                Some(&password),
                &mail(text),
            ))
            .unwrap_err();
        assert!(err.contains("TLS handshake failed"), "{err}");
        // TLS from the first byte to a server that greets in plain text: the handshake
        // fails at once. (The other way round both sides wait: the send's time limit
        // ends it.)
        if security == Security::StartTls {
            let implicit = settings(&server, Security::Implicit, true);
            let err = rt
                .block_on(send(&reach, &implicit, Some(&password), &mail(text)))
                .unwrap_err();
            assert!(err.contains("TLS handshake failed"), "{err}");
        }
        assert_eq!(
            server.messages().unwrap().len(),
            1,
            "nothing else was accepted"
        );
    }

    // A reach policy that allows no private address: nothing is connected to.
    let server = SmtpServer::start(SmtpTls::StartTls).unwrap_or_else(|e| panic!("{e}"));
    let strict = ReachPolicy::new(Vec::new(), &[]).unwrap();
    let err = rt
        .block_on(send(
            &strict,
            &settings(&server, Security::StartTls, true),
            Some(&password),
            &mail(text),
        ))
        .unwrap_err();
    assert!(err.starts_with("localhost: "), "{err}");
    assert!(server.messages().unwrap().is_empty());
}
