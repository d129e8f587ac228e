//! The operator's dashboard in a real browser: Debian's Chromium, headless, driven over
//! WebDriver, against a real control plane on loopback HTTPS. Every page is checked for
//! CSP violations and JavaScript errors, with axe-core (no serious or critical
//! problems, light and dark), for sideways scrolling at 375 px, and photographed under
//! `target/dashboard-screenshots/`. A missing Chromium fails with the provisioning
//! command; it is never a skipped test.
//!
//! `headers` checks the answers themselves over HTTPS, without a browser.

// The set-up the control plane's test binaries share.
#[path = "../common/mod.rs"]
mod common;

mod agents;
mod alerts;
mod audit;
mod backups;
mod databases;
mod destinations;
mod harness;
mod headers;
mod http;
mod invitations;
mod members;
mod overview;
mod page_times;
mod recovery_key;
mod schedules;
mod sign_in;
