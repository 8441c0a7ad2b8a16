//! A real browser for the console tests: Debian's headless Chromium driven through its
//! WebDriver (`chromedriver`, installed and started by `krafter_testkit`), with fantoccini.
//! Each `Browser` is a fresh profile (no cookies). Screenshots go to
//! `target/console-screenshots/`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

pub struct Browser {
    pub client: Client,
    pub base: String,
    /// The path part of `base` (a console behind a proxy), left out of `path()`.
    prefix: String,
    _profile: tempfile::TempDir,
}

/// A desktop window and a 390 px phone.
pub const DESKTOP: (u32, u32) = (1280, 900);
pub const PHONE: (u32, u32) = (390, 844);

impl Browser {
    pub async fn open(base: &str) -> Self {
        let driver = krafter_testkit::chromedriver();
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
        ];
        let mut args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": driver.browser, "args": args},
        });
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps.as_object().unwrap().clone())
            .connect(&driver.url)
            .await
            .expect("a browser session");
        let prefix = url::Url::parse(base)
            .unwrap()
            .path()
            .trim_end_matches('/')
            .to_owned();
        Self {
            client,
            base: base.to_owned(),
            prefix,
            _profile: profile,
        }
    }

    pub async fn go(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap();
    }

    /// The page's path and query, under `base`.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        let path = url.path().strip_prefix(&self.prefix).unwrap_or(url.path());
        match url.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        }
    }

    pub async fn sign_in(&self, key: &str) {
        self.go("/sign-in").await;
        self.fill("#key", key).await;
        self.click("form[action$='/sign-in'] button").await;
        self.wait_for_exact_path("/jobs").await;
    }

    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
    }

    pub async fn count(&self, css: &str) -> usize {
        let script = "return document.querySelectorAll(arguments[0]).length;";
        let n = self.client.execute(script, vec![json!(css)]).await.unwrap();
        n.as_u64().unwrap() as usize
    }

    pub async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.unwrap()
    }

    /// The texts of every element `css` matches, read at once (a page that changes while
    /// they are read leaves no stale element behind).
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let script = "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText ?? e.textContent);";
        let found = self.client.execute(script, vec![json!(css)]).await.unwrap();
        serde_json::from_value(found).unwrap()
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let e = self.find(css).await;
        e.clear().await.unwrap();
        e.send_keys(value).await.unwrap();
    }

    pub async fn select(&self, css: &str, value: &str) {
        self.find(css).await.select_by_value(value).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// Waits until the page's path (and query) starts with `prefix`.
    pub async fn wait_for_path(&self, prefix: &str) {
        self.wait_for(prefix, |path| path.starts_with(prefix)).await;
    }

    /// Waits until the page is a job's (`/jobs/<id>`, after a save); returns the id.
    pub async fn wait_for_job_page(&self) -> String {
        let is_job = |p: &str| {
            let id = p
                .trim_start_matches("/jobs/")
                .split(['?', '/'])
                .next()
                .unwrap_or("");
            p.starts_with("/jobs/") && id.parse::<uuid::Uuid>().is_ok()
        };
        self.wait_for("a job's page", is_job).await;
        let path = self.path().await;
        path.trim_start_matches("/jobs/")
            .split('?')
            .next()
            .unwrap()
            .to_owned()
    }

    /// Waits until the page's path (and query) is `path`.
    pub async fn wait_for_exact_path(&self, path: &str) {
        self.wait_for(path, |at| at == path).await;
    }

    async fn wait_for(&self, prefix: &str, arrived: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let path = self.path().await;
            if arrived(&path) {
                return;
            }
            assert!(Instant::now() < deadline, "expected {prefix}, at {path}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `css` matches an element whose text contains `text`.
    pub async fn wait_for_text(&self, css: &str, text: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if self.texts(css).await.iter().any(|t| t.contains(text)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no {css} with {text:?} within {within:?}: {:?}",
                self.texts(css).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn eval(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// Screenshots of the current page at desktop and phone width:
    /// `target/console-screenshots/<name>-desktop.png`, `…-phone.png`.
    pub async fn screenshots(&self, name: &str) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        for (label, (w, h)) in [("desktop", DESKTOP), ("phone", PHONE)] {
            self.client.set_window_size(w, h).await.unwrap();
            // The whole page, up to 3000 px tall.
            let tall = self
                .eval("return document.documentElement.scrollHeight;")
                .await;
            let tall = tall
                .as_u64()
                .unwrap_or(u64::from(h))
                .clamp(u64::from(h), 3000) as u32;
            self.client.set_window_size(w, tall + 100).await.unwrap();
            let png = self.client.screenshot().await.unwrap();
            std::fs::write(dir.join(format!("{name}-{label}.png")), png).unwrap();
        }
        self.client
            .set_window_size(DESKTOP.0, DESKTOP.1)
            .await
            .unwrap();
    }

    /// The top of the current page in a 1024 × 640 window, for the README:
    /// `target/console-screenshots/readme/<name>.png` (copied to `docs/console/`).
    pub async fn readme_shot(&self, name: &str) {
        let dir =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots/readme");
        std::fs::create_dir_all(&dir).unwrap();
        self.client.set_window_size(1024, 640).await.unwrap();
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
        self.client
            .set_window_size(DESKTOP.0, DESKTOP.1)
            .await
            .unwrap();
    }

    /// axe-core's serious and critical violations on the current page (WCAG 2 A/AA and best
    /// practices), each as "rule: help (n nodes)".
    pub async fn serious_accessibility_violations(&self) -> Vec<String> {
        let source = std::fs::read_to_string(krafter_testkit::install_axe()).unwrap();
        let inject = format!(
            "{source}\n;if (typeof axe !== 'undefined') {{ window.axe = axe; }} return true;"
        );
        self.client.execute(&inject, vec![]).await.unwrap();
        let run = r#"
            const done = arguments[arguments.length - 1];
            window.axe.run(document, {resultTypes: ["violations"]})
              .then(r => done(r.violations
                 .filter(v => v.impact === "serious" || v.impact === "critical")
                 .map(v => `${v.id}: ${v.help} (${v.nodes.length} nodes: ${v.nodes.map(n => n.target.join(" ")).join(", ")})`)))
              .catch(e => done(["axe failed: " + e]));
        "#;
        let found = self.client.execute_async(run, vec![]).await.unwrap();
        serde_json::from_value(found).unwrap()
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
