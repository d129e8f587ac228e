//! The agent's identity on disk: `<data-dir>/identity/` (mode 0700, owned by the agent's
//! user) holding `key.pem` (0600), `cert.pem` (certificate and organisation CA),
//! `root.pem` (the deployment root, to check CRLs against) and `link.json` (control
//! plane URL, ids, certificate times, how the control plane's certificate is pinned)
//! and, once a CRL was accepted, `crl-floor.json` (the newest CRL's number and
//! thisUpdate: older CRLs are refused, see `revocation`).
//!
//! Each file is replaced atomically (temporary file, fsync, rename, directory fsync). A
//! renewal changes three files, so it first writes all of them into one journal file
//! (`renewal.json`), then replaces them, then removes the journal; loading finds a
//! journal left by a crash and completes it. So the agent always has a key and
//! certificate that belong together. The agent refuses to use an identity another user
//! could read or change.

use super::revocation::CrlPosition;
use crate::datadir::{self, effective_uid, open_at};
use crate::error::{Error, Result};
use dbcrate_core::secret::SecretString;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How the control plane's TLS certificate is trusted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerPin {
    /// Certificates (PEM) to trust as roots, from `--ca-file`.
    CaPem(String),
    /// The SHA-256 fingerprint of the control plane's certificate (`AB:CD:…`).
    Fingerprint(String),
}

/// Everything but the key and certificates.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// The control plane's agent endpoint.
    pub control_url: String,
    /// The organisation (from the certificate the control plane issued).
    pub org_id: String,
    /// This agent's id.
    pub agent_id: String,
    /// When the current certificate became valid (Unix seconds).
    pub not_before: i64,
    /// When it expires.
    pub not_after: i64,
    /// How the control plane is trusted.
    pub server: ServerPin,
}

/// A loaded identity.
#[derive(Debug)]
pub struct Identity {
    /// The identity directory.
    pub dir: PathBuf,
    /// The private key (PEM).
    pub key_pem: SecretString,
    /// The certificate then the organisation CA (PEM).
    pub chain_pem: String,
    /// The deployment root (PEM).
    pub root_pem: String,
    /// The rest.
    pub link: Link,
    /// The newest CRL accepted so far, if any: an older one is refused.
    pub crl_floor: Option<CrlPosition>,
}

/// `<data-dir>/identity`.
pub fn dir_of(data_dir: &Path) -> PathBuf {
    data_dir.join("identity")
}

fn io<'a>(doing: &'a str, path: &'a Path) -> impl FnOnce(std::io::Error) -> Error + 'a {
    move |e| Error::identity(format!("{doing} {}: {e}", path.display())).with_source(e)
}

/// Refuses a path that group or others can access, or that another user owns.
fn check_private(path: &Path, what: &str, fix_mode: &str) -> Result<()> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| {
        Error::identity(format!(
            "cannot read {what} {}: {e}; enrol first with `dbcrate-agent enroll`",
            path.display()
        ))
    })?;
    if meta.file_type().is_symlink() {
        return Err(symlink_refused(path, what));
    }
    check_metadata(&meta, path, what, fix_mode)
}

fn symlink_refused(path: &Path, what: &str) -> Error {
    Error::identity(format!(
        "{what} {} is a symbolic link; the agent uses only a real {what}",
        path.display()
    ))
}

/// The mode and owner rules of [`check_private`], on metadata already read.
fn check_metadata(meta: &std::fs::Metadata, path: &Path, what: &str, fix_mode: &str) -> Result<()> {
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::identity(format!(
            "{what} {} has mode {mode:o}, open to group or others: run `chmod {fix_mode} {}`",
            path.display(),
            path.display()
        )));
    }
    let me = effective_uid();
    if meta.uid() != me {
        return Err(Error::identity(format!(
            "{what} {} is owned by uid {}, not by the agent's user (uid {me}): run `chown -R` \
             to the agent's user, or run the agent as its owner",
            path.display(),
            meta.uid()
        )));
    }
    Ok(())
}

/// A data directory problem as an identity problem: `run` cannot start until a person
/// fixes it.
fn as_identity(e: Error) -> Error {
    Error::identity(e.to_string()).with_source(e)
}

