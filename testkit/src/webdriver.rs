//! The smallest WebDriver client the browser tests need: JSON over HTTP/1.1 to a
//! chromedriver on loopback, one connection per command (`Connection: close`). A few
//! dozen lines instead of a client crate with its own HTTP and TLS stacks; the
//! Prometheus server's API uses the same [`exchange`].

use crate::{KitError, Result};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long one WebDriver command may take (page loads included).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends one command to the driver on `127.0.0.1:port`; answers the W3C `value`, or
/// the driver's error as a [`KitError`] naming the command.
pub(crate) fn command(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value> {
    let what = format!("WebDriver {method} {path}");
    let payload = body.map(Value::to_string).unwrap_or_default();
    let (status, body) = exchange(port, method, path, payload.as_bytes(), COMMAND_TIMEOUT)
        .map_err(|e| KitError::new(format!("{what}: {e}")))?;
    let json: Value = serde_json::from_slice(&body).map_err(|e| {
        KitError::new(format!(
            "{what}: answer {status} is not JSON ({e}): {}",
            String::from_utf8_lossy(&body)
        ))
    })?;
    let value = json.get("value").cloned().unwrap_or(Value::Null);
    if status != 200 {
        let error = value["error"].as_str().unwrap_or("unknown error");
        let message = value["message"].as_str().unwrap_or("");
        return Err(KitError::new(format!(
            "{what}: {status} {error}: {message}"
        )));
    }
    Ok(value)
}

/// One HTTP/1.1 request to `127.0.0.1:port` on a connection of its own (a JSON body
/// when `payload` is not empty); answers the status and body. For the kit's loopback
/// servers (chromedriver, Prometheus), not for anything across a network.
pub(crate) fn exchange(
    port: u16,
    method: &str,
    path: &str,
    payload: &[u8],
    timeout: Duration,
) -> Result<(u16, Vec<u8>)> {
    let what = format!("{method} http://127.0.0.1:{port}{path}");
    let io = |e: std::io::Error| KitError::io(what.clone(), e);
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
        payload.len()
    );
    stream.write_all(head.as_bytes()).map_err(io)?;
    stream.write_all(payload).map_err(io)?;
    // The server may keep the connection open: read until the answer is complete.
    let mut raw = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while !complete(&raw) {
        let n = stream.read(&mut chunk).map_err(io)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
    }
    parse_response(&raw).ok_or_else(|| {
        KitError::new(format!(
            "{what}: the answer is not HTTP ({} bytes)",
            raw.len()
        ))
    })
}

/// Whether `raw` holds a whole answer: its head, and a body of its Content-Length or
/// up to the last chunk.
fn complete(raw: &[u8]) -> bool {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = &raw[split + 4..];
    if let Some(length) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return body.len() >= length;
    }
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    false
}

/// The status code and body of an HTTP/1.1 answer (Content-Length, chunked, or up to
/// the end of the connection).
fn parse_response(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let body = &raw[split + 4..];
    let status: u16 = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return Some((status, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some((status, out));
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::{complete, parse_response};

    #[test]
    fn plain_and_chunked_answers_parse() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain), Some((200, b"{}".to_vec())));
        assert!(complete(plain));
        assert!(!complete(&plain[..plain.len() - 1]));
        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Some((404, b"abcde".to_vec())));
        assert!(complete(chunked));
        assert_eq!(parse_response(b"garbage"), None);
    }
}
