//! The dbcrate control plane as a library. Each behaviour is one hop from here;
//! docs/architecture.md maps the whole system and docs/security.md its rules.
//!
//! It is where customers' secrets live, so the pieces that guard them come first, and
//! the modules are layered: each depends only on the ones listed before it.
//!
//! | module | what it holds |
//! | --- | --- |
//! | [`envelope`] | encryption of each secret under its own key, wrapped by the master key from the environment |
//! | [`error`], [`names`], [`tokens`] | the error type and ids; checks on names people type; bearer tokens and their hashes |
//! | [`memory`] | handing the allocator's freed memory back to the system |
//! | [`db`] | the embedded SQLite or a PostgreSQL database, schema kept in step with the binary |
//! | [`rows`] | rows read into structs by column name; enums stored as their text |
//! | [`audit`] | the one way to write the append-only, hash-chained audit log; its chain key, heads and queries |
//! | [`secrets`] | sealed secrets in the database (every unwrap audited), the audit key's custody, customer-sealed org keys |
//! | [`accounts`] | people: passwords, sessions, second factors, roles, members, invitations, API tokens, throttling |
//! | [`orgs`] | organisations and their age keys |
//! | [`pki`] | the per-organisation agent CA, certificates, CRLs, the agent identity in a certificate |
//! | [`agents`] | enrolment tokens, enrolment, renewal, revocation |
//! | [`backups`] | databases, destinations, schedules, the job queue, credential hand-out, restores, retention |
//! | [`alerts`] | conditions (overdue backups, silent agents, failed jobs) turned into alerts, delivered to webhooks and Slack with retries |
//! | [`housekeeping`] | the minute loop: due schedules, lease expiry, retention, throttle pruning, freed memory |
//! | [`metrics`] | `/metrics` for Prometheus, read from the database at each scrape |
//! | [`server`] | listeners, TLS (operator and agent mTLS), connection bounds, transport types |
//! | [`config`] | the environment the binary reads, and the settings handed to agents |
//! | [`http`] | the HTTPS API: router, authentication, handlers |
//! | [`web`] | the operator's dashboard: server-rendered pages over the same domain functions, strict CSP |
//! | [`setup`], [`local`] | first-run set-up; the one-command local control plane |
#![deny(missing_docs)]

pub mod accounts;
pub mod agents;
pub mod alerts;
pub mod audit;
pub mod backups;
pub mod config;
pub mod db;
pub mod envelope;
pub mod error;
pub mod housekeeping;
pub mod http;
pub mod local;
pub mod memory;
pub mod metrics;
pub mod names;
pub mod orgs;
pub mod pki;
pub mod rows;
pub mod secrets;
pub mod server;
pub mod setup;
pub mod tokens;
pub mod web;
