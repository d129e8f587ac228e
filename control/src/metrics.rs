//! `/metrics` in the Prometheus text format, on a listener of its own (plain HTTP,
//! `127.0.0.1:9464` unless `DBCRATE_METRICS_LISTEN` says otherwise; a bearer token from
//! `DBCRATE_METRICS_TOKEN_FILE` is required before it may listen anywhere but
//! loopback). Per database the newest backup's time, size and duration, the deadline
//! of its next scheduled backup and its failures; agents by state, when each was last
//! seen and its version; the job queue and claim latency; retention's deletions;
//! restores; master-key unwraps by reason. docs/metrics.md lists them with the example
//! alert rules in docs/prometheus/.
//!
//! The agent listens on nothing: what it knows reaches these figures through its calls
//! (last seen, version) and its job reports.

mod collect;
mod endpoint;
mod exposition;

pub use collect::{render, CLAIM_WINDOW_SECS};
pub use endpoint::{router, MetricsAccess};
