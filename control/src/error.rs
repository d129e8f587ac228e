//! The control plane's error: a stable code for programs, a message fit for an
//! operator, never a secret.
//!
//! The code decides the HTTP status (see `http::error`) and is part of the API
//! contract: clients match on it, so a code, once published, keeps its meaning.
//! [`Code::Internal`] errors carry detail for the log only; the API answers them with a
//! generic message.

/// Declares a fieldless enum of stable error codes from one table of `Variant => text`:
/// the enum, `as_str` (the text), `ALL` (every code, in the table's order) and a
/// `Serialize` that writes the text. A code is spelt once, and no list of them can leave
/// one out.
macro_rules! stable_codes {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident => $text:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $( $(#[$variant_meta])* $variant, )*
        }

        impl $name {
            /// Every code, in the order they are declared.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The code as it appears in API error bodies.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)*
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error>
            where
                S: serde::Serializer,
            {
                serializer.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use stable_codes;

stable_codes! {
    /// What kind of failure, as a stable machine-readable code.
    pub enum Code {
        /// Input that does not meet the rules (names, roles, passwords, ids in bodies).
        InvalidInput => "invalid_input",
        /// No credentials, or credentials that are not valid (any more).
        NotSignedIn => "not_signed_in",
        /// E-mail address or password wrong (never says which).
        WrongCredentials => "wrong_credentials",
        /// The account has a second factor and none was given.
        SecondFactorRequired => "second_factor_required",
        /// The second-factor code is wrong, used already, or expired.
        SecondFactorInvalid => "second_factor_invalid",
        /// The operation needs a second factor passed in the last few minutes.
        RecentSecondFactorRequired => "recent_second_factor_required",
        /// The account's one-time password must be changed before anything else.
        PasswordChangeRequired => "password_change_required",
        /// Signed in, a member, but the role does not allow this.
        Forbidden => "forbidden",
        /// No such object, or not yours (indistinguishable on purpose).
        NotFound => "not_found",
        /// The change conflicts with what exists (duplicate name, last owner, …).
        Conflict => "conflict",
        /// Too many failed attempts; wait.
        Throttled => "throttled",
        /// A state-changing browser request without the session's CSRF token.
        CsrfTokenInvalid => "csrf_token_invalid",
        /// An agent route called without a valid client certificate.
        ClientCertificateRequired => "client_certificate_required",
        /// An agent route called with a client certificate outside its validity window (on
        /// a connection opened while it was valid: the TLS handshake refuses it otherwise).
        ClientCertificateExpired => dbcrate_core::wire::codes::CLIENT_CERTIFICATE_EXPIRED,
        /// An agent route called with a client certificate whose validity starts later: the
        /// clocks of the agent's host and the control plane disagree.
        ClientCertificateNotYetValid => "client_certificate_not_yet_valid",
        /// The agent, or this certificate of it, has been revoked: the agent must stop.
        AgentRevoked => dbcrate_core::wire::codes::AGENT_REVOKED,
        /// The organisation's key is customer-sealed and the operation needs its passphrase.
        CustomerPassphraseRequired => "customer_passphrase_required",
        /// The customer passphrase given does not open the organisation's key.
        CustomerPassphraseInvalid => "customer_passphrase_invalid",
        /// Anything else: a bug or an outage. Detail goes to the log only.
        Internal => "internal",
    }
}

/// A failure of a control-plane operation: the code callers match on, the message for
/// a person, and the failure underneath (a database or envelope error) as `source()`,
/// for the log.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// What kind.
    pub code: Code,
    /// What went wrong and what to do, for a person.
    pub message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error of kind `code`.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            source: None,
        }
    }

    /// This error, caused by `source`.
    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// A failure that is not the caller's fault (outage, bug, misconfiguration).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }

    /// Bad input, with what is wrong and what is allowed.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidInput, message)
    }

    /// No such object (or not the caller's).
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(Code::NotFound, what)
    }

    /// Conflicts with existing state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(Code::Conflict, message)
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Self::internal(format!("database: {e}")).caused_by(e)
    }
}

impl From<crate::envelope::EnvelopeError> for Error {
    fn from(e: crate::envelope::EnvelopeError) -> Self {
        Self::internal(e.to_string()).caused_by(e)
    }
}

/// Shorthand for control-plane results.
pub type Result<T> = std::result::Result<T, Error>;

/// 256 random bits, for tokens and secrets.
pub fn random_bytes<const N: usize>() -> Result<zeroize::Zeroizing<[u8; N]>> {
    let mut bytes = zeroize::Zeroizing::new([0u8; N]);
    getrandom::getrandom(bytes.as_mut_slice())
        .map_err(|_| Error::internal("the system random number generator failed"))?;
    Ok(bytes)
}

/// A random id with a type prefix: `org_…`, `sec_…` (128 random bits, hex).
pub fn new_id(prefix: &str) -> Result<String> {
    let bytes = random_bytes::<16>()?;
    Ok(format!(
        "{prefix}_{}",
        dbcrate_core::hex::encode(bytes.as_slice())
    ))
}

/// Whether `id` has the shape of an id made by [`new_id`] with `prefix`, so malformed
/// ids in paths are answered like missing ones without a database query.
pub fn is_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| {
            hex.len() == 32
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}
