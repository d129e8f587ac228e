//! What an organisation backs up and how: the [`databases`] to dump, the
//! [`destinations`] that receive backups, the [`schedules`] that tie the two together,
//! the [`jobs`] queue agents claim work from, the one-time [`handout`] of a running
//! job's credentials, managed [`restores`], and [`retention`] that deletes what the
//! rules no longer keep. The [`scheduler`] turns due schedules into jobs; the minute loop
//! that drives it lives in [`crate::housekeeping`].

pub mod databases;
pub mod destinations;
pub mod drills;
pub mod handout;
pub mod history;
pub mod jobs;
mod objects;
pub mod overview;
pub mod restores;
pub mod retention;
pub mod scheduler;
pub mod schedules;
