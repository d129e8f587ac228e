//! Audit chain heads: the newest row (sequence and hash) of each chain, for keeping
//! somewhere else. A hash chain shows any change to its rows, but cutting its newest
//! rows off leaves a shorter chain that still verifies; a head saved earlier catches
//! that: the chain must still hold that row, with that hash.
//!
//! The text format is one chain per line: `<chain> <seq> <hash>`.

use crate::audit::AuditRow;

/// The newest row of one chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The chain (an organisation's id, or the instance chain).
    pub chain: String,
    /// The newest row's sequence number.
    pub seq: i64,
    /// The newest row's hash.
    pub hash: String,
}

impl Head {
    /// The head of a chain's rows (in order), if it has any.
    pub fn of(rows: &[AuditRow]) -> Option<Self> {
        rows.last().map(|r| Self {
            chain: r.org_id.clone(),
            seq: r.seq,
            hash: r.hash.clone(),
        })
    }

    /// One line of the heads format.
    pub fn line(&self) -> String {
        format!("{} {} {}", self.chain, self.seq, self.hash)
    }
}

/// Parses a heads file; errors name the line.
pub fn parse(text: &str) -> Result<Vec<Head>, String> {
    let mut heads = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let parsed = match fields.as_slice() {
            [chain, seq, hash]
                if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                seq.parse::<i64>().ok().filter(|s| *s >= 1).map(|seq| Head {
                    chain: (*chain).to_string(),
                    seq,
                    hash: hash.to_ascii_lowercase(),
                })
            }
            _ => None,
        };
        heads.push(parsed.ok_or_else(|| {
            format!(
                "line {} is not `<chain> <sequence> <sha256 hex>` (as `dbcrate-control audit \
                 heads` prints)",
                n + 1
            )
        })?);
    }
    Ok(heads)
}

/// Checks a saved head against its chain's current rows (in order): the row at the
/// saved sequence must still be there, with the saved hash.
pub fn check(saved: &Head, rows: &[AuditRow]) -> Result<(), String> {
    let end = rows.last().map_or(0, |r| r.seq);
    match rows.iter().find(|r| r.seq == saved.seq) {
        Some(row) if row.hash == saved.hash => Ok(()),
        Some(_) => Err(format!(
            "audit chain of organisation {} has a different row at sequence {} than when its \
             head was saved",
            saved.chain, saved.seq
        )),
        None => Err(format!(
            "audit chain of organisation {} ends at sequence {end}, before the saved head at \
             sequence {}: its newest rows were removed",
            saved.chain, saved.seq
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, hash: char) -> AuditRow {
        AuditRow {
            org_id: "org_a".into(),
            seq,
            at: String::new(),
            actor: String::new(),
            action: String::new(),
            target: String::new(),
            details: String::new(),
            prev_hash: String::new(),
            hash: hash.to_string().repeat(64),
        }
    }

    #[test]
    fn a_saved_head_holds_while_the_chain_grows_and_fails_when_cut_or_changed() {
        let rows = vec![row(1, 'a'), row(2, 'b'), row(3, 'c')];
        let head = Head::of(&rows[..2]).unwrap();
        let text = head.line();
        let saved = parse(&format!("{text}\n\n")).unwrap();
        assert_eq!(saved, vec![head.clone()]);
        assert_eq!(check(&saved[0], &rows), Ok(()));
        let cut = check(&saved[0], &rows[..1]).unwrap_err();
        assert!(cut.contains("ends at sequence 1"), "{cut}");
        let changed = vec![row(1, 'a'), row(2, 'e')];
        assert!(check(&saved[0], &changed)
            .unwrap_err()
            .contains("different row"));
        assert!(check(&saved[0], &[])
            .unwrap_err()
            .contains("ends at sequence 0"));
    }

    #[test]
    fn bad_lines_are_named() {
        assert!(parse("org_a 1 abc").unwrap_err().contains("line 1"));
        assert!(parse(&format!("\norg_a 0 {}", "a".repeat(64)))
            .unwrap_err()
            .contains("line 2"));
        assert!(parse(&format!("org_a x {}", "a".repeat(64))).is_err());
    }
}
