//! A real, headless Chromium for browser tests, driven over WebDriver.
//!
//! Debian's `chromium` and `chromium-driver`, from the cache `scripts/provision-testdeps`
//! fills (no browser download at test time). A missing browser is an error that names
//! the provisioning command: the test fails, it is never skipped.
//!
//! The browser trusts the server under test by the SHA-256 of its public key
//! (`--ignore-certificate-errors-spki-list`): exactly that key, nothing else, so a test
//! of a loopback control plane with a self-signed certificate runs over real TLS with
//! `__Host-` cookies and `Secure` contexts, without turning certificate checks off.
//! Console messages (CSP violations, JavaScript errors) are collected from the browser
//! log; [`Browser::axe`] runs axe-core (also provisioned) in the page.
//!
//! Chromium runs with `--no-sandbox`: the tests run as root in CI, where Chromium's
//! sandbox refuses to start; it only ever opens the test's own loopback pages.

use crate::deps::{Deps, PROVISION_COMMAND};
use crate::ports::free_port;
use crate::process::ServerProcess;
use crate::tempdir::TempDir;
use crate::webdriver::command;
use crate::{KitError, Result};
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The W3C name of an element reference in WebDriver JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// An element in the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

/// How a browser starts.
#[derive(Debug, Clone, Default)]
pub struct BrowserOptions {
    /// Base64 SHA-256 hashes of the SubjectPublicKeyInfo of the server keys to trust.
    pub trusted_spki_sha256: Vec<String>,
}

/// A headless Chromium with one WebDriver session; both end on drop.
#[derive(Debug)]
pub struct Browser {
    session: String,
    port: u16,
    axe: PathBuf,
    // Dropped after the session is deleted (fields drop in order).
    _driver: ServerProcess,
    _profile: TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium from the provisioned cache.
    pub fn start(options: &BrowserOptions) -> Result<Self> {
        Self::start_with(&Deps::from_env(), options)
    }

