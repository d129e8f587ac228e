//! A real Prometheus for the metrics tests: Debian bookworm's `prometheus`, from the
//! cache `scripts/provision-testdeps` fills, scraping one target every second and
//! evaluating rule files every second; and Debian's `promtool`, which checks an
//! exposition and rule files the way operators' tooling will. Missing binaries are an
//! error naming the provisioning command: the test fails, it is never skipped.

use crate::deps::Deps;
use crate::ports::free_port;
use crate::process::ServerProcess;
use crate::tempdir::TempDir;
use crate::webdriver::exchange;
use crate::{KitError, Result};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// How long one call of Prometheus's HTTP API may take.
const API_TIMEOUT: Duration = Duration::from_secs(30);

/// What Prometheus scrapes.
#[derive(Debug, Clone)]
pub struct ScrapeTarget<'a> {
    /// `127.0.0.1:PORT` of an HTTP (not HTTPS) listener serving `/metrics`.
    pub address: &'a str,
    /// A file holding the bearer token to send, if the target wants one.
    pub bearer_token_file: Option<&'a Path>,
}

/// A running Prometheus; stopped (and its data removed) on drop.
#[derive(Debug)]
pub struct PrometheusServer {
    port: u16,
    // Dropped after the process (fields drop in order).
    _process: ServerProcess,
    _dir: TempDir,
}

impl PrometheusServer {
    /// Starts Prometheus scraping `target` every second, with `rule_files` evaluated
    /// every second, and waits until it is ready.
    pub fn start(target: &ScrapeTarget<'_>, rule_files: &[&Path]) -> Result<Self> {
        Self::start_with(&Deps::from_env(), target, rule_files)
    }

    /// As [`PrometheusServer::start`], with the binaries from `deps`.
    pub fn start_with(
        deps: &Deps,
        target: &ScrapeTarget<'_>,
        rule_files: &[&Path],
    ) -> Result<Self> {
        let prometheus = deps.tool("prometheus")?;
        let dir = TempDir::new("prometheus")?;
        let rules: Vec<String> = rule_files
            .iter()
            .map(|f| format!("  - {}", yaml_string(&f.display().to_string())))
            .collect();
        let auth = target
            .bearer_token_file
            .map(|f| {
                format!(
                    "    authorization:\n      credentials_file: {}\n",
                    yaml_string(&f.display().to_string())
                )
            })
            .unwrap_or_default();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n{}\n\
             scrape_configs:\n  - job_name: dbcrate\n{auth}    static_configs:\n      \
             - targets: [{}]\n",
            if rules.is_empty() {
                "  []".to_string()
            } else {
                rules.join("\n")
            },
            yaml_string(target.address),
        );
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, config)
            .map_err(|e| KitError::io("writing prometheus.yml", e))?;
        let port = free_port()?;
        let mut cmd = Command::new(&prometheus);
        cmd.arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--log.level=warn");
        let mut process = ServerProcess::spawn(
            "prometheus",
            cmd,
            &dir.path().join("prometheus.log"),
            libc::SIGTERM,
        )?;
        process.wait_until(Duration::from_secs(60), || {
            exchange(port, "GET", "/-/ready", b"", API_TIMEOUT).is_ok_and(|(s, _)| s == 200)
        })?;
        Ok(Self {
            port,
            _process: process,
            _dir: dir,
        })
    }

    /// `GET path` of the HTTP API; answers its `data` (an error names the path).
    pub fn api(&self, path: &str) -> Result<Value> {
        let (status, body) = exchange(self.port, "GET", path, b"", API_TIMEOUT)?;
        let json: Value = serde_json::from_slice(&body).map_err(|e| {
            KitError::new(format!(
                "prometheus {path}: answer {status} is not JSON ({e})"
            ))
        })?;
        if status != 200 || json["status"] != "success" {
            return Err(KitError::new(format!("prometheus {path}: {status} {json}")));
        }
        Ok(json["data"].clone())
    }

    /// The alerts now firing (each with `labels` and `annotations`).
    pub fn firing_alerts(&self) -> Result<Vec<Value>> {
        let data = self.api("/api/v1/alerts")?;
        Ok(data["alerts"]
            .as_array()
            .map(|all| {
                all.iter()
                    .filter(|a| a["state"] == "firing")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The scrape targets and their health (`up`, the last error).
    pub fn targets(&self) -> Result<Value> {
        self.api("/api/v1/targets")
    }
}

/// Double-quoted YAML scalar of `text`.
fn yaml_string(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// Runs stock `promtool check metrics` on an exposition: answers what it said, or an
/// error with its complaints (format errors and lint problems alike fail).
pub fn promtool_check_metrics(deps: &Deps, exposition: &str) -> Result<String> {
    let promtool = deps.tool("promtool")?;
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| KitError::io("starting promtool", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(exposition.as_bytes())
            .map_err(|e| KitError::io("feeding promtool", e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| KitError::io("waiting for promtool", e))?;
    promtool_outcome("promtool check metrics", &out)
}

/// What promtool said, or an error with its complaints when it failed.
fn promtool_outcome(what: &str, out: &std::process::Output) -> Result<String> {
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(said)
    } else {
        Err(KitError::new(format!(
            "{what} failed ({}): {said}",
            out.status
        )))
    }
}

/// Runs stock `promtool check rules` on rule files.
pub fn promtool_check_rules(deps: &Deps, files: &[&Path]) -> Result<String> {
    let promtool = deps.tool("promtool")?;
    let out = Command::new(&promtool)
        .args(["check", "rules"])
        .args(files)
        .output()
        .map_err(|e| KitError::io("running promtool check rules", e))?;
    promtool_outcome("promtool check rules", &out)
}
