//! A small W3C WebDriver client over HTTP, for driving Debian's chromium through
//! chromedriver in tests: start a headless session, open a page, find elements, click,
//! type (keys included), read text and run a script. No test framework beyond reqwest.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

/// The key WebDriver sends for Enter.
pub const ENTER: &str = "\u{E007}";
/// The key WebDriver sends for Escape.
pub const ESCAPE: &str = "\u{E00C}";

/// Where chromium and chromedriver are, when both are installed.
pub fn browser() -> Option<(&'static str, &'static str)> {
    let chromium =
        ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().find(|p| std::path::Path::new(p).exists())?;
    let driver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())?;
    Some((chromium, driver))
}

/// chromium and chromedriver, or `None` (the test then skips, saying how to install them);
/// on CI, which installs both (`.ci/run`), their absence fails the test.
pub fn browser_or_skip() -> Option<(&'static str, &'static str)> {
    let found = browser();
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI must install chromium and chromium-driver (see .ci/run)");
        eprintln!("skipped: apt-get install chromium chromium-driver to run this test");
    }
    found
}

/// axe-core's script (`AXE_CORE_JS`, else where `.ci/run` installs it), or `None` (the
/// test then skips that check, saying how to install it); on CI its absence fails.
pub fn axe_or_skip() -> Option<String> {
    let path = std::env::var_os("AXE_CORE_JS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/opt/axe-core/node_modules/axe-core/axe.min.js".into());
    match std::fs::read_to_string(&path) {
        Ok(script) => Some(script),
        Err(_) => {
            assert!(std::env::var_os("CI").is_none(), "CI must install axe-core (see .ci/run)");
            eprintln!("skipped the accessibility check: npm install --prefix /opt/axe-core axe-core@4.14.1");
            None
        }
    }
}

