//! The control plane's HTTPS API, over real TLS on loopback, on SQLite and PostgreSQL:
//! account flows, the routes × roles × foreign-organisation matrix, bad input, and the
//! OpenAPI document.

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
mod openapi;
mod reach;