/// The identity directory, opened (without following a symbolic link, relative to the
/// checked data directory) and checked (0700, the agent's own) once; its files are then
/// opened relative to this open directory, so swapping the directory or a file for a
/// link after the check changes nothing that is read.
struct OpenDir {
    file: std::fs::File,
    path: PathBuf,
}

impl OpenDir {
    /// Opens `path`, `<data-dir>/identity`, after checking the data directory.
    fn open(path: &Path) -> Result<Self> {
        let what = "identity directory";
        let (Some(data_dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(Error::identity(format!(
                "{} is not a directory in a data directory",
                path.display()
            )));
        };
        if let Err(e) = std::fs::metadata(data_dir) {
            return Err(open_refused(e, path, what));
        }
        let data = datadir::Dir::open_data_dir(data_dir, false).map_err(as_identity)?;
        let file = open_at(data.file(), &name.to_string_lossy(), libc::O_DIRECTORY)
            .map_err(|e| open_refused(e, path, what))?;
        let meta = file.metadata().map_err(io("cannot inspect", path))?;
        check_metadata(&meta, path, what, "700")?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Reads the identity file `name`: opened without following a symbolic link and
    /// checked on the open file itself (a regular file, mode 0600 or stricter, the
    /// agent's own). Every identity file counts: the certificates, the pinned root and
    /// the server pin decide whom the agent trusts as much as the key does.
    fn read(&self, name: &str, what: &str) -> Result<String> {
        let path = self.path.join(name);
        let file = open_at(&self.file, name, 0).map_err(|e| open_refused(e, &path, what))?;
        read_checked(file, &path, what)
    }

    /// [`Self::read`] for a file that may not exist (a link still counts, and is refused).
    fn read_if_present(&self, name: &str, what: &str) -> Result<Option<String>> {
        let path = self.path.join(name);
        match open_at(&self.file, name, 0) {
            Ok(file) => read_checked(file, &path, what).map(Some),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(open_refused(e, &path, what)),
        }
    }
}

/// The checks of [`OpenDir::read`] on the opened file, then its text.
fn read_checked(mut file: std::fs::File, path: &Path, what: &str) -> Result<String> {
    use std::io::Read;
    let meta = file.metadata().map_err(io("cannot inspect", path))?;
    if !meta.is_file() {
        return Err(Error::identity(format!(
            "{what} {} is not a regular file",
            path.display()
        )));
    }
    check_metadata(&meta, path, what, "600")?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(io("cannot read", path))?;
    Ok(text)
}

fn open_refused(e: std::io::Error, path: &Path, what: &str) -> Error {
    // O_NOFOLLOW refuses a link with ELOOP, or ENOTDIR where a directory was asked for.
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if e.raw_os_error() == Some(libc::ELOOP) || is_link {
        symlink_refused(path, what)
    } else {
        Error::identity(format!(
            "cannot read {what} {}: {e}; enrol first with `dbcrate-agent enroll`",
            path.display()
        ))
    }
}

fn write_atomically(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io("cannot create", &tmp))?;
    file.write_all(bytes).map_err(io("cannot write", &tmp))?;
    file.sync_all().map_err(io("cannot sync", &tmp))?;
    std::fs::rename(&tmp, &target).map_err(io("cannot rename into", &target))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("cannot sync", dir))
}

/// Stores a new identity, creating `<data-dir>/identity/` (0700). An existing identity
/// is refused: re-enrolling means removing it first, deliberately.
pub fn create(
    data_dir: &Path,
    key_pem: &SecretString,
    chain_pem: &str,
    root_pem: &str,
    link: &Link,
) -> Result<()> {
    let dir = dir_of(data_dir);
    if dir.join("key.pem").exists() {
        return Err(Error::invalid_input(format!(
            "{} holds an identity already; remove the directory to enrol again",
            dir.display()
        )));
    }
    let data = datadir::Dir::open_data_dir(data_dir, true).map_err(as_identity)?;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .or_else(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Ok(()),
            _ => Err(e),
        })
        .map_err(io("cannot create", &dir))?;
    check_private(&dir, "identity directory", "700")?;
    data.sync().map_err(as_identity)?;
    write_all(&dir, key_pem, chain_pem, Some(root_pem), link)
}

/// What a renewal writes, all at once, before touching the files it replaces.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Journal {
    key_pem: String,
    chain_pem: String,
    link: Link,
}

impl Drop for Journal {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key_pem);
    }
}

