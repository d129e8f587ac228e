//! A certificate authority for tests that need TLS a client really verifies.
//!
//! Why here: the agent's registry tests, the registry's own `serve` test and the control
//! plane's agent-API tests each built the same CA with rcgen (an unconstrained CA, a
//! leaf signed by it) in a copy of their own. A CA with a common name distinct from its
//! leaves matters for OpenSSL clients (curl takes a leaf named like its issuer for
//! self-signed), so that detail is kept in one place.

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
};

/// A fresh CA (its own key pair, unconstrained) that signs leaves for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A server certificate made by a [`TestCa`], as PEM text.
pub struct ServerCert {
    /// The leaf certificate (PEM).
    pub cert_pem: String,
    /// The leaf's private key (PEM).
    pub key_pem: String,
}

impl TestCa {
    /// A CA named `common_name`, with a new key pair.
    ///
    /// # Panics
    /// When rcgen cannot make a key pair or sign (it cannot with these parameters).
    pub fn new(common_name: &str) -> Self {
        let key = KeyPair::generate().expect("a key pair for the test CA");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let issuer = CertifiedIssuer::self_signed(params, key).expect("a self-signed test CA");
        Self { issuer }
    }

    /// The CA's certificate (PEM), for clients to trust.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// Signs a certificate with `params` for the public half of `key`.
    ///
    /// # Panics
    /// When rcgen refuses `params`.
    pub fn sign(&self, params: CertificateParams, key: &KeyPair) -> Certificate {
        params
            .signed_by(key, &self.issuer)
            .expect("a certificate signed by the test CA")
    }

    /// A server certificate for `name` (a DNS name or an IP address such as
    /// `127.0.0.1`) with the common name `common_name` — which should differ from the
    /// CA's — and a new key pair.
    pub fn server(&self, name: &str, common_name: &str) -> ServerCert {
        let key = KeyPair::generate().expect("a key pair for the leaf");
        let mut params = CertificateParams::new(vec![name.to_string()]).expect("leaf parameters");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        let cert = self.sign(params, &key);
        ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}
