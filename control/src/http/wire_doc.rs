//! How the OpenAPI document describes `/agent/v1/*`: one schema per type of
//! [`dbcrate_core::wire`], field for field. The wire types stay plain serde types in
//! `dbcrate-core`, which the agent shares: a `utoipa` derive there, even behind a
//! feature, would reach the agent through cargo's feature unification in every
//! workspace build, and core is kept free of documentation machinery. The API tests
//! hold each mirror to its wire type: a fully filled value of every wire type must
//! match its schema exactly (no field more, none less), and every real agent answer is
//! validated against the document.
//!
//! Agent messages ignore fields they do not know (agents and control planes are
//! upgraded on their own schedules), so no request schema here forbids other fields.
#![allow(dead_code)]

use utoipa::ToSchema;

/// `POST /agent/v1/enroll`: a one-time token and a CSR for a key made on the host.
#[derive(ToSchema)]
#[schema(as = wire::EnrolRequest)]
pub struct EnrolRequest {
    /// The one-time enrolment token (`dbce_…`).
    #[schema(format = Password)]
    token: String,
    /// The CSR (PEM); the control plane chooses the certificate's contents.
    csr: String,
    /// The agent's name.
    name: String,
    /// The organisation the agent expects to join; the token's must match.
    #[serde(default)]
    org_id: Option<String>,
}

/// What enrolment answers.
#[derive(ToSchema)]
#[schema(as = wire::EnrolAnswer)]
pub struct EnrolAnswer {
    org_id: String,
    agent_id: String,
    /// The agent's certificate and the organisation's intermediate (PEM).
    certificate_chain: String,
    /// The deployment root CA (PEM), to pin.
    root_ca: String,
    /// When the certificate expires (Unix seconds).
    not_after: i64,
}

/// `POST /agent/v1/certificate/renew`: a CSR for a fresh key.
#[derive(ToSchema)]
#[schema(as = wire::RenewRequest)]
pub struct RenewRequest {
    /// The CSR (PEM).
    csr: String,
}

/// What renewal answers.
#[derive(ToSchema)]
#[schema(as = wire::RenewAnswer)]
pub struct RenewAnswer {
    /// The new certificate and the organisation's intermediate (PEM).
    certificate_chain: String,
    /// When it expires (Unix seconds).
    not_after: i64,
}

/// `GET /agent/v1/config`: who the agent is to the control plane and how it works.
#[derive(ToSchema)]
#[schema(as = wire::ConfigAnswer)]
pub struct ConfigAnswer {
    org_id: String,
    agent_id: String,
    /// The organisation's age recipient.
    recipient: String,
    /// How long the control plane holds a job long poll.
    poll_interval_secs: u64,
    /// How often the agent fetches its CRL.
    crl_interval_secs: u64,
    /// How often a running job sends a heartbeat.
    heartbeat_secs: u64,
    /// At which fraction of its certificate's lifetime the agent renews it.
    renew_at_fraction: f64,
    /// The signed pg_dump registry jobs fetch their tools from, if any.
    #[schema(required = true)]
    registry: Option<RegistrySettings>,
}

/// A signed registry of pg_dump/pg_restore builds.
#[derive(ToSchema)]
#[schema(as = wire::RegistrySettings)]
pub struct RegistrySettings {
    /// Its https:// URL.
    url: String,
    /// Its pinned root v1 public keys (minisign format).
    root_keys: Vec<String>,
}

/// `GET /agent/v1/jobs/next`: a claimed job, or `null` when none came in time.
#[derive(ToSchema)]
#[schema(as = wire::NextJobAnswer)]
pub struct NextJobAnswer {
    #[schema(required = true)]
    job: Option<Job>,
}

/// A job as an agent sees it when it claims it.
#[derive(ToSchema)]
#[schema(as = wire::Job)]
pub struct Job {
    /// `job_…`.
    id: String,
    kind: JobKind,
    /// Which attempt this is, from 1.
    attempt: i64,
    /// The database's name (the folder in the destination).
    database_name: String,
    /// Where the backup goes, relative to the destination's prefix (fixed at claim).
    object_key: String,
    /// A backup whose schedule has restore drills: count every table's rows in the
    /// dump's snapshot too. Absent means false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    count_rows: bool,
}

/// What a job does.
#[derive(ToSchema)]
#[schema(as = wire::JobKind)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// Dump the database to the destination.
    Backup,
    /// Restore a backup into the database.
    Restore,
    /// Restore a backup into a throwaway database on the database's server, check it,
    /// drop it.
    Drill,
}

/// `GET /agent/v1/jobs/{job}/credentials`: a running job's secrets, once per attempt.
#[derive(ToSchema)]
#[schema(as = wire::JobCredentials)]
pub struct JobCredentials {
    /// For a restore job: the backup and its file key (`null` for a backup).
    #[schema(required = true)]
    restore: Option<RestorePart>,
    database: DatabaseConnection,
    destination: Destination,
    /// The age recipients a backup is encrypted to.
    recipients: Vec<String>,
    /// For a drill: what to check (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    drill: Option<DrillPart>,
}

/// What a restore drill checks besides pg_restore succeeding.
#[derive(ToSchema)]
#[schema(as = wire::DrillPart)]
pub struct DrillPart {
    /// Rows per table (`schema.table`, quoted as identifiers) recorded at backup time:
    /// an object of integers.
    #[schema(required = true, value_type = Option<Object>)]
    row_counts: Option<std::collections::BTreeMap<String, i64>>,
    /// A query that must return one row whose first column is true.
    #[schema(required = true)]
    check_query: Option<String>,
}

