//! Getting a backup object back with clients that are not dbcrate.

use dbcrate_testkit::{Deps, SftpServer};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Downloads `remote` (an absolute path on the SFTP server) into `local` with OpenSSH's
/// stock `sftp`, the server's host key pinned.
pub fn sftp_get(sftp: &SftpServer, remote: &Path, local: &Path) -> Result<(), String> {
    let deps = Deps::from_env();
    let tool = |name| deps.tool(name).map_err(|e| format!("{name}: {e}"));
    let known_hosts = sftp
        .write_known_hosts()
        .map_err(|e| format!("known_hosts: {e}"))?;
    let mut child = Command::new(tool("sftp")?)
        .arg("-S")
        .arg(tool("ssh")?)
        .args(["-q", "-b", "-", "-P", &sftp.port().to_string(), "-i"])
        .arg(sftp.client_key())
        .arg("-o")
        .arg(format!("UserKnownHostsFile={}", known_hosts.display()))
        .args(["-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"])
        .arg(format!("{}@127.0.0.1", sftp.user()))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running sftp: {e}"))?;
    let batch = format!("get \"{}\" \"{}\"\n", remote.display(), local.display());
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(batch.as_bytes())
        .map_err(|e| format!("writing to sftp: {e}"))?;
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for sftp: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "stock sftp get {} failed: {}",
            remote.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}
