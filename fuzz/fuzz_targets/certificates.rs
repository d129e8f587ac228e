//! CSRs and certificate chains: the CSR an enrolling or renewing agent sends (anyone with
//! a token, or a stolen certificate, controls it), the client certificate the control
//! plane reads an agent's identity from, and the CRL the agent checks its chain against
//! (a compromised or impersonated control plane controls it).
//!
//! Beyond "no panic": a CSR the control plane accepts must give a certificate whose
//! identity reads back as the agent it was signed for.
#![no_main]

use dbcrate_control::pki::{ca, identity, issue};
use libfuzzer_sys::fuzz_target;
use rcgen::{CertificateParams, IsCa, Issuer, KeyPair};
use std::sync::OnceLock;

const ORG: &str = "org_0123456789abcdef0123456789abcdef";
const AGENT: &str = "agt_fedcba9876543210fedcba9876543210";
const NOW: i64 = 1_796_000_000;

/// A deployment root, the organisation's CA under it, and a certificate it issued.
struct Pki {
    org_ca: ca::SigningCa,
    root_pem: String,
    chain_pem: String,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let root_key = KeyPair::generate().expect("a root key");
        let mut root_params = CertificateParams::default();
        root_params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let root = root_params.self_signed(&root_key).expect("the root");
        let root_issuer = Issuer::new(root_params, root_key);
        let ca_key = KeyPair::generate().expect("a CA key");
        let ca_cert = ca::org_ca_params(ORG)
            .signed_by(&ca_key, &root_issuer)
            .expect("the organisation CA");
        let org_ca = ca::SigningCa::from_pem(ORG, ca_cert.pem(), ca_key.serialize_pem().as_bytes())
            .expect("the organisation CA loads");
        let agent_key = KeyPair::generate().expect("an agent key");
        let csr = CertificateParams::default()
            .serialize_request(&agent_key)
            .expect("a CSR")
            .pem()
            .expect("PEM");
        let csr = issue::parse_csr(&csr).expect("a well-formed CSR is accepted");
        let issued = issue::sign(&org_ca, &csr, ORG, AGENT, NOW, 3600).expect("signing");
        Pki {
            org_ca,
            root_pem: root.pem(),
            chain_pem: issued.chain_pem,
        }
    })
}

/// `der` in a PEM block labelled `label`, so the fuzzer's bytes reach the DER parsers.
fn pem(label: &str, der: &[u8]) -> String {
    use std::fmt::Write;
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = format!("-----BEGIN {label}-----\n");
    for (i, chunk) in der.chunks(3).enumerate() {
        let n = chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
        for k in 0..4 {
            let c = if k <= chunk.len() {
                B64[(n >> (18 - 6 * k) & 63) as usize]
            } else {
                b'='
            };
            text.push(char::from(c));
        }
        if i % 16 == 15 {
            text.push('\n');
        }
    }
    let _ = write!(text, "\n-----END {label}-----\n");
    text
}

fuzz_target!(|data: &[u8]| {
    let pki = pki();
    // The enrolment and renewal bodies carry the CSR as text…
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = issue::parse_csr(text);
    }
    // …and behind a well-formed PEM wrapper the bytes reach the DER and signature checks.
    if let Ok(csr) = issue::parse_csr(&pem("CERTIFICATE REQUEST", data)) {
        let issued = issue::sign(&pki.org_ca, &csr, ORG, AGENT, NOW, 3600)
            .expect("an accepted CSR can be signed");
        let der = rustls_pemfile_first(&issued.chain_pem);
        let who = identity::from_certificate(&der).expect("an issued certificate reads back");
        assert_eq!((who.org_id.as_str(), who.agent_id.as_str()), (ORG, AGENT));
    }
    // The client certificate the control plane reads the agent's identity from.
    let _ = identity::from_certificate(data);
    // The CRL an agent checks against its own chain and the deployment root.
    let _ = dbcrate_agent::control::revocation::check(&pki.chain_pem, &pki.root_pem, data, NOW);
});

/// The first certificate of a PEM chain, DER.
fn rustls_pemfile_first(chain_pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()
        .expect("a certificate")
        .expect("PEM")
        .to_vec()
}
