//! Alerts: the control plane tells an organisation, through channels it configures,
//! when a backup is overdue, an agent went silent or a job failed — and when the first
//! two are over. One open alert per condition, repeated on a back-off, so no storm;
//! deliveries retried with a back-off and kept in a delivery log.
//!
//! `conditions` says what is wrong now; `engine` turns that into alerts and queued
//! deliveries (once per housekeeping tick); `delivery` sends them (`post`, through the
//! reach policy), signing webhook bodies (`signing`); `channels` are where they go;
//! `message` is what they say. docs/alerts.md has the receiver's side.

pub mod chain_checks;
pub mod channels;
pub mod conditions;
pub mod delivery;
pub mod engine;
pub mod log;
pub mod message;
mod post;
pub mod signing;
pub mod smtp;
mod tls;
