//! What the simulated agents saw, shared between them and the report.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Calls made, by kind.
#[derive(Default)]
pub struct Counts {
    pub polls: AtomicU64,
    pub crl_pulls: AtomicU64,
    pub renewals: AtomicU64,
    pub completions: AtomicU64,
    pub errors: AtomicU64,
}

/// A job as an agent received it.
#[derive(Clone)]
pub struct Record {
    pub job: String,
    pub attempt: i64,
    pub received: Instant,
}

/// State every simulated agent shares.
pub struct Shared {
    pub fingerprint: [u8; 32],
    /// The agent listener of each replica.
    pub agent_urls: Vec<String>,
    pub poll_hold: Duration,
    pub crl_interval: Duration,
    pub stop_at: Instant,
    pub counts: Counts,
    /// When the generator asked for each job (run now).
    queued: Mutex<HashMap<String, Instant>>,
    received: Mutex<Vec<Record>>,
    /// Errors by their first words, with how often each came and the first whole one.
    errors: Mutex<BTreeMap<String, (u64, String)>>,
}

/// Locks `m`, even after a panic elsewhere (the data are counters and lists).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub fn new(
        fingerprint: [u8; 32],
        agent_urls: Vec<String>,
        poll_hold: Duration,
        crl_interval: Duration,
        stop_at: Instant,
    ) -> Self {
        Self {
            fingerprint,
            agent_urls,
            poll_hold,
            crl_interval,
            stop_at,
            counts: Counts::default(),
            queued: Mutex::default(),
            received: Mutex::default(),
            errors: Mutex::default(),
        }
    }

    pub fn record(&self, record: Record) {
        lock(&self.received).push(record);
    }

    pub fn note_queued(&self, job: String, asked: Instant) {
        lock(&self.queued).insert(job, asked);
    }

    pub fn note_error(&self, error: &str) {
        // Job ids and ports differ per call; the first words tell the kind, and the
        // first whole message of each kind says why.
        let kind: String = error.chars().take(90).collect();
        let mut errors = lock(&self.errors);
        let seen = errors.entry(kind).or_insert_with(|| (0, error.to_string()));
        seen.0 += 1;
    }

    /// Errors by kind: how often, and the first whole message.
    pub fn errors(&self) -> BTreeMap<String, (u64, String)> {
        lock(&self.errors).clone()
    }

    pub fn received(&self) -> Vec<Record> {
        lock(&self.received).clone()
    }

    pub fn queued(&self) -> HashMap<String, Instant> {
        lock(&self.queued).clone()
    }
}

/// The `q` quantile (0..=1) of `values`, sorted here.
pub fn quantile(values: &mut [Duration], q: f64) -> Option<Duration> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let rank = ((values.len() as f64 - 1.0) * q).round() as usize;
    Some(values[rank.min(values.len() - 1)])
}
