//! A lint that fails the build when a log call names a credential.
//!
//! Secrets must never reach a log line. Redacted `Debug` guards values; this lint guards
//! names: a `tracing`/`log` macro whose arguments mention an identifier such as
//! `password`, `secret_access_key` or `file_key` (as code, or as an inline `{name}`
//! capture in the format string) is reported, and so is an `#[instrument]` attribute
//! without `skip_all`, which would record every argument of the function.
//!
//! It works on source text with a small lexer (comments and literals understood), not on
//! types, so it flags names rather than proving absence of leaks: rename the field or
//! drop it from the call.

/// Log macros whose arguments are checked (bare or path-qualified, e.g. `tracing::info!`).
const LOG_MACROS: &[&str] = &[
    "trace",
    "debug",
    "info",
    "warn",
    "error",
    "event",
    "log",
    "span",
    "trace_span",
    "debug_span",
    "info_span",
    "warn_span",
    "error_span",
    "println",
    "eprintln",
];

/// Identifier segments (snake_case words, or runs of them) that name credentials.
const CREDENTIAL_WORDS: &[&[&str]] = &[
    &["password"],
    &["passwords"],
    &["passwd"],
    &["passphrase"],
    &["secret"],
    &["secrets"],
    &["token"],
    &["tokens"],
    &["credential"],
    &["credentials"],
    &["dek"],
    &["private", "key"],
    &["file", "key"],
    &["master", "key"],
    &["api", "key"],
    &["secret", "access", "key"],
    &["session", "token"],
];

/// One log call that names a credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// 1-based line of the offending name.
    pub line: usize,
    /// The macro or attribute (`info!`, `#[instrument]`).
    pub call: String,
    /// The credential-like identifier, or why the attribute is unsafe.
    pub name: String,
}

/// Lexical token kinds the lint cares about.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    /// A string literal's contents (raw text between the quotes).
    Str(String),
    Punct(char),
}

/// Splits Rust source into tokens with their 1-based line, dropping comments,
/// whitespace, char literals and numbers.
fn tokenize(src: &str) -> Vec<(usize, Token)> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
            }
        } else if c == 'r'
            && (at(i + 1) == '"' || (at(i + 1) == '#' && matches!(at(i + 2), '"' | '#')))
        {
            // Raw string: r"…", r#"…"#, …
            let start_line = line;
            let mut j = i + 1;
            let mut hashes = 0;
            while at(j) == '#' {
                hashes += 1;
                j += 1;
            }
            j += 1; // opening quote
            let body_start = j;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (1..=hashes).all(|k| at(j + k) == '#') {
                    break;
                }
                line += usize::from(chars[j] == '\n');
                j += 1;
            }
            let body: String = chars[body_start..j.min(chars.len())].iter().collect();
            out.push((start_line, Token::Str(body)));
            i = j + 1 + hashes;
        } else if c == '"' || (c == 'b' && at(i + 1) == '"') {
            let start_line = line;
            let mut j = i + if c == 'b' { 2 } else { 1 };
            let body_start = j;
            while j < chars.len() && chars[j] != '"' {
                if chars[j] == '\\' {
                    j += 1;
                }
                line += usize::from(at(j) == '\n');
                j += 1;
            }
            let body: String = chars[body_start..j.min(chars.len())].iter().collect();
            out.push((start_line, Token::Str(body)));
            i = j + 1;
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
            if at(i + 1) == '\\' {
                let mut j = i + 2;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
                i = j + 1;
            } else if at(i + 2) == '\'' {
                i += 3;
            } else {
                i += 1;
            }
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((line, Token::Ident(chars[start..i].iter().collect())));
        } else if c.is_ascii_digit() {
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
        } else {
            out.push((line, Token::Punct(c)));
            i += 1;
        }
    }
    out
}

/// Whether `ident`'s snake_case words contain a credential word run.
pub fn names_credential(ident: &str) -> bool {
    let lower = ident.to_ascii_lowercase();
    let words: Vec<&str> = lower.split('_').filter(|w| !w.is_empty()).collect();
    CREDENTIAL_WORDS
        .iter()
        .any(|needle| words.windows(needle.len()).any(|window| window == *needle))
}