    /// Starts chromedriver and a headless Chromium from the cache `deps`.
    pub fn start_with(deps: &Deps, options: &BrowserOptions) -> Result<Self> {
        let chromium = deps.tool("chromium")?;
        let chromedriver = deps.tool("chromedriver")?;
        let axe = deps.root().join("opt/axe-core/package/axe.min.js");
        if !axe.is_file() {
            return Err(KitError::new(format!(
                "missing axe-core at {}: run `{PROVISION_COMMAND}`",
                axe.display()
            )));
        }
        let profile = TempDir::new("chromium")?;
        let port = free_port()?;
        let mut cmd = Command::new(&chromedriver);
        cmd.arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .env("HOME", profile.path());
        let mut driver = ServerProcess::spawn(
            "chromedriver",
            cmd,
            &profile.path().join("chromedriver.log"),
            libc::SIGTERM,
        )?;
        driver.wait_until(Duration::from_secs(30), || {
            command(port, "GET", "/status", None).is_ok_and(|v| v["ready"] == json!(true))
        })?;
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--hide-scrollbars".into(),
            "--force-color-profile=srgb".into(),
            "--lang=en-US".into(),
            "--window-size=1280,900".into(),
            format!(
                "--user-data-dir={}",
                profile.path().join("profile").display()
            ),
        ];
        if !options.trusted_spki_sha256.is_empty() {
            args.push(format!(
                "--ignore-certificate-errors-spki-list={}",
                options.trusted_spki_sha256.join(",")
            ));
        }
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "acceptInsecureCerts": false,
                    "goog:chromeOptions": {
                        "binary": chromium.display().to_string(),
                        "args": args,
                    },
                    "goog:loggingPrefs": { "browser": "ALL" },
                }
            }
        });
        let created = command(port, "POST", "/session", Some(&capabilities))
            .map_err(|e| KitError::new(format!("{e}\n{}", driver.log_text())))?;
        let session = created["sessionId"]
            .as_str()
            .ok_or_else(|| KitError::new(format!("chromedriver made no session: {created}")))?
            .to_string();
        Ok(Self {
            session,
            port,
            axe,
            _driver: driver,
            _profile: profile,
        })
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        command(
            self.port,
            method,
            &format!("/session/{}{path}", self.session),
            body.as_ref(),
        )
    }

    /// Opens `url` and waits for the page to load.
    pub fn goto(&self, url: &str) -> Result<()> {
        self.call("POST", "/url", Some(json!({ "url": url })))
            .map(drop)
    }

    /// The current URL.
    pub fn url(&self) -> Result<String> {
        Ok(self
            .call("GET", "/url", None)?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// The page's title.
    pub fn title(&self) -> Result<String> {
        Ok(self
            .call("GET", "/title", None)?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// The first element matching the CSS `selector`.
    pub fn find(&self, selector: &str) -> Result<Element> {
        let found = self.call(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": selector })),
        )?;
        element(&found)
    }

    /// Every element matching the CSS `selector`.
    pub fn find_all(&self, selector: &str) -> Result<Vec<Element>> {
        let found = self.call(
            "POST",
            "/elements",
            Some(json!({ "using": "css selector", "value": selector })),
        )?;
        found
            .as_array()
            .map(|a| a.iter().map(element).collect())
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    /// Clicks an element (and waits for a navigation it starts).
    pub fn click(&self, element: &Element) -> Result<()> {
        self.call(
            "POST",
            &format!("/element/{}/click", element.0),
            Some(json!({})),
        )
        .map(drop)
    }

    /// Runs `act`, which loads a new document (a link, a form's submit button, Enter in
    /// a form), and waits until that document has loaded: a click or a key press may
    /// return before the navigation it starts has even begun.
    pub fn navigating(&self, act: impl FnOnce() -> Result<()>) -> Result<()> {
        self.execute("window.__dbcrateOldDocument = true;", json!([]))?;
        act()?;
        let started = std::time::Instant::now();
        loop {
            let done = self
                .execute(
                    "return !window.__dbcrateOldDocument && document.readyState === 'complete';",
                    json!([]),
                )
                // The old document may be going away while the script runs.
                .unwrap_or(Value::Bool(false));
            if done == Value::Bool(true) {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(30) {
                return Err(KitError::new(format!(
                    "no new page loaded within 30 s (still at {})",
                    self.url().unwrap_or_default()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Clicks an element that loads a new page, and waits for it.
    pub fn click_through(&self, element: &Element) -> Result<()> {
        self.navigating(|| self.click(element))
    }

    /// Clicks the element matching `selector`, which loads a new page, and waits for it.
    pub fn submit(&self, selector: &str) -> Result<()> {
        let element = self.find(selector)?;
        self.click_through(&element)
    }

    /// Types `text` into an element (after clearing it).
    pub fn fill(&self, element: &Element, text: &str) -> Result<()> {
        self.call(
            "POST",
            &format!("/element/{}/clear", element.0),
            Some(json!({})),
        )?;
        self.call(
            "POST",
            &format!("/element/{}/value", element.0),
            Some(json!({ "text": text })),
        )
        .map(drop)
    }

    /// Types into the element matching `selector`.
    pub fn fill_in(&self, selector: &str, text: &str) -> Result<()> {
        self.fill(&self.find(selector)?, text)
    }

    /// Sends keys to the focused element (`\u{e004}` is Tab, `\u{e007}` Enter).
    pub fn keys(&self, keys: &str) -> Result<()> {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|c| {
                [
                    json!({ "type": "keyDown", "value": c.to_string() }),
                    json!({ "type": "keyUp", "value": c.to_string() }),
                ]
            })
            .collect();
        self.call(
            "POST",
            "/actions",
            Some(json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] })),
        )
        .map(drop)
    }

    /// An element's visible text.
    pub fn text(&self, element: &Element) -> Result<String> {
        Ok(self
            .call("GET", &format!("/element/{}/text", element.0), None)?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Selects the option of the `<select>` matching `selector` whose visible text is
    /// `text` (or starts with `text` and a space: `db-host (agt_…)`), as a person picking
    /// it from the list would; an error names the options when none matches.
    pub fn choose(&self, selector: &str, text: &str) -> Result<()> {
        let found = self.execute(
            "const select = document.querySelector(arguments[0]);\
             if (!select) { return 'no element ' + arguments[0]; }\
             const option = [...select.options].find(o => o.text.trim() === arguments[1]\
               || o.text.trim().startsWith(arguments[1] + ' '));\
             if (!option) { return 'no option ' + arguments[1] + ' among: '\
               + [...select.options].map(o => o.text.trim()).join(', '); }\
             select.value = option.value;\
             select.dispatchEvent(new Event('change', { bubbles: true }));\
             return null;",
            json!([selector, text]),
        )?;
        match found.as_str() {
            Some(problem) => Err(KitError::new(format!("choosing {text:?}: {problem}"))),
            None => Ok(()),
        }
    }

    /// Lets the page download files into `dir` (Chromium's headless default is to
    /// refuse downloads).
    pub fn download_into(&self, dir: &std::path::Path) -> Result<()> {
        self.cdp(
            "Browser.setDownloadBehavior",
            json!({ "behavior": "allow", "downloadPath": dir.display().to_string() }),
        )
        .map(drop)
    }

    /// The visible text of the element matching `selector`.
    pub fn text_of(&self, selector: &str) -> Result<String> {
        self.text(&self.find(selector)?)
    }

    /// Runs `script` (a function body) in the page with `args`; answers its result.
    pub fn execute(&self, script: &str, args: Value) -> Result<Value> {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Runs an asynchronous `script`, which calls `arguments[arguments.length - 1]`
    /// with its result.
    pub fn execute_async(&self, script: &str, args: Value) -> Result<Value> {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Sends a Chrome DevTools Protocol command (device metrics, emulated media).
    pub fn cdp(&self, cmd: &str, params: Value) -> Result<Value> {
        self.call(
            "POST",
            "/goog/cdp/execute",
            Some(json!({ "cmd": cmd, "params": params })),
        )
    }

    /// Lays the page out `width` CSS pixels wide (`mobile` for a phone's viewport).
    pub fn viewport(&self, width: u32, height: u32, mobile: bool) -> Result<()> {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile }),
        )
        .map(drop)
    }

    /// Emulates `prefers-color-scheme: dark` (or light).
    pub fn color_scheme(&self, dark: bool) -> Result<()> {
        let value = if dark { "dark" } else { "light" };
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({ "features": [{ "name": "prefers-color-scheme", "value": value }] }),
        )
        .map(drop)
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Result<Vec<u8>> {
        let encoded = self.call("GET", "/screenshot", None)?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap_or_default())
            .map_err(|e| KitError::new(format!("the screenshot is not base64: {e}")))
    }

    /// The browser's console messages since the last call: (level, text). CSP
    /// violations and uncaught JavaScript errors appear here as `SEVERE`.
    pub fn console(&self) -> Result<Vec<(String, String)>> {
        let entries = self.call("POST", "/se/log", Some(json!({ "type": "browser" })))?;
        Ok(entries
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (
                            e["level"].as_str().unwrap_or_default().to_string(),
                            e["message"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Runs axe-core in the page; answers its violations (each with `id`, `impact`,
    /// `help` and `nodes`).
    pub fn axe(&self) -> Result<Vec<Value>> {
        let source = std::fs::read_to_string(&self.axe)
            .map_err(|e| KitError::io(format!("reading {}", self.axe.display()), e))?;
        // Evaluated by the WebDriver protocol, not by a <script> element: the page's CSP
        // governs the page's own scripts, not the test's.
        let script = format!(
            "{source}\n;const done = arguments[arguments.length - 1];\
             axe.run(document, {{ resultTypes: ['violations'] }})\
             .then(r => done(r.violations), e => done({{ error: String(e) }}));"
        );
        let result = self.execute_async(&script, json!([]))?;
        if let Some(error) = result.get("error") {
            return Err(KitError::new(format!("axe-core failed: {error}")));
        }
        Ok(result.as_array().cloned().unwrap_or_default())
    }
}

fn element(found: &Value) -> Result<Element> {
    found[ELEMENT_KEY]
        .as_str()
        .map(|id| Element(id.to_string()))
        .ok_or_else(|| KitError::new(format!("not an element: {found}")))
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = command(
            self.port,
            "DELETE",
            &format!("/session/{}", self.session),
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::{Browser, BrowserOptions};
    use crate::{Deps, TempDir};

    /// A machine without the browser fails with the fix, never skips.
    #[test]
    fn a_missing_browser_is_an_error_naming_the_provisioning_command() {
        let empty = TempDir::new("no-browser").unwrap();
        let e =
            Browser::start_with(&Deps::at(empty.path()), &BrowserOptions::default()).unwrap_err();
        let message = e.to_string();
        assert!(message.contains("chromium"), "{message}");
        assert!(message.contains("scripts/provision-testdeps"), "{message}");
    }
}
