//! A short sample of the control plane under load (docs/benchmarks.md has the full
//! runs): 200 simulated agents on the debug control plane, SQLite, 30 seconds of jobs
//! queued at 240 a minute. It guards the load generator itself and the protocol paths
//! it drives: every job handed out once, recorded once, none lost.

use std::path::PathBuf;
use std::process::Command;

/// The control plane's binary next to this package's (one target directory).
fn control_bin() -> PathBuf {
    let load = PathBuf::from(env!("CARGO_BIN_EXE_dbcrate-load"));
    let bin = load.with_file_name("dbcrate-control");
    assert!(
        bin.is_file(),
        "no {} — build it first: cargo build -p dbcrate-control",
        bin.display()
    );
    bin
}

#[test]
fn two_hundred_agents_get_every_job_exactly_once() {
    let out = Command::new(env!("CARGO_BIN_EXE_dbcrate-load"))
        .args([
            "--agents",
            "200",
            "--minutes",
            "0.5",
            "--jobs-per-minute",
            "240",
        ])
        .args(["--poll-secs", "5", "--drain-secs", "30"])
        .arg("--control-bin")
        .arg(control_bin())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report}\n{log}");
    assert!(report.contains("exactly once: yes"), "{report}");
    // "- jobs: N queued (0 failed to queue), N received by agents, 0 received twice, 0 never"
    let jobs = report
        .lines()
        .find_map(|l| l.strip_prefix("- jobs: "))
        .unwrap_or_else(|| panic!("no jobs line in {report}"));
    let numbers: Vec<u64> = jobs
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let [queued, failed, received, twice, never] = numbers[..] else {
        panic!("unexpected jobs line: {jobs}");
    };
    // 240 a minute for 30 s, give or take the last one on a busy machine.
    assert!(queued >= 100, "{report}");
    assert_eq!(
        (failed, received, twice, never),
        (0, queued, 0, 0),
        "{report}"
    );
}
