//! Scheduled jobs end to end: a control plane (in this process, or `dbcrate-control
//! serve` as a process), an agent enrolled with `dbcrate-agent enroll` and running
//! `dbcrate-agent run`, real PostgreSQL servers and real storage.

#[path = "../common/mod.rs"]
mod common;

mod agent_faults;
mod clock_jump;
mod control_kills;
mod control_restart;
mod dependency_outages;
mod directory_roots;
mod drills;
mod every_major;
mod kill_checks;
mod kill_points;
mod registry_tools;
mod scene;
mod served;
mod storage_faults;
