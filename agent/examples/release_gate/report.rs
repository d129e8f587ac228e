//! The gate's answer: a table for people, a JSON summary for machines, and the pass
//! records `scripts/build-release --notes` insists on.

use crate::args::{Args, Candidate};
use crate::major::{Measured, Storage};
use serde_json::{json, Value};

pub enum Outcome {
    Pass(Measured),
    Fail(String),
    /// No client of that major exists for the architecture; never counted as a pass.
    NotCovered(String),
}

pub struct Row {
    pub arch: &'static str,
    pub major: u32,
    pub storage: &'static str,
    pub outcome: Outcome,
}

impl Row {
    pub fn new(candidate: &Candidate, major: u32, storage: Storage, outcome: Outcome) -> Self {
        Self {
            arch: candidate.arch.name(),
            major,
            storage: storage.name(),
            outcome,
        }
    }

    pub fn passed(&self) -> bool {
        matches!(self.outcome, Outcome::Pass(_))
    }

    fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail(_))
    }

    /// One line of the table.
    pub fn line(&self) -> String {
        let (result, backup, restore, bytes, note) = match &self.outcome {
            Outcome::Pass(m) => (
                "pass",
                format!("{:.1}", m.backup_seconds),
                format!("{:.1}", m.restore_seconds),
                m.bytes.to_string(),
                String::new(),
            ),
            Outcome::Fail(why) => ("FAIL", "-".into(), "-".into(), "-".into(), why.clone()),
            Outcome::NotCovered(why) => (
                "not covered",
                "-".into(),
                "-".into(),
                "-".into(),
                why.clone(),
            ),
        };
        let note = note.lines().next().unwrap_or_default().to_string();
        format!(
            "{:<6} {:>5}  {:<5} {:<12} {:>8} {:>9} {:>10}  {note}",
            self.arch, self.major, self.storage, result, backup, restore, bytes
        )
    }

    fn json(&self) -> Value {
        let mut v = json!({ "arch": self.arch, "major": self.major, "destination": self.storage });
        match &self.outcome {
            Outcome::Pass(m) => {
                v["result"] = "pass".into();
                v["backup_seconds"] = json!(m.backup_seconds);
                v["managed_restore_seconds"] = json!(m.restore_seconds);
                v["bytes"] = json!(m.bytes);
            }
            Outcome::Fail(why) => {
                v["result"] = "fail".into();
                v["reason"] = why.clone().into();
            }
            Outcome::NotCovered(why) => {
                v["result"] = "not covered".into();
                v["reason"] = why.clone().into();
            }
        }
        v
    }
}

pub struct Summary {
    candidates: Vec<Candidate>,
    all_majors: bool,
    rows: Vec<Row>,
}

impl Summary {
    pub fn new(args: &Args, rows: Vec<Row>) -> Self {
        Self {
            candidates: args.candidates.clone(),
            all_majors: args.all_majors(),
            rows,
        }
    }

    /// No case failed (cases not covered are listed, not failed) and something passed.
    pub fn passed(&self) -> bool {
        !self.rows.iter().any(Row::failed) && self.rows.iter().any(Row::passed)
    }

    pub fn table(&self) -> String {
        let mut out = vec![format!(
            "{:<6} {:>5}  {:<5} {:<12} {:>8} {:>9} {:>10}  note",
            "arch", "major", "dest", "result", "backup_s", "restore_s", "bytes"
        )];
        out.extend(self.rows.iter().map(Row::line));
        let count = |f: fn(&Row) -> bool| self.rows.iter().filter(|r| f(r)).count();
        out.push(format!(
            "\n{} passed, {} failed, {} not covered — gate {}",
            count(Row::passed),
            count(Row::failed),
            count(|r| matches!(r.outcome, Outcome::NotCovered(_))),
            if self.passed() { "PASSED" } else { "FAILED" }
        ));
        out.join("\n")
    }

    fn json(&self) -> Value {
        json!({
            "passed": self.passed(),
            "all_majors": self.all_majors,
            "candidates": self.candidates.iter().map(|c| json!({
                "arch": c.arch.name(),
                "binary": c.binary,
                "sha256": c.sha256,
            })).collect::<Vec<_>>(),
            "cases": self.rows.iter().map(Row::json).collect::<Vec<_>>(),
        })
    }

    /// Writes the JSON summary and, when every major was gated and nothing failed, a
    /// pass record per candidate.
    pub fn write(&self, args: &Args) -> Result<(), String> {
        if let Some(path) = &args.json {
            let text = serde_json::to_string_pretty(&self.json()).expect("serialisable");
            std::fs::write(path, text + "\n")
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
        }
        let Some(dir) = &args.pass_records else {
            return Ok(());
        };
        if !self.passed() || !self.all_majors {
            return Ok(());
        }
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        for c in &self.candidates {
            let record = dir.join(format!("passed-{}", c.sha256));
            let text = format!(
                "{} {} passed the release gate on {} (PostgreSQL 13-18, S3 and SFTP)\n",
                c.arch.name(),
                c.binary.display(),
                dbcrate_core::time::UtcDateTime::from_unix(dbcrate_core::time::unix_now())
                    .rfc3339()
            );
            std::fs::write(&record, text)
                .map_err(|e| format!("writing {}: {e}", record.display()))?;
        }
        Ok(())
    }
}
