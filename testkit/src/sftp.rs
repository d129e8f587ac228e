//! A real SFTP server: OpenSSH's sshd on loopback with `internal-sftp` only.

use crate::deps::Deps;
use crate::ports::free_port;
use crate::process::{run, ServerProcess};
use crate::tempdir::TempDir;
use crate::user::ServiceUser;
use crate::{KitError, Result};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// An sshd that accepts one user with one client key and serves only SFTP, starting in
/// [`SftpServer::root`]. Its host key is fresh, so clients must pin
/// [`SftpServer::known_hosts_line`]. Stopped and deleted on drop.
#[derive(Debug)]
pub struct SftpServer {
    process: ServerProcess,
    dir: TempDir,
    port: u16,
    user: String,
    known_hosts_line: String,
}

impl SftpServer {
    /// Starts sshd from the default cache.
    pub fn start() -> Result<Self> {
        Self::start_with(&Deps::from_env())
    }

    /// Starts sshd from `deps` with a generated host key and client key.
    pub fn start_with(deps: &Deps) -> Result<Self> {
        Self::spawn(deps, &[])
    }

    /// Starts sshd (from the default cache) whose SFTP server refuses the named requests
    /// (`internal-sftp -P`, e.g. `remove`): storage where the key may write but not
    /// delete, as a customer's restricted account would be.
    pub fn start_refusing(requests: &[&str]) -> Result<Self> {
        Self::spawn(&Deps::from_env(), requests)
    }

    fn spawn(deps: &Deps, refused_requests: &[&str]) -> Result<Self> {
        let sshd = deps.tool("sshd")?;
        let keygen = deps.tool("ssh-keygen")?;
        let user = ServiceUser::for_servers()?;
        let dir = TempDir::new("sftp")?;
        let d = dir.path();
        for (file, comment) in [
            ("host_ed25519", "dbcrate-test-host"),
            ("client_ed25519", "dbcrate-test-client"),
        ] {
            run(
                "ssh-keygen",
                Command::new(&keygen)
                    .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
                    .arg(d.join(file)),
            )?;
        }
        // sshd reads its host key as the service user and insists on mode 0600.
        user.give(&d.join("host_ed25519"))?;
        let client_pub = read(&d.join("client_ed25519.pub"))?;
        write(&d.join("authorized_keys"), &client_pub, 0o644)?;
        let root = d.join("root");
        std::fs::create_dir(&root).map_err(|e| KitError::io("creating the SFTP root", e))?;
        user.give(&root)?;

        let host_pub = read(&d.join("host_ed25519.pub"))?;
        let host_key: Vec<&str> = host_pub.split_whitespace().take(2).collect();

        let mut last_error = None;
        for _ in 0..3 {
            let port = free_port()?;
            let config = d.join("sshd_config");
            // UsePAM yes: without PAM, sshd treats `nobody` (password field `*`) as a
            // locked account and refuses it; with PAM only the account stage runs, since
            // password and keyboard-interactive logins are off.
            let text = format!(
                "Port {port}\n\
                 ListenAddress 127.0.0.1\n\
                 HostKey {d}/host_ed25519\n\
                 PidFile none\n\
                 AuthorizedKeysFile {d}/authorized_keys\n\
                 StrictModes no\n\
                 PubkeyAuthentication yes\n\
                 PasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\n\
                 UsePAM yes\n\
                 AllowUsers {name}\n\
                 AllowTcpForwarding no\n\
                 X11Forwarding no\n\
                 Subsystem sftp internal-sftp\n\
                 ForceCommand internal-sftp -d {root}{refuse}\n\
                 LogLevel VERBOSE\n",
                d = d.display(),
                name = user.name,
                root = root.display(),
                refuse = if refused_requests.is_empty() {
                    String::new()
                } else {
                    format!(" -P {}", refused_requests.join(","))
                },
            );
            write(&config, &text, 0o644)?;
            let mut cmd = Command::new(&sshd);
            cmd.arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .current_dir(d);
            user.apply(&mut cmd);
            let log = d.join(format!("sshd-{port}.log"));
            let mut process = ServerProcess::spawn("sshd", cmd, &log, libc::SIGTERM)?;
            match process.wait_until(Duration::from_secs(30), || has_ssh_banner(port)) {
                Ok(()) => {
                    return Ok(Self {
                        process,
                        port,
                        user: user.name.clone(),
                        known_hosts_line: format!("[127.0.0.1]:{port} {}", host_key.join(" ")),
                        dir,
                    })
                }
                Err(e) if process.log_text().contains("in use") => last_error = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_error.unwrap_or_else(|| KitError::new("sshd did not start")))
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The login name the server accepts.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The client's private key (OpenSSH format, no passphrase, mode 0600).
    pub fn client_key(&self) -> PathBuf {
        self.dir.path().join("client_ed25519")
    }

    /// The server's host key as one `known_hosts` line: `[127.0.0.1]:PORT ssh-ed25519 …`.
    pub fn known_hosts_line(&self) -> &str {
        &self.known_hosts_line
    }

    /// Writes a `known_hosts` file holding only this server's key and returns its path.
    pub fn write_known_hosts(&self) -> Result<PathBuf> {
        let path = self.dir.path().join("known_hosts");
        write(&path, &format!("{}\n", self.known_hosts_line), 0o644)?;
        Ok(path)
    }

    /// The server-side directory SFTP sessions start in (relative paths land here).
    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// The `sftp://user@127.0.0.1:port` prefix for URLs addressing [`Self::root`].
    pub fn url(&self) -> String {
        format!(
            "sftp://{}@127.0.0.1:{}{}",
            self.user,
            self.port,
            self.root().display()
        )
    }

    /// Cuts every open SFTP connection (SIGKILL to sshd's per-connection processes; the
    /// server itself keeps accepting new ones), as a server or network that drops
    /// connections mid-transfer does. Returns how many connections were cut.
    pub fn drop_connections(&self) -> usize {
        let sessions = crate::process::children_of(self.process.id());
        // Each connection's processes: the privileged monitor, the network child, sftp.
        let mut doomed = sessions.clone();
        let mut i = 0;
        while i < doomed.len() {
            doomed.extend(crate::process::children_of(doomed[i]));
            i += 1;
        }
        for pid in doomed.iter().rev() {
            crate::user::send_signal(*pid, libc::SIGKILL);
        }
        sessions.len()
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.process.log_text()
    }
}

/// True once something on `port` speaks SSH.
fn has_ssh_banner(port: u16) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = [0u8; 8];
    let start = Instant::now();
    let mut got = 0;
    while got < buf.len() && start.elapsed() < Duration::from_secs(2) {
        match stream.read(&mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    buf.starts_with(b"SSH-2.0")
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map_err(|e| KitError::io(format!("reading {}", path.display()), e))
}

fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    std::fs::write(path, text)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)))
        .map_err(|e| KitError::io(format!("writing {}", path.display()), e))
}