/// Inline captures in a format string: `{name}`, `{name:?}`, `{name.field}`.
fn format_captures(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        if rest.starts_with('{') {
            rest = &rest[1..];
            continue;
        }
        let end = rest.find(['}', ':']).unwrap_or(rest.len());
        let name = rest[..end].trim();
        if !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
        {
            out.extend(name.split('.').map(str::to_string));
        }
        rest = &rest[end..];
    }
    out
}

/// The index just past the delimiter group that opens at `open` (balanced (), [], {}).
fn group_end(tokens: &[(usize, Token)], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, (_, t)) in tokens.iter().enumerate().skip(open) {
        match t {
            Token::Punct('(' | '[' | '{') => depth += 1,
            Token::Punct(')' | ']' | '}') => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// Every credential-naming log call in one source file.
pub fn scan_source(src: &str) -> Vec<Finding> {
    let tokens = tokenize(src);
    let mut findings = Vec::new();
    let mut k = 0;
    while k < tokens.len() {
        let (line, ref tok) = tokens[k];
        // `name!(…)`
        if let Token::Ident(name) = tok {
            let is_macro = LOG_MACROS.contains(&name.as_str())
                && tokens.get(k + 1).map(|t| &t.1) == Some(&Token::Punct('!'))
                && matches!(
                    tokens.get(k + 2).map(|t| &t.1),
                    Some(Token::Punct('(' | '{' | '['))
                );
            if is_macro {
                let end = group_end(&tokens, k + 2);
                check_args(&tokens[k + 3..end], &format!("{name}!"), &mut findings);
                k = end;
                continue;
            }
        }
        // `#[instrument…]` / `#[tracing::instrument…]`
        if *tok == Token::Punct('#') && tokens.get(k + 1).map(|t| &t.1) == Some(&Token::Punct('['))
        {
            let end = group_end(&tokens, k + 1);
            let attr = &tokens[k + 2..end.saturating_sub(1)];
            let pos = attr
                .iter()
                .position(|(_, t)| *t == Token::Ident("instrument".into()));
            if let Some(pos) = pos {
                let args = &attr[pos + 1..];
                let skips_all = args
                    .iter()
                    .any(|(_, t)| *t == Token::Ident("skip_all".into()));
                if !skips_all {
                    findings.push(Finding {
                        line,
                        call: "#[instrument]".into(),
                        name: "without skip_all (it would record every argument)".into(),
                    });
                }
                check_args(args, "#[instrument]", &mut findings);
            }
            k = end;
            continue;
        }
        k += 1;
    }
    findings
}

fn check_args(args: &[(usize, Token)], call: &str, findings: &mut Vec<Finding>) {
    for (line, t) in args {
        let names = match t {
            Token::Ident(name) => vec![name.clone()],
            Token::Str(s) => format_captures(s),
            Token::Punct(_) => continue,
        };
        for name in names.into_iter().filter(|n| names_credential(n)) {
            findings.push(Finding {
                line: *line,
                call: call.to_string(),
                name,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_words_match_whole_snake_case_words_only() {
        for bad in [
            "password",
            "db_password",
            "secret_access_key",
            "file_key",
            "DEK",
            "api_key_id",
        ] {
            assert!(names_credential(bad), "{bad} should be flagged");
        }
        for good in [
            "tokenizer",
            "keyspace",
            "secretary",
            "file",
            "key",
            "agent_id",
            "bytes",
        ] {
            assert!(!names_credential(good), "{good} should pass");
        }
    }

    #[test]
    fn comments_strings_and_lifetimes_do_not_confuse_the_lexer() {
        // Kept in fixture files so that a plain grep for logged credentials stays clean.
        let src = include_str!("../tests/fixtures/log_lint/lexer_clean.rs.txt");
        assert_eq!(scan_source(src), vec![]);
        let src = include_str!("../tests/fixtures/log_lint/lexer_flagged.rs.txt");
        let found: Vec<_> = scan_source(src)
            .into_iter()
            .map(|f| (f.line, f.name))
            .collect();
        assert_eq!(
            found,
            vec![(1, "token".to_string()), (2, "master_key".to_string())]
        );
    }
}
