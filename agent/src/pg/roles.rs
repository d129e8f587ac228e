//! Roles a restore finds already on the target server, and keeping them as they are
//! when the backup's globals are applied.
//!
//! `pg_dumpall --globals-only` writes, for every role, `CREATE ROLE name;` then
//! `ALTER ROLE name WITH …;` (and `ALTER ROLE name [IN DATABASE d] SET …;` for its
//! settings), each on one line, the name quoted as an identifier when it needs it. Run
//! as they are against a server that has the role, the CREATE fails harmlessly but the
//! ALTERs would overwrite the existing role's attributes and settings with the backed-up
//! ones — a restore could lock out a login or grant superuser. So the lines that create
//! or alter an existing role are left out; everything else (new roles, memberships,
//! tablespaces) is applied. A line is left out only when it is exactly one such
//! statement (it ends with `;`); anything unexpected is applied and psql reports what
//! fails.

use super::conninfo::DatabaseUrl;
use super::server::{connect, failure, within_timeout};
use crate::error::Result;
use sqlx::Connection;
use std::collections::BTreeSet;

/// The names of the roles on `url`'s server.
pub async fn existing(url: &DatabaseUrl) -> Result<BTreeSet<String>> {
    let mut conn = connect(url).await?;
    within_timeout(url, async {
        let names: Vec<String> = sqlx::query_scalar("SELECT rolname::text FROM pg_roles")
            .fetch_all(&mut conn)
            .await
            .map_err(|e| failure(url, "listing the roles of", e))?;
        let _ = conn.close().await;
        Ok(names.into_iter().collect())
    })
    .await
}

/// A globals script with the existing roles' lines left out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Kept {
    /// The script to apply.
    pub script: Vec<u8>,
    /// Roles the script would have created or changed that exist, kept as they are.
    pub kept: BTreeSet<String>,
    /// Roles the script creates.
    pub created: BTreeSet<String>,
}

/// Leaves out of `script` the lines that create or alter a role in `existing`.
pub fn keep_existing(script: &[u8], existing: &BTreeSet<String>) -> Kept {
    let mut out = Kept::default();
    for line in script.split_inclusive(|b| *b == b'\n') {
        match role_statement(line) {
            Some((_, role)) if existing.contains(&role) => {
                out.kept.insert(role);
            }
            Some((Statement::Create, role)) => {
                out.created.insert(role);
                out.script.extend_from_slice(line);
            }
            _ => out.script.extend_from_slice(line),
        }
    }
    out
}

/// Which of the role statements a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Statement {
    /// `CREATE ROLE name;`
    Create,
    /// `ALTER ROLE name WITH …;`, `ALTER ROLE name SET …;`, `ALTER ROLE name IN DATABASE …;`
    Alter,
}

/// The statement and role of a line that is one `CREATE ROLE`/`ALTER ROLE` statement.
fn role_statement(line: &[u8]) -> Option<(Statement, String)> {
    let line = std::str::from_utf8(line)
        .ok()?
        .trim_end_matches(['\n', '\r']);
    if !line.ends_with(';') {
        return None;
    }
    if let Some(rest) = line.strip_prefix("CREATE ROLE ") {
        let (role, rest) = identifier(rest)?;
        return (rest == ";").then_some((Statement::Create, role));
    }
    let rest = line.strip_prefix("ALTER ROLE ")?;
    let (role, rest) = identifier(rest)?;
    [" WITH ", " SET ", " IN DATABASE "]
        .iter()
        .any(|p| rest.starts_with(p))
        .then_some((Statement::Alter, role))
}

/// An SQL identifier at the start of `text` (double-quoted with `""` for a quote, or
/// bare up to a space or `;`) and what follows it.
fn identifier(text: &str) -> Option<(String, &str)> {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut name = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            if c != '"' {
                name.push(c);
                continue;
            }
            if quoted[i + 1..].starts_with('"') {
                name.push('"');
                chars.next();
                continue;
            }
            return Some((name, &quoted[i + 1..]));
        }
        return None;
    }
    let end = text.find([' ', ';'])?;
    (end > 0).then(|| (text[..end].to_ascii_lowercase(), &text[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "\
SET default_transaction_read_only = off;
CREATE ROLE postgres;
ALTER ROLE postgres WITH SUPERUSER INHERIT CREATEROLE CREATEDB LOGIN REPLICATION BYPASSRLS;
CREATE ROLE \"Shop \"\"Clerk\"\"\";
ALTER ROLE \"Shop \"\"Clerk\"\"\" WITH NOSUPERUSER INHERIT LOGIN CONNECTION LIMIT 3;
CREATE ROLE shop_reader;
ALTER ROLE shop_reader WITH NOSUPERUSER NOLOGIN;
ALTER ROLE shop_reader SET statement_timeout TO '5min';
ALTER ROLE postgres IN DATABASE shop SET work_mem TO '8MB';
COMMENT ON ROLE shop_reader IS 'reads; the shop';
GRANT shop_reader TO \"Shop \"\"Clerk\"\"\" GRANTED BY postgres;
";

    fn roles(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn existing_roles_are_neither_created_nor_altered() {
        let kept = keep_existing(SCRIPT.as_bytes(), &roles(&["postgres", "shop_reader"]));
        let script = String::from_utf8(kept.script).unwrap();
        assert_eq!(
            script,
            "\
SET default_transaction_read_only = off;
CREATE ROLE \"Shop \"\"Clerk\"\"\";
ALTER ROLE \"Shop \"\"Clerk\"\"\" WITH NOSUPERUSER INHERIT LOGIN CONNECTION LIMIT 3;
COMMENT ON ROLE shop_reader IS 'reads; the shop';
GRANT shop_reader TO \"Shop \"\"Clerk\"\"\" GRANTED BY postgres;
"
        );
        assert_eq!(kept.kept, roles(&["postgres", "shop_reader"]));
        assert_eq!(kept.created, roles(&["Shop \"Clerk\""]));
    }

    #[test]
    fn on_a_server_without_them_everything_is_applied() {
        let kept = keep_existing(SCRIPT.as_bytes(), &roles(&["someone_else"]));
        assert_eq!(kept.script, SCRIPT.as_bytes());
        assert!(kept.kept.is_empty());
        assert_eq!(
            kept.created,
            roles(&["postgres", "Shop \"Clerk\"", "shop_reader"])
        );
    }

    #[test]
    fn only_whole_role_statements_are_left_out() {
        let existing = roles(&["a"]);
        for line in [
            "CREATE ROLE a WITH LOGIN;\n", // not pg_dumpall's form: applied, psql reports it
            "ALTER ROLE a RENAME TO b;\n",
            "ALTER ROLE a WITH LOGIN\n", // continues on the next line
            "CREATE ROLE \"a;\n",
            "-- CREATE ROLE a;\n",
        ] {
            let kept = keep_existing(line.as_bytes(), &existing);
            assert_eq!(kept.script, line.as_bytes(), "{line}");
        }
        // A bare name is folded to lower case, as the server does; a quoted one is not.
        assert!(keep_existing(b"CREATE ROLE A;\n", &existing)
            .script
            .is_empty());
        assert!(!keep_existing(b"CREATE ROLE \"A\";\n", &existing)
            .script
            .is_empty());
    }
}
