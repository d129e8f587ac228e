//! The dashboard over HTTPS without a browser: a client that trusts the test server's
//! certificate only and follows no redirect, form posts, and signing in through the form.

use crate::harness::Dashboard;
use reqwest::header::HeaderMap;
use reqwest::{Client, StatusCode};

pub fn client(d: &Dashboard) -> Client {
    Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(d.cert_pem.as_bytes()).unwrap())
        .tls_built_in_root_certs(false)
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

pub async fn send(
    d: &Dashboard,
    method: reqwest::Method,
    path: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
    form: &[(&str, &str)],
) -> Answer {
    send_with(d, method, path, cookie, origin.map(|o| ("origin", o)), form).await
}

pub async fn send_with(
    d: &Dashboard,
    method: reqwest::Method,
    path: &str,
    cookie: Option<&str>,
    header: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> Answer {
    let mut request = client(d).request(method.clone(), d.url(path));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    if method == reqwest::Method::POST {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        request = request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
    }
    let response = request.send().await.unwrap();
    Answer {
        status: response.status(),
        headers: response.headers().clone(),
        text: response.text().await.unwrap(),
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The CSRF token in a page's forms.
pub fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..at + 64].to_string()
}

/// Signs `email` in through the form (an account without a second factor or a
/// one-time password); answers the session cookie (`name=value`).
pub async fn sign_in_as(d: &Dashboard, email: &str, password: &str) -> String {
    let form = [("email", email), ("password", password), ("code", "")];
    let answer = send(d, reqwest::Method::POST, "/sign-in", None, None, &form).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.text);
    let cookie = answer.headers["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}