/// A headless chromium session; the driver process ends with it.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start(chromium: &str, driver: &str) -> Browser {
        Browser::start_in(chromium, driver, "en-US").await
    }

    /// A session whose browser prefers `language` (its `navigator.languages`).
    pub async fn start_in(chromium: &str, driver: &str, language: &str) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display()), format!("--lang={language}")])
        .collect::<Vec<_>>();
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args, "prefs": { "intl.accept_languages": language } }
        }}});
        let v: Value = http.post(format!("{base}/session")).json(&caps).send().await.unwrap().json().await.unwrap();
        let session = v["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {v}")).to_string();
        Browser { http, session: format!("{base}/session/{session}"), driver, _profile: profile }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        self.try_call(method, path, body).await.unwrap_or_else(|e| panic!("WebDriver {path}: {e}"))
    }

    /// A WebDriver call, its error (such as a stale element) returned.
    async fn try_call(&self, method: reqwest::Method, path: &str, body: Value) -> Result<Value, Value> {
        let url = format!("{}{path}", self.session);
        let request = self.http.request(method.clone(), &url);
        let request = if method == reqwest::Method::GET { request } else { request.json(&body) };
        let v: Value = request.send().await.unwrap().json().await.unwrap();
        if v["value"].get("error").is_some() {
            return Err(v["value"].clone());
        }
        Ok(v["value"].clone())
    }

    pub async fn open(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({ "url": url })).await;
    }

    /// The elements matching a CSS selector now.
    pub async fn find_all(&self, css: &str) -> Vec<String> {
        let v = self.call(reqwest::Method::POST, "/elements", json!({ "using": "css selector", "value": css })).await;
        v.as_array()
            .unwrap_or_else(|| panic!("elements: {v}"))
            .iter()
            .map(|e| {
                e.as_object()
                    .and_then(|o| o.values().next())
                    .and_then(Value::as_str)
                    .unwrap_or_else(|| panic!("element: {e}"))
                    .to_string()
            })
            .collect()
    }

    /// The first element matching `css`, waiting up to 15 s for it.
    pub async fn find(&self, css: &str) -> String {
        for _ in 0..150 {
            if let Some(e) = self.find_all(css).await.into_iter().next() {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no element {css} in 15 s; the page: {}", self.source().await)
    }

    pub async fn click(&self, element: &str) {
        self.call(reqwest::Method::POST, &format!("/element/{element}/click"), json!({})).await;
    }

    pub async fn type_into(&self, element: &str, text: &str) {
        self.call(reqwest::Method::POST, &format!("/element/{element}/value"), json!({ "text": text })).await;
    }

    pub async fn text(&self, element: &str) -> String {
        self.call(reqwest::Method::GET, &format!("/element/{element}/text"), Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn attribute(&self, element: &str, name: &str) -> Option<String> {
        let v = self.call(reqwest::Method::GET, &format!("/element/{element}/attribute/{name}"), Value::Null).await;
        v.as_str().map(str::to_string)
    }

    /// Types into whatever has the focus (keyboard use, as a person would).
    pub async fn keys(&self, text: &str) {
        let actions: Vec<Value> = text
            .chars()
            .flat_map(|c| {
                [
                    json!({ "type": "keyDown", "value": c.to_string() }),
                    json!({ "type": "keyUp", "value": c.to_string() }),
                ]
            })
            .collect();
        self.call(
            reqwest::Method::POST,
            "/actions",
            json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] }),
        )
        .await;
    }

    pub async fn script(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", json!({ "script": script, "args": [] })).await
    }

    /// Runs an asynchronous script: it calls its last argument with the result.
    pub async fn script_async(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/async", json!({ "script": script, "args": [] })).await
    }

    /// Sets the window's size in CSS pixels.
    pub async fn resize(&self, width: u32, height: u32) {
        self.call(reqwest::Method::POST, "/window/rect", json!({ "width": width, "height": height })).await;
    }

    /// Saves a PNG of the page as a test artefact, `target/screenshots/{name}.png`; with
    /// `UPDATE_SCREENSHOTS=1` also as `docs/screenshots/{name}.png`, which the README shows.
    pub async fn screenshot(&self, name: &str) {
        use base64::Engine;
        let png = self.call(reqwest::Method::GET, "/screenshot", Value::Null).await;
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap_or_default()).unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG");
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let dir = root.join("target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), &bytes).unwrap();
        if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
            std::fs::write(root.join("docs/screenshots").join(format!("{name}.png")), &bytes).unwrap();
        }
    }

    /// The serious and critical accessibility violations axe-core finds on the page (in
    /// `within`, a CSS selector), each as "rule: help (where)".
    pub async fn accessibility_violations(&self, axe: &str, within: &str) -> Vec<String> {
        self.script(&format!("{axe}\n;return true")).await;
        let run = format!(
            "const done = arguments[arguments.length - 1];
             axe.run(document.querySelector({within:?}), {{ resultTypes: ['violations'] }})
               .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.id + ': ' + v.help + ' (' + v.nodes.map(n => n.target.join(' ')).join(', ') + ')')))
               .catch(e => done(['axe failed: ' + e]));"
        );
        let found = self.script_async(&run).await;
        found.as_array().unwrap().iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect()
    }

    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", Value::Null).await.as_str().unwrap_or_default().to_string()
    }

    /// Waits up to 15 s for an element matching `css` whose text contains `text`.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> String {
        for _ in 0..150 {
            for e in self.find_all(css).await {
                // The page may redraw between the search and the read: read again next time.
                let Ok(t) = self.try_call(reqwest::Method::GET, &format!("/element/{e}/text"), Value::Null).await
                else {
                    continue;
                };
                let t = t.as_str().unwrap_or_default().to_string();
                if t.contains(text) {
                    return t;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no {css} with {text:?} in 15 s; the page: {}", self.source().await)
    }
}

impl Browser {
    /// Ends the session (chromium quits) and the driver.
    pub async fn quit(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    /// A failed test never reaches `quit`: the driver goes at least.
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
