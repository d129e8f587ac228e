//! A globals script split into the SQL statements the server runs one by one.
//!
//! The agent does not hand a backup's globals to psql: psql would also run any
//! meta-command in them (`\!` runs a shell command on the agent's host, `\copy … to
//! program` too), and a backup's objects are written by whoever holds the destination's
//! credentials or an agent of the organisation — a restore must not turn that into code
//! running on another host. Instead the script is split at the semicolons that end its
//! statements (outside quotes, dollar quotes and comments) and each statement goes to the
//! server over the agent's own connection, where only SQL exists. pg_dumpall's
//! `\restrict`/`\unrestrict` lines (psql's own guard against exactly this) are dropped;
//! any other line that starts with a backslash is refused and reported, never run.

/// What the script holds: the statements to run, and the meta-commands refused.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Split {
    /// SQL statements, each with its terminating semicolon.
    pub statements: Vec<String>,
    /// Lines that were psql meta-commands (other than `\restrict`/`\unrestrict`).
    pub refused: Vec<String>,
}

/// Where the scanner is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    Quoted,
    Identifier,
    LineComment,
    BlockComment(u32),
}

/// Splits `script` into statements.
pub fn split(script: &str) -> Split {
    let mut out = Split::default();
    let mut current = String::new();
    let mut state = State::Code;
    let mut dollar: Option<String> = None;
    for line in script.split_inclusive('\n') {
        if state == State::Code && dollar.is_none() && only_comments(&current) {
            let trimmed = line.trim_start();
            if let Some(meta) = trimmed.strip_prefix('\\') {
                let command = meta.split_whitespace().next().unwrap_or("");
                if command != "restrict" && command != "unrestrict" {
                    out.refused.push(trimmed.trim_end().to_string());
                }
                current.clear();
                continue;
            }
        }
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let next = chars.get(i + 1).copied();
            current.push(c);
            if let Some(tag) = &dollar {
                if c == '$' && line[char_offset(&chars, i)..].starts_with(tag.as_str()) {
                    current.push_str(&tag[1..]);
                    i += tag.chars().count();
                    dollar = None;
                    continue;
                }
                i += 1;
                continue;
            }
            match state {
                State::Code => match c {
                    '\'' => state = State::Quoted,
                    '"' => state = State::Identifier,
                    '-' if next == Some('-') => state = State::LineComment,
                    '/' if next == Some('*') => {
                        state = State::BlockComment(1);
                        current.push('*');
                        i += 1;
                    }
                    '$' => {
                        if let Some(tag) = dollar_tag(&chars[i..]) {
                            current.push_str(&tag[1..]);
                            i += tag.chars().count();
                            dollar = Some(tag);
                            continue;
                        }
                    }
                    ';' => {
                        out.statements
                            .push(std::mem::take(&mut current).trim().to_string());
                    }
                    _ => {}
                },
                State::Quoted => {
                    if c == '\'' {
                        if next == Some('\'') {
                            current.push('\'');
                            i += 1;
                        } else {
                            state = State::Code;
                        }
                    }
                }
                State::Identifier => {
                    if c == '"' {
                        state = State::Code;
                    }
                }
                State::LineComment => {
                    if c == '\n' {
                        state = State::Code;
                    }
                }
                State::BlockComment(depth) => {
                    if c == '*' && next == Some('/') {
                        current.push('/');
                        i += 1;
                        state = match depth {
                            1 => State::Code,
                            d => State::BlockComment(d - 1),
                        };
                    } else if c == '/' && next == Some('*') {
                        current.push('*');
                        i += 1;
                        state = State::BlockComment(depth + 1);
                    }
                }
            }
            i += 1;
        }
    }
    let rest = current.trim();
    if !rest.is_empty() && !only_comments(rest) {
        out.statements.push(rest.to_string());
    }
    out
}

/// The byte offset of `chars[i]` in the line they came from.
fn char_offset(chars: &[char], i: usize) -> usize {
    chars[..i].iter().map(|c| c.len_utf8()).sum()
}

/// A dollar-quote tag (`$$`, `$body$`) at the start of `chars`.
fn dollar_tag(chars: &[char]) -> Option<String> {
    let mut tag = String::from("$");
    for &c in &chars[1..] {
        if c == '$' {
            tag.push('$');
            return Some(tag);
        }
        if !(c.is_alphanumeric() || c == '_') || (tag.len() == 1 && c.is_ascii_digit()) {
            return None;
        }
        tag.push(c);
    }
    None
}

/// Whether `text` holds nothing but comments and whitespace.
fn only_comments(text: &str) -> bool {
    text.lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with("--"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_end_at_semicolons_outside_quotes_and_comments() {
        let script = "--\n-- dump\n--\n\\restrict Abc123\n\
            SET default_transaction_read_only = off;\n\
            --\n-- Roles\n--\n\
            CREATE ROLE \"a;b\";\n\
            COMMENT ON ROLE \"a;b\" IS 'it''s; two\nlines';\n\
            /* a; /* nested; */ comment */ ALTER ROLE x SET search_path TO 'a;b';\n\
            SELECT $f$ ; $f$, $$;$$;\n\
            --\n\\unrestrict Abc123\n--\n-- complete\n--\n";
        let found = split(script);
        assert_eq!(
            found.statements,
            [
                "SET default_transaction_read_only = off;",
                "--\n-- Roles\n--\nCREATE ROLE \"a;b\";",
                "COMMENT ON ROLE \"a;b\" IS 'it''s; two\nlines';",
                "/* a; /* nested; */ comment */ ALTER ROLE x SET search_path TO 'a;b';",
                "SELECT $f$ ; $f$, $$;$$;",
            ]
        );
        assert!(found.refused.is_empty());
    }

    #[test]
    fn meta_commands_are_refused_not_run() {
        let script =
            "CREATE ROLE a;\n\\! touch /tmp/owned\n  \\copy t to program 'sh'\nCREATE ROLE b;\n";
        let found = split(script);
        assert_eq!(found.statements, ["CREATE ROLE a;", "CREATE ROLE b;"]);
        assert_eq!(
            found.refused,
            ["\\! touch /tmp/owned", "\\copy t to program 'sh'"]
        );
        // Inside a statement a backslash is SQL's to judge (the server refuses it).
        let inside = split("SELECT 1 \\! ls\n;\n");
        assert_eq!(inside.statements, ["SELECT 1 \\! ls\n;"]);
    }
}
