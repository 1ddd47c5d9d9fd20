//! The open-file limit: wharf started with a soft limit of 128 (systemd's
//! and most shells' default is 1,024) still holds hundreds of connections,
//! its apps get the limit it was started with, and a low hard limit is
//! reported at start with what to do.

mod support;

use std::time::Duration;

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Soft and hard "Max open files" of process `pid`.
fn open_file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_default();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap_or_default();
    let mut fields = line.split_whitespace().skip(3);
    (
        fields.next().unwrap_or_default().to_string(),
        fields.next().unwrap_or_default().to_string(),
    )
}

const CONNECTIONS: usize = 300;

/// Sends one request on `stream` and reads its whole answer (the echo
/// backend answers with Content-Length); the status line.
async fn request(stream: &mut TcpStream) -> std::io::Result<String> {
    stream
        .write_all(b"GET /held HTTP/1.1\r\nHost: fd.test\r\n\r\n")
        .await?;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&got);
    Ok(text.lines().next().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wharf_started_with_a_soft_limit_of_128_holds_300_connections() {
    // This test holds 600 descriptors itself (clients and the echo
    // backend's side); a soft limit of 1,024 here is enough, raising it
    // makes sure.
    let _ = wharf::fd_limit::raise();
    let backend = echo().await;
    let body = format!(
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\n\
         [upstream.app]\nservers = [\"{backend}\"]\n"
    );
    let wharf = Wharf::start_under_ulimit("-S -n 128", "", &body);
    let (soft, hard) = open_file_limits(wharf.pid());
    assert_eq!(soft, hard, "wharf's soft limit is raised to the hard one");

    // All connections are open at once, each with an answered request on
    // it, so wharf holds every one of them (and an upstream connection for
    // each request in flight).
    let mut streams = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        streams.push(TcpStream::connect(wharf.addr).await.expect("connect"));
    }
    let answers = futures_util::future::join_all(streams.iter_mut().map(|stream| async move {
        tokio::time::timeout(Duration::from_secs(10), request(stream)).await
    }))
    .await;
    let ok = answers
        .iter()
        .filter(|a| matches!(a, Ok(Ok(line)) if line.starts_with("HTTP/1.1 200")))
        .count();
    assert_eq!(
        ok,
        CONNECTIONS,
        "answers: {:?}; logs: {:?}",
        answers
            .iter()
            .filter(|a| !matches!(a, Ok(Ok(l)) if l.starts_with("HTTP/1.1 200")))
            .take(3)
            .collect::<Vec<_>>(),
        wharf.logs().iter().rev().take(5).collect::<Vec<_>>()
    );
    // A second round on the same connections: none was dropped.
    for stream in streams.iter_mut().step_by(30) {
        let line = tokio::time::timeout(Duration::from_secs(5), request(stream))
            .await
            .expect("answer in time")
            .expect("answer");
        assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    }
    assert!(!wharf.logs_contain("accept failed"), "{:?}", wharf.logs());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_gets_the_limit_wharf_was_started_with_or_its_own_open_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_ports(4);
    let app = |name: &str, port: u16, extra: &str| {
        let out = dir.path().join(name);
        format!(
            "[app.{name}]\ncommand = [\"sh\", \"-c\", \"echo $(ulimit -S -n) $(ulimit -H -n) > {}; exec {WHARF} echo\"]\n\
             port = {port}\n{extra}\n",
            out.display()
        )
    };
    let body = format!(
        "[[site]]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"plain\"\n\n\
         [upstream.plain]\napp = \"plain\"\n\n[upstream.own]\napp = \"own\"\n\n{}{}",
        app("plain", port, ""),
        app("own", port + 2, "open_files = 200")
    );
    let wharf = Wharf::start_under_ulimit("-S -n 128", "", &body);
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let written = eventually(Duration::from_secs(10), || {
        !read("plain").is_empty() && !read("own").is_empty()
    })
    .await;
    assert!(written, "apps never started: {:?}", wharf.logs());
    let (_, hard) = open_file_limits(wharf.pid());
    assert_eq!(read("plain").trim(), format!("128 {hard}"));
    assert_eq!(read("own").trim(), "200 200");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_hard_limit_is_reported_at_start_with_the_fix() {
    let wharf = Wharf::start_under_ulimit("-n 1024", "", "");
    let (soft, hard) = open_file_limits(wharf.pid());
    assert_eq!((soft.as_str(), hard.as_str()), ("1024", "1024"));
    let warned = wharf
        .log_events("wharf may open at most 1024 files (the hard open-file limit), so it can proxy about 512 connections at once; raise the hard limit before starting wharf: LimitNOFILE=65536 in its systemd unit, or `ulimit -Hn 65536` as root");
    assert_eq!(warned.len(), 1, "{:?}", wharf.logs());
    assert_eq!(warned[0]["level"], "WARN", "{:?}", warned[0]);
}