const JOURNAL: &str = "renewal.json";
/// The newest CRL accepted (see [`Identity::raise_crl_floor`]).
pub const CRL_FLOOR: &str = "crl-floor.json";

/// Completes a renewal a crash interrupted, if there is one.
fn finish_journal(open: &OpenDir) -> Result<()> {
    let dir = open.path.as_path();
    let path = dir.join(JOURNAL);
    let Some(text) = open.read_if_present(JOURNAL, "renewal journal")? else {
        return Ok(());
    };
    let text = zeroize::Zeroizing::new(text);
    let journal: Journal = serde_json::from_str(&text).map_err(|e| {
        Error::identity(format!(
            "{}: {e}; remove it and re-enrol if it persists",
            path.display()
        ))
    })?;
    let mut journal = journal;
    let key = SecretString::new(std::mem::take(&mut journal.key_pem));
    write_all(dir, &key, &journal.chain_pem, None, &journal.link)?;
    std::fs::remove_file(&path).map_err(io("cannot remove", &path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("cannot sync", dir))
}

fn write_all(
    dir: &Path,
    key_pem: &SecretString,
    chain_pem: &str,
    root_pem: Option<&str>,
    link: &Link,
) -> Result<()> {
    let link_json = serde_json::to_vec_pretty(link)
        .map_err(|e| Error::identity(format!("encoding link.json: {e}")))?;
    if let Some(root) = root_pem {
        write_atomically(dir, "root.pem", root.as_bytes(), 0o600)?;
    }
    // Key and certificate go together; link.json (with the new times) last.
    write_atomically(dir, "key.pem", key_pem.expose_secret().as_bytes(), 0o600)?;
    write_atomically(dir, "cert.pem", chain_pem.as_bytes(), 0o600)?;
    write_atomically(dir, "link.json", &link_json, 0o600)
}

/// Loads the identity, refusing loose modes, another owner or symbolic links.
pub fn load(data_dir: &Path) -> Result<Identity> {
    let dir = dir_of(data_dir);
    let open = OpenDir::open(&dir)?;
    finish_journal(&open)?;
    let key_pem = SecretString::new(open.read("key.pem", "key file")?);
    let link: Link = serde_json::from_str(&open.read("link.json", "link file")?)
        .map_err(|e| Error::identity(format!("{}: {e}", dir.join("link.json").display())))?;
    let crl_floor = match open.read_if_present(CRL_FLOOR, "CRL floor file")? {
        None => None,
        Some(text) => Some(serde_json::from_str(&text).map_err(|e| {
            Error::identity(format!(
                "{}: {e}; the CRL floor is damaged. Removing the file lets the agent accept \
                 any validly signed CRL again (including an older one a replay sends), so \
                 first check that the control plane serves its newest CRL",
                dir.join(CRL_FLOOR).display()
            ))
        })?),
    };
    Ok(Identity {
        key_pem,
        chain_pem: open.read("cert.pem", "certificate file")?,
        root_pem: open.read("root.pem", "root certificate file")?,
        link,
        crl_floor,
        dir,
    })
}

impl Identity {
    /// Replaces key and certificate after a renewal.
    pub fn replace(
        &mut self,
        key_pem: SecretString,
        chain_pem: String,
        not_before: i64,
        not_after: i64,
    ) -> Result<()> {
        let mut link = self.link.clone();
        link.not_before = not_before;
        link.not_after = not_after;
        let journal = zeroize::Zeroizing::new(
            serde_json::to_vec(&Journal {
                key_pem: key_pem.expose_secret().to_string(),
                chain_pem: chain_pem.clone(),
                link: link.clone(),
            })
            .map_err(|e| Error::identity(format!("encoding the renewal journal: {e}")))?,
        );
        write_atomically(&self.dir, JOURNAL, &journal, 0o600)?;
        finish_journal(&OpenDir::open(&self.dir)?)?;
        self.key_pem = key_pem;
        self.chain_pem = chain_pem;
        self.link = link;
        Ok(())
    }

    /// Raises the CRL floor to `position` if that is newer (a lower one changes nothing),
    /// in memory first, then in `crl-floor.json` (0600, atomically).
    pub fn raise_crl_floor(&mut self, position: CrlPosition) -> Result<()> {
        if self
            .crl_floor
            .as_ref()
            .is_some_and(|floor| *floor >= position)
        {
            return Ok(());
        }
        let bytes = serde_json::to_vec(&position)
            .map_err(|e| Error::identity(format!("encoding the CRL floor: {e}")))?;
        self.crl_floor = Some(position);
        write_atomically(&self.dir, CRL_FLOOR, &bytes, 0o600)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A link to a control plane that is never reached (the revocation tests store
    /// identities with it too).
    pub(crate) fn link() -> Link {
        Link {
            control_url: "https://control.invalid:8444".into(),
            org_id: "org".into(),
            agent_id: "agent".into(),
            not_before: 0,
            not_after: i64::MAX,
            server: ServerPin::Fingerprint("AB:CD".into()),
        }
    }

    /// An identity (its contents unchecked here) in a fresh data directory.
    fn enrolled() -> dbcrate_testkit::TempDir {
        let data = dbcrate_testkit::TempDir::new("identity").unwrap();
        let key = SecretString::new("key".into());
        create(data.path(), &key, "chain", "root", &link()).unwrap();
        data
    }

    fn position(number: &str, this_update: i64) -> CrlPosition {
        serde_json::from_value(serde_json::json!({
            "crl_number": number,
            "this_update": this_update,
        }))
        .unwrap()
    }

    fn mode_of(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn a_data_directory_others_can_write_to_is_refused() {
        let data = enrolled();
        load(data.path()).unwrap();
        for loose in [0o777, 0o775, 0o730] {
            std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(loose)).unwrap();
            let err = load(data.path()).unwrap_err();
            assert_eq!(err.kind(), crate::error::ErrorKind::Identity, "{err}");
            let text = err.to_string();
            assert!(text.contains("data directory"), "{text}");
            assert!(
                text.contains(&format!("chmod go-w {}", data.path().display())),
                "{loose:o}: {text}"
            );
        }
        // Enrolling into such a directory is refused too, before anything is written.
        let other = data.path().join("other");
        std::fs::create_dir(&other).unwrap();
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o777)).unwrap();
        let key = SecretString::new("key".into());
        let err = create(&other, &key, "chain", "root", &link()).unwrap_err();
        assert!(err.to_string().contains("chmod go-w"), "{err}");
        assert!(!dir_of(&other).exists());
        std::fs::set_permissions(data.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        load(data.path()).unwrap();
    }

    #[test]
    fn the_crl_floor_only_rises_and_is_stored_privately() {
        let data = enrolled();
        let mut identity = load(data.path()).unwrap();
        assert_eq!(identity.crl_floor, None);
        let file = identity.dir.join(CRL_FLOOR);
        assert!(!file.exists());
        identity.raise_crl_floor(position("9", 100)).unwrap();
        assert_eq!(mode_of(&file), 0o600);
        // Lower, or the same number with an earlier thisUpdate: nothing changes.
        identity.raise_crl_floor(position("8", 500)).unwrap();
        identity.raise_crl_floor(position("9", 50)).unwrap();
        assert_eq!(identity.crl_floor, Some(position("9", 100)));
        assert_eq!(
            load(data.path()).unwrap().crl_floor,
            Some(position("9", 100))
        );
        identity.raise_crl_floor(position("10", 90)).unwrap();
        assert_eq!(
            load(data.path()).unwrap().crl_floor,
            Some(position("10", 90))
        );
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&identity.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn a_crl_floor_others_could_change_or_a_damaged_one_is_refused() {
        let data = enrolled();
        let mut identity = load(data.path()).unwrap();
        identity.raise_crl_floor(position("3", 100)).unwrap();
        let file = identity.dir.join(CRL_FLOOR);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o620)).unwrap();
        let err = load(data.path()).unwrap_err();
        assert_eq!(err.kind(), crate::error::ErrorKind::Identity);
        assert!(err.to_string().contains("chmod 600"), "{err}");

        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink(data.path().join("elsewhere"), &file).unwrap();
        let err = load(data.path()).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");

        std::fs::remove_file(&file).unwrap();
        write_atomically(&identity.dir, CRL_FLOOR, br#"{"crl_number":"x"}"#, 0o600).unwrap();
        let err = load(data.path()).unwrap_err().to_string();
        assert!(err.contains("the CRL floor is damaged"), "{err}");
    }
}
