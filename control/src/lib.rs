//! The dbcrate control plane as a library.
//!
//! It is where customers' secrets live, so the pieces that guard them come first:
//! [`envelope`] encrypts every secret under its own key, wrapped by a master key that
//! comes from the deployment environment and never touches the database; [`db`] opens
//! the embedded SQLite or a PostgreSQL database and keeps its schema in step with the
//! binary; [`audit`] is the one way to write the append-only audit log, chained under a
//! key ([`audit_key`]) the database cannot open. People ([`users`], [`members`],
//! [`invitations`], [`sessions`], [`second_factor`], [`api_tokens`]), agents ([`pki`],
//! [`agents`]), backups ([`databases`], [`destinations`], [`schedules`], [`jobs`],
//! [`restores`], [`retention`]) and the HTTPS API ([`http`], [`serve`]) are built on
//! those. docs/architecture.md maps the whole system; docs/security.md its rules.
#![deny(missing_docs)]

pub mod agent_tls;
pub mod agents;
pub mod api_tokens;
pub mod audit;
pub mod audit_heads;
pub mod audit_key;
pub mod audit_query;
pub mod config;
pub mod customer_seal;
pub mod databases;
pub mod db;
pub mod destinations;
pub mod envelope;
pub mod error;
pub mod http;
pub mod invitations;
pub mod jobs;
pub mod local;
pub mod members;
pub mod names;
pub mod orgs;
pub mod pki;
pub mod restores;
pub mod retention;
pub mod scheduler;
pub mod schedules;
pub mod second_factor;
pub mod secrets;
pub mod serve;
pub mod sessions;
pub mod setup;
pub mod throttle;
pub mod tls;
pub mod totp;
pub mod users;