/// How to reach a database.
#[derive(ToSchema)]
#[schema(as = wire::DatabaseConnection)]
pub struct DatabaseConnection {
    host: String,
    port: u16,
    dbname: String,
    username: String,
    /// libpq's sslmode.
    tls_mode: String,
    /// The role's password, if it has one.
    #[schema(required = true, format = Password)]
    password: Option<String>,
}

/// A destination: its kind, its settings and its credentials.
#[derive(ToSchema)]
#[schema(as = wire::Destination)]
pub struct Destination {
    /// `s3`, `sftp` or `directory`.
    kind: String,
    /// The kind's settings (bucket, host, path, …).
    #[schema(value_type = Object)]
    settings: serde_json::Value,
    /// The kind's credentials (`null` for a directory).
    #[schema(required = true)]
    credentials: Option<DestinationCredentials>,
}

/// A destination's credentials: the fields its kind takes, the others absent.
#[derive(ToSchema)]
#[schema(as = wire::DestinationCredentials)]
pub struct DestinationCredentials {
    /// S3: the access key's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = Password)]
    access_key_id: Option<String>,
    /// S3: the access key's secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = Password)]
    secret_access_key: Option<String>,
    /// SFTP: the private key (OpenSSH PEM).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = Password)]
    private_key: Option<String>,
}

/// What a managed restore reads: the backup object and this one backup's file key.
#[derive(ToSchema)]
#[schema(as = wire::RestorePart)]
pub struct RestorePart {
    /// The backup's object key, relative to the destination's prefix.
    object_key: String,
    /// Its ciphertext size.
    size: i64,
    /// Its ciphertext SHA-256 (hex).
    sha256: String,
    /// The backup's 16-byte age file key, hex.
    #[schema(format = Password)]
    file_key: String,
    /// The roles and other globals saved with the backup, to apply first; `null` when
    /// none were saved.
    #[schema(required = true)]
    globals: Option<GlobalsPart>,
}

/// The globals object saved with a backup, with its own file key.
#[derive(ToSchema)]
#[schema(as = wire::GlobalsPart)]
pub struct GlobalsPart {
    /// The object's key, relative to the destination's prefix.
    object_key: String,
    /// Its ciphertext size.
    size: i64,
    /// Its ciphertext SHA-256 (hex).
    sha256: String,
    /// Its 16-byte age file key, hex.
    #[schema(format = Password)]
    file_key: String,
}

/// `POST /agent/v1/jobs/{job}/progress`: a heartbeat, which renews the job's lease.
#[derive(ToSchema)]
#[schema(as = wire::ProgressReport)]
pub struct ProgressReport {
    /// Bytes so far.
    bytes: i64,
    /// What the job is doing.
    phase: String,
}

/// What a heartbeat answers.
#[derive(ToSchema)]
#[schema(as = wire::ProgressAnswer)]
pub struct ProgressAnswer {
    /// How long the renewed lease lasts.
    lease_secs: i64,
}

/// `POST /agent/v1/jobs/{job}/complete`: the job's final report.
#[derive(ToSchema)]
#[schema(as = wire::Completion)]
pub struct Completion {
    /// Whether the job succeeded.
    succeeded: bool,
    /// The object key of a successful backup (the one fixed at claim).
    #[serde(skip_serializing_if = "Option::is_none")]
    object_key: Option<String>,
    /// Ciphertext size.
    #[serde(default)]
    size: i64,
    /// The dump's size before compression and encryption.
    #[serde(skip_serializing_if = "Option::is_none")]
    dump_size: Option<i64>,
    /// How long the backup took on the agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_ms: Option<i64>,
    /// Ciphertext SHA-256 (hex).
    #[serde(default)]
    sha256: String,
    #[serde(default)]
    pg_server_version: String,
    #[serde(default)]
    pg_dump_version: String,
    /// What went wrong, when it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The attempt the agent claimed.
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<i64>,
    /// The cluster's roles and other globals, saved next to a successful backup (absent
    /// when they could not be read).
    #[serde(skip_serializing_if = "Option::is_none")]
    globals: Option<StoredObject>,
    /// A backup asked to count rows: rows per table in the dump's snapshot (an object
    /// of integers by `schema.table`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    row_counts: Option<std::collections::BTreeMap<String, i64>>,
    /// A drill: what it measured and checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    drill: Option<DrillReport>,
}

/// What a restore drill measured and checked.
#[derive(ToSchema)]
#[schema(as = wire::DrillReport)]
pub struct DrillReport {
    /// How long the restore took, when it finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    restore_ms: Option<i64>,
    /// Tables whose row counts were compared.
    tables_checked: i64,
    /// Whether the check query returned true.
    #[serde(skip_serializing_if = "Option::is_none")]
    check_query_passed: Option<bool>,
}

/// An object an agent stored.
#[derive(ToSchema)]
#[schema(as = wire::StoredObject)]
pub struct StoredObject {
    /// Its key, relative to the destination's prefix.
    object_key: String,
    /// Ciphertext size.
    size: i64,
    /// Ciphertext SHA-256 (hex).
    sha256: String,
}

/// What the final report answers.
#[derive(ToSchema)]
#[schema(as = wire::CompletionAnswer)]
pub struct CompletionAnswer {
    /// The job's state now: `succeeded`, `queued` (to be retried) or `failed`.
    state: String,
}

/// The organisation's CRL, DER-encoded (`application/pkix-crl`).
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Crl(Vec<u8>);
