//! The master keys control planes under test run with.
//!
//! Why here: the control plane's tests, the agent's tests against an in-process control
//! plane and the release gate each spelled out the same test key. One definition keeps
//! them the same value (a database a kept test directory holds opens with it) and makes
//! plain that it is a test value, never a deployment's key.

/// The first master key (`mk1`), in the `id:base64` form `DBCRATE_MASTER_KEY` takes.
pub const TEST_MASTER_KEY: &str = "mk1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A second master key (`mk2`), for rotation tests.
pub const TEST_MASTER_KEY_2: &str = "mk2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
