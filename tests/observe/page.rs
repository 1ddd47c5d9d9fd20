//! The status page in headless Chromium.

use super::browser::Browser;
use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_in_chromium_shows_every_server_and_a_killed_backend_turns_red() {
    let mut one = EchoProcess::start(0);
    let two = EchoProcess::start(0);
    let wharf = Wharf::start("", &proxy_site(&[one.addr, two.addr], true));
    traffic(&wharf, 12).await;

    let browser = Browser::start().await;
    browser.open(&format!("http://{}/", wharf.admin)).await;
    let mut shown = Vec::new();
    let mut both_up = false;
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && !both_up {
        shown = rows(&browser.script(ROWS).await);
        both_up = shown.len() == 2 && shown.iter().all(|(_, state, _)| state == "up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(both_up, "page shows {shown:?}");
    for addr in [one.addr, two.addr] {
        assert!(
            shown.iter().any(|(a, _, _)| a == &addr.to_string()),
            "{addr} missing: {shown:?}"
        );
    }
    assert!(
        shown.iter().all(|(_, _, colour)| !is_red(colour)),
        "{shown:?}"
    );
    // The charts are drawn from the page's own script.
    let charts = browser
        .script("return document.querySelectorAll('svg path.line').length;")
        .await;
    assert_eq!(charts, 3);
    let conn = browser
        .script("return document.getElementById('conn').textContent;")
        .await;
    assert_eq!(conn, "live");
    browser
        .screenshot(&artifacts().join("status-page-up.png"))
        .await;

    one.kill();
    let killed = Instant::now();
    let one_addr = one.addr.to_string();
    let mut red = false;
    while killed.elapsed() < Duration::from_secs(5) && !red {
        tokio::time::sleep(Duration::from_millis(100)).await;
        shown = rows(&browser.script(ROWS).await);
        red = shown
            .iter()
            .any(|(a, state, colour)| a == &one_addr && state == "down" && is_red(colour));
    }
    let took = killed.elapsed();
    assert!(
        red,
        "the killed backend did not turn red within 5 s: {shown:?}"
    );
    let other = shown
        .iter()
        .find(|(a, _, _)| a == &two.addr.to_string())
        .expect("second server");
    assert_eq!(other.1, "up", "{shown:?}");
    browser
        .screenshot(&artifacts().join("status-page-down.png"))
        .await;

    // With admin_token, the page takes the token from #token= and keeps it
    // out of the address bar.
    let token = "page-token-0123456789abcdef";
    let guarded = Wharf::start(
        &format!("admin_token = \"{token}\""),
        &proxy_site(&[two.addr], false),
    );
    browser
        .open(&format!("http://{}/#token={token}", guarded.admin))
        .await;
    let mut live = Value::Null;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        live = browser
            .script("return [document.getElementById('conn').textContent, document.querySelectorAll('#upstreams tr.server').length, location.href];")
            .await;
        if live[0] == "live" && live[1] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(live[0], "live", "{live}");
    assert_eq!(live[1], 1, "{live}");
    assert!(!live[2].as_str().unwrap_or("").contains(token), "{live}");
    println!(
        "status page: killed backend red after {took:?}; screenshots in {}",
        artifacts().display()
    );
}

/// Server rows the page shows: (address, data-state, badge colour).
const ROWS: &str =
    "return Array.from(document.querySelectorAll('#upstreams tr.server')).map(function (tr) { \
    return [tr.getAttribute('data-server'), tr.getAttribute('data-state'), \
    getComputedStyle(tr.querySelector('.badge')).backgroundColor]; });";

fn rows(value: &Value) -> Vec<(String, String, String)> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| {
            let text = |i: usize| row[i].as_str().unwrap_or("").to_string();
            (text(0), text(1), text(2))
        })
        .collect()
}

/// Red-dominant: the page's "bad" colour, in either colour scheme.
fn is_red(colour: &str) -> bool {
    let numbers: Vec<u32> = colour
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    matches!(numbers.as_slice(), [r, g, b, ..] if *r > 150 && *g < 120 && *b < 120)
}
