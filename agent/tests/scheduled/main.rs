//! Scheduled jobs end to end: a control plane (in this process, or `dbcrate-control
//! serve` as a process), an agent enrolled with `dbcrate-agent enroll` and running
//! `dbcrate-agent run`, real PostgreSQL servers and real storage.

#[path = "../common/mod.rs"]
mod common;

mod agent_faults;
mod control_restart;
mod directory_roots;
mod drills;
mod every_major;
mod registry_tools;
mod scene;
mod storage_faults;
