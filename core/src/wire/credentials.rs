//! `GET /agent/v1/jobs/{job}/credentials`: the secrets a running job needs, handed out
//! once per attempt. Every secret in it is a zeroizing type.

use crate::secret::{expose, SecretBytes, SecretJson, SecretString};
use serde::{Deserialize, Serialize};

/// A running job's credentials: the database connection with its password, the
/// destination with its credentials, the recipients a backup is encrypted to, and for
/// a managed restore the backup to read and its file key.
#[derive(Debug, Serialize, Deserialize)]
pub struct JobCredentials {
    /// For a restore job: the backup and its file key (`null` for a backup).
    #[serde(default)]
    pub restore: Option<RestorePart>,
    /// The database to dump or restore into.
    pub database: DatabaseConnection,
    /// Where backups are.
    pub destination: Destination,
    /// The age recipients a backup is encrypted to (the organisation's).
    pub recipients: Vec<String>,
    /// For a drill (with `restore`, the backup to restore): what to check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drill: Option<DrillPart>,
}

/// What a restore drill checks besides pg_restore succeeding.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DrillPart {
    /// Rows per table recorded at backup time (`None`: the backup has none).
    #[serde(default)]
    pub row_counts: Option<super::RowCounts>,
    /// The operator's query, which must return one row whose one column is true.
    #[serde(default)]
    pub check_query: Option<String>,
}

/// How to reach a database.
#[derive(Debug, Serialize, Deserialize)]
pub struct DatabaseConnection {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The database's name on the server.
    pub dbname: String,
    /// The role to connect as.
    pub username: String,
    /// libpq's sslmode (`disable`, `require`, `verify-full`, …).
    pub tls_mode: String,
    /// The role's password, if it has one.
    #[serde(default, serialize_with = "expose::option_string")]
    pub password: Option<SecretString>,
}

/// A destination: its kind, its settings (not secret; their shape is the storage
/// crate's, per kind) and its credentials.
#[derive(Debug, Serialize, Deserialize)]
pub struct Destination {
    /// `s3`, `sftp` or `directory`.
    pub kind: String,
    /// The kind's settings (bucket, host, path, …).
    pub settings: serde_json::Value,
    /// The kind's credentials (`null` for a directory).
    #[serde(default)]
    pub credentials: Option<DestinationCredentials>,
}

/// A destination's credentials, as stored (sealed) and as sent: the fields its kind
/// takes, the others absent.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct DestinationCredentials {
    /// S3: the access key's id.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose::option_string"
    )]
    pub access_key_id: Option<SecretString>,
    /// S3: the access key's secret.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose::option_string"
    )]
    pub secret_access_key: Option<SecretString>,
    /// SFTP: the private key (OpenSSH PEM).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "expose::option_string"
    )]
    pub private_key: Option<SecretString>,
}

impl DestinationCredentials {
    /// The credentials as the JSON object the storage settings parser takes
    /// (`dbcrate_storage::spec::from_settings`), wiped when dropped.
    pub fn to_secret_json(&self) -> SecretJson {
        let mut object = serde_json::Map::new();
        for (name, value) in [
            ("access_key_id", &self.access_key_id),
            ("secret_access_key", &self.secret_access_key),
            ("private_key", &self.private_key),
        ] {
            if let Some(value) = value {
                let text = serde_json::Value::String(value.expose_secret().to_owned());
                object.insert(name.to_string(), text);
            }
        }
        SecretJson::new(serde_json::Value::Object(object))
    }
}

/// What a managed restore reads: the backup object, its size and digest, and this one
/// backup's age file key (never the organisation's private key).
#[derive(Debug, Serialize, Deserialize)]
pub struct RestorePart {
    /// The backup's object key, relative to the destination's prefix.
    pub object_key: String,
    /// Its ciphertext size (for people; the agent checks the digest).
    #[serde(default)]
    pub size: i64,
    /// Its ciphertext SHA-256 (hex), checked while it is read.
    pub sha256: String,
    /// The backup's 16-byte file key (hex on the wire).
    #[serde(serialize_with = "expose::hex")]
    pub file_key: SecretBytes<16>,
    /// The roles and other globals saved with the backup, to apply before it. `None`
    /// when none were saved.
    #[serde(default)]
    pub globals: Option<GlobalsPart>,
}

/// The globals object saved with a backup: its key, size, digest and its own file key
/// (each age file has its own).
#[derive(Debug, Serialize, Deserialize)]
pub struct GlobalsPart {
    /// The object's key, relative to the destination's prefix.
    pub object_key: String,
    /// Its ciphertext size.
    #[serde(default)]
    pub size: i64,
    /// Its ciphertext SHA-256 (hex), checked while it is read.
    pub sha256: String,
    /// Its 16-byte file key (hex on the wire).
    #[serde(serialize_with = "expose::hex")]
    pub file_key: SecretBytes<16>,
}
