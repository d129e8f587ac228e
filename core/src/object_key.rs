//! Where a backup lives in the customer's storage.
//!
//! `<prefix>/<database>/<YYYY>/<MM>/<DD>/<YYYYMMDDTHHMMSSZ>-<job>.pgdump.zst.age`
//! (docs/architecture.md, "Backup"): sorted by time within a database, readable by a person browsing the
//! bucket, and named after the pipeline that produced it so that stock tools are
//! obviously the way back (`age -d | zstd -d | pg_restore`).

use crate::time::UtcDateTime;

/// The suffix every backup object carries.
pub const BACKUP_SUFFIX: &str = ".pgdump.zst.age";

/// The suffix of the object saved next to a backup with the cluster's roles and other
/// globals (`pg_dumpall --globals-only`, plain SQL for `psql`).
pub const GLOBALS_SUFFIX: &str = ".globals.sql.zst.age";

/// The key of the globals object that belongs to the backup at `backup_key`: the same
/// name with [`GLOBALS_SUFFIX`], so the two sort together in any listing and a person
/// browsing the bucket sees which roles go with which dump. `None` for a key that is
/// not a backup's.
pub fn globals_key(backup_key: &str) -> Option<String> {
    let stem = backup_key.strip_suffix(BACKUP_SUFFIX)?;
    Some(format!("{stem}{GLOBALS_SUFFIX}"))
}

/// Why a name cannot be part of an object key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {part}: {reason}")]
pub struct InvalidKeyPart {
    /// Which part (`database name`, `job`, `prefix`).
    pub part: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The object key of a backup of `database` made at `at` by `job`, under `prefix`
/// (empty for the bucket's root; leading and trailing slashes are ignored).
pub fn backup_object_key(
    prefix: &str,
    database: &str,
    job: &str,
    at: UtcDateTime,
) -> Result<String, InvalidKeyPart> {
    check_segment("database name", database)?;
    check_segment("job", job)?;
    let prefix = prefix.trim_matches('/');
    for segment in prefix.split('/').filter(|s| !s.is_empty()) {
        check_segment("prefix", segment)?;
    }
    let body = format!(
        "{database}/{:04}/{:02}/{:02}/{}-{job}{BACKUP_SUFFIX}",
        at.year,
        at.month,
        at.day,
        at.basic()
    );
    Ok(if prefix.is_empty() {
        body
    } else {
        format!("{prefix}/{body}")
    })
}

/// A key segment must not be empty, climb directories, or hide a path separator or a
/// control character (which would break listings and SFTP/file paths alike). Callers
/// check names that will become segments (database names) when they are saved.
pub fn check_segment(part: &'static str, s: &str) -> Result<(), InvalidKeyPart> {
    let fail = |reason| Err(InvalidKeyPart { part, reason });
    if s.is_empty() {
        return fail("it is empty");
    }
    if s == "." || s == ".." {
        return fail("it is `.` or `..`");
    }
    if s.contains('/') || s.contains('\\') {
        return fail("it contains a slash");
    }
    if s.chars().any(char::is_control) {
        return fail("it contains a control character");
    }
    if s.len() > 200 {
        return fail("it is longer than 200 bytes");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globals_sit_next_to_their_backup() {
        assert_eq!(
            globals_key("acme/shop/2026/12/04/20261204T010203Z-job_1.pgdump.zst.age").as_deref(),
            Some("acme/shop/2026/12/04/20261204T010203Z-job_1.globals.sql.zst.age")
        );
        assert_eq!(globals_key("acme/shop/notes.txt"), None);
    }

    #[test]
    fn layout_matches_the_design() {
        let at = UtcDateTime::from_unix(1_709_210_096);
        assert_eq!(
            backup_object_key("/backups/prod/", "shop", "j1", at).unwrap(),
            "backups/prod/shop/2024/02/29/20240229T123456Z-j1.pgdump.zst.age"
        );
        assert_eq!(
            backup_object_key("", "Ünïcode db", "cli", at).unwrap(),
            "Ünïcode db/2024/02/29/20240229T123456Z-cli.pgdump.zst.age"
        );
    }

    #[test]
    fn path_tricks_are_refused() {
        let at = UtcDateTime::from_unix(0);
        for (prefix, db) in [
            ("", ".."),
            ("", "a/b"),
            ("x/../y", "db"),
            ("", ""),
            ("", "a\nb"),
        ] {
            assert!(
                backup_object_key(prefix, db, "j", at).is_err(),
                "{prefix:?} {db:?}"
            );
        }
    }
}
