//! A small WebDriver client: headless Chromium through chromedriver.

use super::*;

/// A Chromium session; Chromium and chromedriver end with it.
pub(crate) struct Browser {
    _driver: Guard,
    base: String,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(crate) async fn start() -> Browser {
        let driver = require("chromedriver", "chromium-driver");
        let chromium = require("chromium", "chromium");
        let port = free_port();
        let driver = Guard(
            Command::new(driver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        let base = format!("http://127.0.0.1:{port}");
        let ready = {
            let url = format!("{base}/status");
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut ready = false;
            while Instant::now() < deadline && !ready {
                tokio::time::sleep(Duration::from_millis(100)).await;
                ready = try_get_json(&url)
                    .await
                    .is_some_and(|v| v["value"]["ready"] == true);
            }
            ready
        };
        assert!(ready, "chromedriver did not start on port {port}");
        let profile = tempfile::tempdir().expect("profile dir");
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
            "--window-size=1280,1000",
        ]
        .iter()
        .map(|a| a.to_string())
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        }}});
        let created = webdriver(Method::POST, &format!("{base}/session"), Some(capabilities)).await;
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"))
            .to_string();
        Browser {
            _driver: driver,
            base,
            session,
            _profile: profile,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/session/{}{path}", self.base, self.session)
    }

    pub(crate) async fn open(&self, url: &str) {
        webdriver(Method::POST, &self.url("/url"), Some(json!({ "url": url }))).await;
    }

    pub(crate) async fn script(&self, script: &str) -> Value {
        let answer = webdriver(
            Method::POST,
            &self.url("/execute/sync"),
            Some(json!({ "script": script, "args": [] })),
        )
        .await;
        answer["value"].clone()
    }

    pub(crate) async fn screenshot(&self, path: &Path) {
        let answer = webdriver(Method::GET, &self.url("/screenshot"), None).await;
        let png = base64_decode(answer["value"].as_str().expect("screenshot data"));
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        std::fs::write(path, png).expect("write screenshot");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ends Chromium; chromedriver itself is killed by its guard.
        let url = self.url("");
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(runtime) = runtime {
                runtime.block_on(async {
                    let _ = tokio::time::timeout(Duration::from_secs(5), async {
                        send(&client(), Method::DELETE, &url, &[], b"").await
                    })
                    .await;
                });
            }
        })
        .join();
    }
}

async fn try_get_json(url: &str) -> Option<Value> {
    let request = http::Request::get(url)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .ok()?;
    let response = tokio::time::timeout(Duration::from_secs(2), client().request(request))
        .await
        .ok()?
        .ok()?;
    use http_body_util::BodyExt;
    let body = response.into_body().collect().await.ok()?.to_bytes();
    serde_json::from_slice(&body).ok()
}

async fn webdriver(method: Method, url: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let headers = [("content-type", "application/json")];
    let reply = send(&client(), method, url, &headers, body.as_bytes()).await;
    let value = reply.json();
    assert!(reply.status.is_success(), "webdriver {url}: {value}");
    value
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut buffer, mut bits) = (0u32, 0);
    for digit in text.bytes().filter_map(value) {
        buffer = (buffer << 6) | u32::from(digit);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}
