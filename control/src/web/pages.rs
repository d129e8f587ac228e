//! The dashboard's pages, one file per area of the navigation (`layout::NAV`). Each
//! handler takes who is signed in from `session`, calls the domain functions the JSON
//! API calls, and renders with `layout` and `forms`.

pub mod account;
pub mod agents;
pub mod alert_channels;
pub mod alerts;
pub mod audit;
pub mod backups;
pub mod databases;
pub mod destinations;
pub mod home;
pub mod invitations;
pub mod jobs;
pub mod members;
pub mod org;
pub mod overview;
pub mod recovery_key;
pub mod schedule;
pub mod schedule_checks;
pub mod schedules;
pub mod sign_in;
