//! The checks every dashboard page gets in a browser test, shared by the control
//! plane's page tests and the agent's end-to-end test: no CSP violation or JavaScript
//! error, no serious or critical axe-core finding (light and dark), no sideways
//! scrolling at 375 px, and screenshots at desktop and phone width under
//! `target/dashboard-screenshots/` for a reviewer.

use crate::browser::Browser;
use serde_json::{json, Value};
use std::path::PathBuf;

/// Where screenshots go: `target/dashboard-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Records CSP violations from now on in the page (a `securitypolicyviolation`
/// listener); violations while the page loaded reach the browser log instead.
const LISTEN: &str = "window.__dbcrateViolations = window.__dbcrateViolations || [];\
    if (!window.__dbcrateListening) { window.__dbcrateListening = true;\
    document.addEventListener('securitypolicyviolation', e => window.__dbcrateViolations.push(\
    e.violatedDirective + ' ' + e.blockedURI)); }\
    window.addEventListener('error', e => window.__dbcrateViolations.push('error: ' + e.message));";

/// Checks every page the flow visits and photographs it.
pub struct Pages<'a> {
    browser: &'a Browser,
    prefix: &'static str,
    count: usize,
    dir: PathBuf,
}

impl<'a> Pages<'a> {
    /// Checks pages of `browser`, naming screenshots `<prefix>-<nn>-<name>-<mode>.png`.
    pub fn new(browser: &'a Browser, prefix: &'static str) -> Self {
        Self {
            browser,
            prefix,
            count: 0,
            dir: screenshot_dir(),
        }
    }

    /// The problems the browser reports for the current page: console errors (CSP
    /// violations, JavaScript errors; a deliberate error status of the page itself
    /// excepted) and violations the listener caught.
    pub fn problems(&self) -> Vec<String> {
        let b = self.browser;
        let url = b.url().unwrap();
        let mut problems: Vec<String> = b
            .console()
            .unwrap()
            .into_iter()
            .filter(|(level, _)| level == "SEVERE" || level == "WARNING")
            .filter(|(_, text)| {
                // The page's own 401/403/422/429 answers are logged as failed loads.
                !(text.contains("Failed to load resource")
                    && text.starts_with(url.split('?').next().unwrap()))
            })
            .map(|(level, text)| format!("console {level}: {text}"))
            .collect();
        let caught = b
            .execute("return window.__dbcrateViolations || [];", json!([]))
            .unwrap();
        for v in caught.as_array().unwrap() {
            problems.push(format!("page event: {}", v.as_str().unwrap_or_default()));
        }
        problems
    }

    /// Every check on the current page, then screenshots at desktop and phone width
    /// (light) and desktop (dark).
    #[track_caller]
    pub fn check(&mut self, name: &str) {
        let b = self.browser;
        let problems = self.problems();
        assert!(
            problems.is_empty(),
            "page {name} ({}): the browser reported {problems:#?}",
            b.url().unwrap()
        );
        b.execute(LISTEN, json!([])).unwrap();
        self.count += 1;
        let stem = format!("{}-{:02}-{name}", self.prefix, self.count);
        for (mode, width, height, mobile, dark) in [
            ("desktop", 1280, 900, false, false),
            ("phone", 375, 812, true, false),
            ("desktop-dark", 1280, 900, false, true),
        ] {
            b.viewport(width, height, mobile).unwrap();
            b.color_scheme(dark).unwrap();
            if mobile {
                let wide: Value = b
                    .execute("return document.documentElement.scrollWidth;", json!([]))
                    .unwrap();
                assert!(
                    wide.as_u64().unwrap() <= u64::from(width),
                    "page {name} scrolls sideways at {width} px: {wide} px wide"
                );
            }
            if mode != "phone" {
                let serious: Vec<Value> = b
                    .axe()
                    .unwrap()
                    .into_iter()
                    .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
                    .collect();
                assert!(
                    serious.is_empty(),
                    "page {name} ({mode}): axe-core found serious problems:\n{}",
                    serious
                        .iter()
                        .map(|v| format!(
                            "- {} ({}): {} — {}",
                            v["id"],
                            v["impact"],
                            v["help"],
                            v["nodes"]
                                .as_array()
                                .map(|n| n
                                    .iter()
                                    .map(|n| n["html"].as_str().unwrap_or_default().to_string())
                                    .collect::<Vec<_>>()
                                    .join(" | "))
                                .unwrap_or_default()
                        ))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
            let png = b.screenshot().unwrap();
            std::fs::write(self.dir.join(format!("{stem}-{mode}.png")), png).unwrap();
        }
        b.viewport(1280, 900, false).unwrap();
        b.color_scheme(false).unwrap();
        let problems = self.problems();
        assert!(problems.is_empty(), "page {name}: {problems:#?}");
    }
}
