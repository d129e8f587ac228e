//! One simulated agent: enrols with a fresh P-256 key and a real CSR, then speaks the
//! agent protocol as dbcrate-agent does — configuration once, back-to-back job long
//! polls on a kept-alive mutual-TLS connection, CRL pulls at the interval, a renewal with
//! a new key, and for each job its credentials, a progress report and the completion.
//! Nothing is dumped or stored: the completion reports the object key it was given.

use crate::https::{Https, Identity};
use crate::record::{Record, Shared};
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An enrolled simulated agent.
pub struct SimAgent {
    pub agent_id: String,
    /// Which control plane (replica) it talks to now.
    replica: usize,
    https: Https,
}

fn key_and_csr() -> Result<(String, String), String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)
        .and_then(|csr| csr.pem())
        .map_err(|e| e.to_string())?;
    Ok((key.serialize_pem(), csr))
}

impl SimAgent {
    /// Enrols with `token` at replica `replica`.
    pub async fn enrol(
        shared: &Shared,
        token: &str,
        name: &str,
        replica: usize,
    ) -> Result<Self, String> {
        let (key_pem, csr) = key_and_csr()?;
        let anonymous = Https::new(shared.fingerprint, None)?;
        let answer = anonymous
            .call(
                hyper::Method::POST,
                &format!("{}/agent/v1/enroll", shared.agent_urls[replica]),
                &[],
                Some(&json!({ "token": token, "csr": csr, "name": name })),
                Duration::from_secs(120),
            )
            .await?;
        let enrolled: Value = answer.json("enrolling")?;
        let field = |name: &str| {
            enrolled[name]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("no {name} in the enrolment answer"))
        };
        let identity = Identity {
            key_pem,
            chain_pem: field("certificate_chain")?,
        };
        Ok(Self {
            agent_id: field("agent_id")?,
            replica,
            https: Https::new(shared.fingerprint, Some(&identity))?,
        })
    }

    fn url(&self, shared: &Shared, path: &str) -> String {
        format!("{}{path}", shared.agent_urls[self.replica])
    }

    async fn get(
        &self,
        shared: &Shared,
        path: &str,
        timeout: Duration,
    ) -> Result<crate::https::Answer, String> {
        self.https
            .call(
                hyper::Method::GET,
                &self.url(shared, path),
                &[],
                None,
                timeout,
            )
            .await
    }

    async fn post(&self, shared: &Shared, path: &str, body: Value) -> Result<Value, String> {
        self.https
            .call(
                hyper::Method::POST,
                &self.url(shared, path),
                &[],
                Some(&body),
                Duration::from_secs(60),
            )
            .await?
            .json(path)
    }

    /// After a failed call: with several replicas, the next one (a replica that died).
    fn fail_over(&mut self, shared: &Shared) {
        self.replica = (self.replica + 1) % shared.agent_urls.len();
    }

    /// Runs until `shared.stop_at`: polls, CRL pulls, one renewal at `renew_at` (if
    /// any), and every job handed over.
    pub async fn run(mut self, shared: Arc<Shared>, renew_at: Option<Instant>) {
        let mut renew_at = renew_at;
        let mut next_crl = Instant::now() + jitter(shared.crl_interval, &self.agent_id);
        let poll_timeout = shared.poll_hold + Duration::from_secs(30);
        let mut configured = false;
        while Instant::now() < shared.stop_at {
            let result: Result<(), String> = async {
                if !configured {
                    self.get(&shared, "/agent/v1/config", Duration::from_secs(60))
                        .await?
                        .json::<Value>("config")?;
                    configured = true;
                }
                if Instant::now() >= next_crl {
                    let crl = self
                        .get(&shared, "/agent/v1/crl", Duration::from_secs(60))
                        .await?;
                    if crl.status != 200 {
                        return Err(format!("GET crl: HTTP {}", crl.status));
                    }
                    shared.counts.crl_pulls.fetch_add(1, Ordering::Relaxed);
                    next_crl += shared.crl_interval;
                }
                if renew_at.is_some_and(|at| Instant::now() >= at) {
                    self.renew(&shared).await?;
                    renew_at = None;
                }
                let answer: Value = self
                    .get(&shared, "/agent/v1/jobs/next", poll_timeout)
                    .await?
                    .json("GET jobs/next")?;
                shared.counts.polls.fetch_add(1, Ordering::Relaxed);
                if answer["job"].is_object() {
                    self.work(&shared, &answer["job"]).await?;
                }
                Ok(())
            }
            .await;
            if let Err(e) = result {
                shared.counts.errors.fetch_add(1, Ordering::Relaxed);
                shared.note_error(&e);
                self.fail_over(&shared);
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }

    /// A new key and certificate, then a new connection with them.
    async fn renew(&mut self, shared: &Shared) -> Result<(), String> {
        let (key_pem, csr) = key_and_csr()?;
        let renewed = self
            .post(shared, "/agent/v1/certificate/renew", json!({ "csr": csr }))
            .await?;
        let chain_pem = renewed["certificate_chain"]
            .as_str()
            .ok_or("no certificate_chain in the renewal answer")?
            .to_string();
        self.https = Https::new(shared.fingerprint, Some(&Identity { key_pem, chain_pem }))?;
        shared.counts.renewals.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// A claimed job: record it, fetch its credentials, report progress, complete it.
    async fn work(&self, shared: &Shared, job: &Value) -> Result<(), String> {
        let id = job["id"].as_str().ok_or("a job without an id")?.to_string();
        let attempt = job["attempt"].as_i64().unwrap_or(0);
        shared.record(Record {
            job: id.clone(),
            attempt,
            received: Instant::now(),
        });
        let base = format!("/agent/v1/jobs/{id}");
        let credentials = self
            .get(
                shared,
                &format!("{base}/credentials"),
                Duration::from_secs(60),
            )
            .await?;
        if credentials.status != 200 {
            return Err(format!("GET credentials: HTTP {}", credentials.status));
        }
        self.post(
            shared,
            &format!("{base}/progress"),
            json!({ "bytes": 4096, "phase": "dumping" }),
        )
        .await?;
        let completion = json!({
            "succeeded": true,
            "object_key": job["object_key"],
            "size": 4096,
            "dump_size": 8192,
            "duration_ms": 5,
            "sha256": "ab".repeat(32),
            "pg_server_version": "17.2",
            "pg_dump_version": "17.2",
            "attempt": attempt,
        });
        self.post(shared, &format!("{base}/complete"), completion)
            .await?;
        shared.counts.completions.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// A per-agent offset within `interval`, so CRL pulls do not all come at once.
fn jitter(interval: Duration, agent_id: &str) -> Duration {
    let hash = agent_id
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    Duration::from_millis(hash % interval.as_millis().max(1) as u64)
}
