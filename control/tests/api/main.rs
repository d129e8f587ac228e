//! The control plane's HTTPS API, over real TLS on loopback, on SQLite and PostgreSQL:
//! account flows, the routes × roles × foreign-organisation matrix, bad input, and the
//! OpenAPI document.

// The set-up the control plane's test binaries share.
#[path = "../common/mod.rs"]
mod common;

mod agents;
mod backups;
mod bad_input;
mod customer_seal;
mod destinations;
mod flows;
mod harness;
mod invitations;
mod jobs;
mod matrix;
mod names;
mod one_connection;
mod openapi;
mod presence;
mod query_plans;
mod reach;
