//! `dbcrate-agent enroll`: a key made here, a CSR, one call with the one-time token,
//! and the identity stored under `<data-dir>/identity/`.

use super::identity::{self, Link, ServerPin};
use super::{keys, link, tls};
use crate::cli::EnrollArgs;
use crate::error::{Error, Result};
use dbcrate_core::secret::SecretString;
use dbcrate_core::wire;
use serde_json::json;

fn token(args: &EnrollArgs) -> Result<SecretString> {
    let text = match (&args.token, &args.token_file) {
        (Some(token), _) => token.clone(),
        (None, Some(path)) => std::fs::read_to_string(path).map_err(|e| {
            Error::invalid_input(format!("cannot read --token-file {}: {e}", path.display()))
        })?,
        (None, None) => {
            return Err(Error::invalid_input(
                "give the enrolment token: DBCRATE_ENROLMENT_TOKEN, --token-file or --token",
            ))
        }
    };
    let text = text.trim().to_string();
    if !text.starts_with("dbce_") {
        return Err(Error::invalid_input(
            "that is not an enrolment token (they start with dbce_); create one in the control plane",
        ));
    }
    Ok(SecretString::new(text))
}

fn pin(args: &EnrollArgs) -> Result<ServerPin> {
    match (&args.ca_file, &args.server_fingerprint) {
        (Some(path), _) => Ok(ServerPin::CaPem(std::fs::read_to_string(path).map_err(|e| {
            Error::invalid_input(format!("cannot read --ca-file {}: {e}", path.display()))
        })?)),
        (None, Some(fp)) => tls::normalise_fingerprint(fp)
            .map(ServerPin::Fingerprint)
            .ok_or_else(|| {
                Error::invalid_input(
                    "--server-fingerprint must be the 32-byte SHA-256 the control plane prints (AB:CD:…)",
                )
            }),
        (None, None) => Err(Error::invalid_input(
            "pin the control plane: --ca-file PEM or --server-fingerprint SHA256 (printed by \
             `dbcrate-control serve`)",
        )),
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "agent".to_string())
}

/// Enrols; returns the JSON report printed on stdout.
pub async fn enroll(args: &EnrollArgs) -> Result<serde_json::Value> {
    let token = token(args)?;
    let pin = pin(args)?;
    if identity::dir_of(&args.data_dir).join("key.pem").exists() {
        return Err(Error::invalid_input(format!(
            "{} holds an identity already; remove it to enrol again",
            identity::dir_of(&args.data_dir).display()
        )));
    }
    // Before the token is spent: the identity could not be stored in a data directory
    // others can write to.
    crate::datadir::Dir::open_data_dir(&args.data_dir, true)?;
    let (key_pem, csr) = keys::new_key_and_csr()?;
    let link = link::Link::new(&args.control_url, tls::enrolment_config(&pin)?)?;
    let body = wire::EnrolRequest {
        token,
        csr,
        name: args.name.clone().unwrap_or_else(host_name),
        org_id: args.org.clone(),
    };
    let answer: wire::EnrolAnswer = link
        .post(wire::paths::ENROLL, &body)
        .await
        .map_err(|e| e.context("enrolment refused or failed"))?;
    drop(body);
    let not_after = answer.not_after;
    let stored = Link {
        control_url: args.control_url.trim_end_matches('/').to_string(),
        org_id: answer.org_id,
        agent_id: answer.agent_id,
        not_before: crate::control::run::now(),
        not_after,
        server: pin,
    };
    identity::create(
        &args.data_dir,
        &key_pem,
        &answer.certificate_chain,
        &answer.root_ca,
        &stored,
    )?;
    tracing::info!(agent.id = %stored.agent_id, org.id = %stored.org_id, "enrolled");
    Ok(json!({
        "enrolled": true,
        "org_id": stored.org_id,
        "agent_id": stored.agent_id,
        "certificate_not_after": not_after,
        "identity": identity::dir_of(&args.data_dir),
    }))
}
