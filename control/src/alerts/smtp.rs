//! E-mail alerts: a small SMTP client (RFC 5321) for one message at a time — enough for
//! a mail relay or a provider's submission port, and no more. TLS always: STARTTLS on
//! a plain connection (refused if the server does not offer it: a password never
//! crosses in the clear) or TLS from the first byte; the system's roots, plus a CA the
//! operator names for a private relay. AUTH PLAIN when a user is set. The host is
//! resolved through the reach policy, like every address the control plane calls.
//! Errors quote the server's replies, never what was sent for AUTH.

use base64::Engine as _;
use dbcrate_core::secret::SecretString;
use dbcrate_core::time::UtcDateTime;
use dbcrate_storage::reach::ReachPolicy;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long one message may take, greeting to QUIT.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest reply read (a server's capabilities are a few hundred bytes).
const MAX_REPLY: usize = 64 * 1024;

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain, then STARTTLS (submission, port 587).
    StartTls,
    /// TLS from the first byte (SMTPS, port 465).
    Implicit,
}

/// Where and how to send.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// The server's host name (checked against its certificate).
    pub host: String,
    /// Its port.
    pub port: u16,
    /// STARTTLS or implicit TLS.
    pub security: Security,
    /// The account, if the server wants AUTH.
    pub username: Option<String>,
    /// The sender address.
    pub from: String,
    /// The recipients.
    pub to: Vec<String>,
    /// A CA certificate (PEM) to trust besides the system's, for a private relay.
    pub ca_pem: Option<String>,
}

/// One message.
#[derive(Debug, Clone)]
pub struct Mail<'a> {
    /// The subject line.
    pub subject: &'a str,
    /// The text.
    pub text: &'a str,
    /// A unique id for `Message-ID` (the delivery's).
    pub id: &'a str,
    /// When it is sent (Unix seconds), for `Date`.
    pub at: i64,
}

/// Sends `mail` as `settings` say, with `password` for AUTH.
pub async fn send(
    reach: &ReachPolicy,
    settings: &SmtpSettings,
    password: Option<&SecretString>,
    mail: &Mail<'_>,
) -> Result<(), String> {
    match tokio::time::timeout(SEND_TIMEOUT, converse(reach, settings, password, mail)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!(
            "{}: no complete exchange within {} s",
            settings.host,
            SEND_TIMEOUT.as_secs()
        )),
    }
}

async fn converse(
    reach: &ReachPolicy,
    s: &SmtpSettings,
    password: Option<&SecretString>,
    mail: &Mail<'_>,
) -> Result<(), String> {
    let host = s.host.as_str();
    let addrs = reach
        .resolve(host, s.port)
        .await
        .map_err(|e| format!("{host}: {}", e.message()))?;
    let tcp = tokio::net::TcpStream::connect(addrs.as_slice())
        .await
        .map_err(|e| format!("{host}:{}: cannot connect ({e})", s.port))?;
    let name = rustls::pki_types::ServerName::try_from(host.to_string())
        .map_err(|_| format!("{host} is not a valid TLS server name"))?;
    let connector =
        tokio_rustls::TlsConnector::from(super::tls::client_config(s.ca_pem.as_deref())?);
    let handshake = |e: std::io::Error| format!("{host}: TLS handshake failed ({e})");
    let tls = match s.security {
        Security::Implicit => connector.connect(name, tcp).await.map_err(handshake)?,
        Security::StartTls => {
            let mut plain = Session::new(tcp);
            plain.expect(&[220]).await?;
            let offered = plain.command("EHLO dbcrate-control", &[250]).await?;
            if !offered.iter().any(|l| l.eq_ignore_ascii_case("STARTTLS")) {
                return Err(format!(
                    "{host} does not offer STARTTLS: refusing to send a password or an alert \
                     in the clear (use a server that does, or implicit TLS)"
                ));
            }
            plain.command("STARTTLS", &[220]).await?;
            connector
                .connect(name, plain.into_inner()?)
                .await
                .map_err(handshake)?
        }
    };
    let mut session = Session::new(tls);
    if s.security == Security::Implicit {
        session.expect(&[220]).await?;
    }
    session.command("EHLO dbcrate-control", &[250]).await?;
    if let Some(user) = &s.username {
        let password = password.ok_or("the channel has a user but no password")?;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("\0{user}\0{}", password.expose_secret()).as_bytes());
        session
            .command_quietly(&format!("AUTH PLAIN {token}"), "AUTH PLAIN", &[235])
            .await?;
    }
    session
        .command(&format!("MAIL FROM:<{}>", s.from), &[250])
        .await?;
    for to in &s.to {
        session
            .command(&format!("RCPT TO:<{to}>"), &[250, 251])
            .await?;
    }
    session.command("DATA", &[354]).await?;
    session.send_data(&message(s, mail)).await?;
    session.expect(&[250]).await?;
    // The message is accepted; a failed QUIT changes nothing.
    let _ = session.command("QUIT", &[221]).await;
    Ok(())
}

