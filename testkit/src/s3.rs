//! A real S3-compatible object store: a single-node Garage on loopback.

use crate::deps::Deps;
use crate::ports::free_port;
use crate::process::{run, ServerProcess};
use crate::random::random_hex;
use crate::tempdir::TempDir;
use crate::{KitError, Result};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The region Garage is configured with; clients must sign for it.
pub const GARAGE_REGION: &str = "garage";

/// A Garage server with one bucket and one key allowed to read, write and own it.
/// Clients must use path-style requests. Stopped and deleted on drop.
pub struct S3Server {
    process: Option<ServerProcess>,
    dir: TempDir,
    garage: PathBuf,
    endpoint: String,
    bucket: String,
    access_key_id: String,
    secret_access_key: String,
}

impl fmt::Debug for S3Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Server")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("dir", &self.dir.path())
            .finish()
    }
}

impl S3Server {
    /// Starts Garage from the default cache.
    pub fn start() -> Result<Self> {
        Self::start_with(&Deps::from_env())
    }

    /// Starts Garage from `deps`, lays out a one-node cluster and creates a bucket and
    /// a key.
    pub fn start_with(deps: &Deps) -> Result<Self> {
        let garage = deps.tool("garage")?;
        let dir = TempDir::new("s3")?;
        let (rpc, s3, admin) = (free_port()?, free_port()?, free_port()?);
        let config = dir.path().join("garage.toml");
        let d = dir.path().display();
        let text = format!(
            r#"metadata_dir = "{d}/meta"
data_dir = "{d}/data"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{GARAGE_REGION}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:{admin}"
"#,
            secret = random_hex(32)?
        );
        std::fs::write(&config, text).map_err(|e| KitError::io("writing garage.toml", e))?;

        let process = spawn_garage(&garage, &config, dir.path())?;
        let cli = |args: &[&str]| {
            let mut c = Command::new(&garage);
            c.arg("-c").arg(&config).args(args).env("RUST_LOG", "warn");
            c
        };

        let node = run("garage node id", &mut cli(&["node", "id", "-q"]))?;
        let node = node
            .trim()
            .split('@')
            .next()
            .unwrap_or_default()
            .to_string();
        run(
            "garage layout assign",
            &mut cli(&["layout", "assign", "-z", "dc1", "-c", "1G", &node]),
        )?;
        run(
            "garage layout apply",
            &mut cli(&["layout", "apply", "--version", "1"]),
        )?;
        let access_key_id = format!("GK{}", random_hex(12)?);
        let secret_access_key = random_hex(32)?;
        let bucket = format!("test-{}", random_hex(4)?);
        run(
            "garage key import",
            &mut cli(&["key", "import", "--yes", &access_key_id, &secret_access_key]),
        )?;
        run(
            "garage bucket create",
            &mut cli(&["bucket", "create", &bucket]),
        )?;
        run(
            "garage bucket allow",
            &mut cli(&[
                "bucket",
                "allow",
                "--read",
                "--write",
                "--owner",
                &bucket,
                "--key",
                &access_key_id,
            ]),
        )?;
        let server = Self {
            process: Some(process),
            dir,
            garage,
            endpoint: format!("http://127.0.0.1:{s3}"),
            bucket,
            access_key_id,
            secret_access_key,
        };
        server.wait_for_s3_api()?;
        Ok(server)
    }

    /// Waits until the S3 listener answers HTTP (the layout takes a moment to apply).
    fn wait_for_s3_api(&self) -> Result<()> {
        let addr = self.endpoint.trim_start_matches("http://").to_string();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if std::net::TcpStream::connect(&addr).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(match &self.process {
            Some(p) => p.failure("S3 API did not listen within 30 s"),
            None => KitError::new("Garage is stopped"),
        })
    }

    /// Stops Garage at once (SIGKILL), as when storage disappears mid-upload.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    /// Starts Garage again on the same data and ports after [`Self::kill`].
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        let config = self.dir.path().join("garage.toml");
        self.process = Some(spawn_garage(&self.garage, &config, self.dir.path())?);
        self.wait_for_s3_api()
    }

    /// The S3 endpoint, `http://127.0.0.1:<port>` (path-style requests).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The region to sign requests for.
    pub fn region(&self) -> &str {
        GARAGE_REGION
    }

    /// The bucket created for this server.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The access key id allowed to use the bucket.
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The secret of that key.
    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    /// The server's working directory (config, data, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Adds to a `dbcrate-agent backup|restore` command the flags and environment that
    /// reach this store (endpoint, region, path-style, and the key in `AWS_*`).
    pub fn agent_flags(&self, cmd: &mut Command) {
        self.agent_flags_through(cmd, &self.endpoint);
    }

    /// [`S3Server::agent_flags`] with the requests sent to `endpoint` instead (a proxy in
    /// front of this store, such as [`crate::FaultyHttp`]).
    pub fn agent_flags_through(&self, cmd: &mut Command, endpoint: &str) {
        cmd.args(["--s3-endpoint", endpoint, "--s3-region", GARAGE_REGION])
            .arg("--s3-path-style")
            .env("AWS_ACCESS_KEY_ID", &self.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret_access_key);
    }

    /// Runs stock `curl` against `path` under the bucket (`key`, `?list-type=2`, …),
    /// signed with SigV4. `args` go before the URL (`-X`, `-T`, `-o`, `--fail`, …). The
    /// credentials reach curl on stdin, never on its command line.
    pub fn curl(&self, args: &[&str], path: &str) -> Result<std::process::Output> {
        use std::io::Write;
        let mut child = Command::new("curl")
            .args(["-sS", "-K", "-"])
            .args(args)
            .arg("--aws-sigv4")
            .arg(format!("aws:amz:{GARAGE_REGION}:s3"))
            .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
            .arg(format!("{}/{}/{path}", self.endpoint, self.bucket))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| KitError::io("running curl (Debian package curl)", e))?;
        let config = format!(
            "user = \"{}:{}\"\n",
            self.access_key_id, self.secret_access_key
        );
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(config.as_bytes())
                .map_err(|e| KitError::io("writing curl's config", e))?;
        }
        child
            .wait_with_output()
            .map_err(|e| KitError::io("waiting for curl", e))
    }

    /// Runs a `garage` admin command against this server (e.g. to create another key).
    pub fn admin(&self, args: &[&str]) -> Result<String> {
        let mut c = Command::new(&self.garage);
        c.arg("-c")
            .arg(self.dir.path().join("garage.toml"))
            .args(args)
            .env("RUST_LOG", "warn");
        run(&format!("garage {}", args.join(" ")), &mut c)
    }
}

/// Starts `garage server` and waits until it answers its own status command.
fn spawn_garage(garage: &Path, config: &Path, dir: &Path) -> Result<ServerProcess> {
    let mut cmd = Command::new(garage);
    cmd.arg("-c")
        .arg(config)
        .arg("server")
        .env("RUST_LOG", "warn");
    let mut process = ServerProcess::spawn("Garage", cmd, &dir.join("garage.log"), libc::SIGINT)?;
    process.wait_until(Duration::from_secs(60), || {
        Command::new(garage)
            .arg("-c")
            .arg(config)
            .arg("status")
            .env("RUST_LOG", "warn")
            .output()
            .is_ok_and(|o| o.status.success())
    })?;
    Ok(process)
}