/// The message: headers, and the text as base64 (any character set, any line length,
/// whatever the server's 8-bit support).
fn message(s: &SmtpSettings, mail: &Mail<'_>) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let subject = if mail.subject.is_ascii() {
        mail.subject.to_string()
    } else {
        format!("=?utf-8?b?{}?=", b64.encode(mail.subject.as_bytes()))
    };
    let body = b64.encode(mail.text.as_bytes());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(76)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    format!(
        "From: {}\r\nTo: {}\r\nSubject: {subject}\r\nDate: {}\r\nMessage-ID: <{}@dbcrate>\r\n\
         MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
        s.from,
        s.to.join(", "),
        rfc5322_date(mail.at),
        mail.id,
        lines.join("\r\n")
    )
}

/// `Thu, 04 Dec 2026 18:40:00 +0000`.
fn rfc5322_date(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let t = UtcDateTime::from_unix(unix);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
        DAYS[unix.div_euclid(86_400).rem_euclid(7) as usize],
        t.day,
        MONTHS[(t.month as usize).saturating_sub(1).min(11)],
        t.year,
        t.hour,
        t.minute,
        t.second
    )
}

/// One side of an SMTP conversation over `io`.
struct Session<S> {
    io: S,
    /// Bytes read past the last reply.
    pending: Vec<u8>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    fn new(io: S) -> Self {
        Self {
            io,
            pending: Vec::new(),
        }
    }

    /// The stream, for the TLS upgrade; a server that sent more than the reply to
    /// STARTTLS is refused (those bytes would be trusted as if encrypted).
    fn into_inner(self) -> Result<S, String> {
        if self.pending.is_empty() {
            Ok(self.io)
        } else {
            Err("the server sent data before the TLS handshake".into())
        }
    }

    /// Reads one reply: its code and the text of each line.
    async fn reply(&mut self) -> Result<(u16, Vec<String>), String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await?;
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| format!("the server's reply is not SMTP: {line:?}"))?;
            lines.push(line.get(4..).unwrap_or_default().to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok((code, lines));
            }
        }
    }

    async fn line(&mut self) -> Result<String, String> {
        loop {
            if let Some(end) = self.pending.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.pending.drain(..end + 2).collect();
                return Ok(String::from_utf8_lossy(&line[..end]).into_owned());
            }
            if self.pending.len() > MAX_REPLY {
                return Err("the server's reply is too long".into());
            }
            let mut chunk = [0u8; 4096];
            let n = self
                .io
                .read(&mut chunk)
                .await
                .map_err(|e| format!("reading the server's reply: {e}"))?;
            if n == 0 {
                return Err("the server closed the connection".into());
            }
            self.pending.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads a reply and checks its code is one of `codes`.
    async fn expect(&mut self, codes: &[u16]) -> Result<Vec<String>, String> {
        self.expect_after(codes, "the greeting").await
    }

    async fn expect_after(&mut self, codes: &[u16], what: &str) -> Result<Vec<String>, String> {
        let (code, lines) = self.reply().await?;
        if codes.contains(&code) {
            Ok(lines)
        } else {
            Err(format!(
                "the server answered {what} with {code} {}",
                lines.join(" ")
            ))
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        self.io
            .write_all(bytes)
            .await
            .map_err(|e| format!("writing to the server: {e}"))?;
        self.io
            .flush()
            .await
            .map_err(|e| format!("writing to the server: {e}"))
    }

    /// Sends `line` and reads the reply, which must have one of `codes`.
    async fn command(&mut self, line: &str, codes: &[u16]) -> Result<Vec<String>, String> {
        let verb = line.split([' ', ':']).next().unwrap_or(line).to_string();
        self.command_quietly(line, &verb, codes).await
    }

    /// As [`Session::command`], naming the command as `shown` in errors (AUTH carries a
    /// credential).
    async fn command_quietly(
        &mut self,
        line: &str,
        shown: &str,
        codes: &[u16],
    ) -> Result<Vec<String>, String> {
        self.write(format!("{line}\r\n").as_bytes()).await?;
        self.expect_after(codes, shown).await
    }

    /// Sends the message after DATA: lines that start with a dot get another one, and a
    /// line with a dot alone ends it.
    async fn send_data(&mut self, message: &str) -> Result<(), String> {
        let mut out = String::with_capacity(message.len() + 8);
        for line in message.split("\r\n") {
            if line.starts_with('.') {
                out.push('.');
            }
            out.push_str(line);
            out.push_str("\r\n");
        }
        out.push_str(".\r\n");
        self.write(out.as_bytes()).await
    }
}

#[cfg(test)]
mod tests {
    use super::rfc5322_date;

    #[test]
    fn dates_read_as_mail_wants_them() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_796_342_400),
            "Fri, 04 Dec 2026 00:00:00 +0000"
        );
    }
}
