//! No client can desynchronise wharf from its upstreams (HTTP/1.1 request
//! smuggling, RFC 9112 sections 3, 5, 6 and 7).
//!
//! Each case is a request whose framing is ambiguous or malformed. It is
//! sent over a raw TCP connection to a real wharf in front of a raw
//! backend (`backend.rs`) that frames what it receives strictly and
//! records it, on both request paths: the fast path (a plain proxy route,
//! `fast.test`) and hyper's (a site with `[site.cors]`, `cors.test`); a
//! catch-all site forwards any other host, as many configs do. Each
//! case is sent twice per path: alone, with an innocent `GET /second`
//! written after wharf's answer when the connection stays open, and with
//! that innocent request pipelined in the same write.
//!
//! What a user relies on, checked for every case: wharf either refuses
//! the request (the status the case names, then the connection closes and
//! nothing reaches the backend), or forwards exactly one unambiguous
//! request; the backend never frames a request nobody sent (`/smuggled`),
//! nor bytes that are no request at all; and the innocent request gets
//! its own answer or none, never someone else's.
//!
//! By concept: body length headers (`framing.rs`, `lengths.rs`), header
//! field syntax (`fields.rs`), chunked bodies (`chunks.rs`), the request
//! line and `Host` (`request_line.rs`).

#[path = "../support/mod.rs"]
mod support;

mod backend;
mod chunks;
mod client;
mod fields;
mod framing;
mod lengths;
mod request_line;

use backend::{Backend, Event, Seen};
use client::{Conn, Read};
use support::Wharf;

/// The two request paths, by the host that reaches each.
#[derive(Debug, Clone, Copy)]
enum Route {
    /// `src/h1`: a site without CORS, a proxy route.
    Fast,
    /// hyper: a site with `[site.cors]` always goes through it.
    Hyper,
}

impl Route {
    fn host(self) -> &'static str {
        match self {
            Route::Fast => "fast.test",
            Route::Hyper => "cors.test",
        }
    }
}

/// What wharf must do with a case.
#[derive(Debug, Clone, Copy)]
pub enum Expect {
    /// Answered with one of these statuses; then the connection closes,
    /// and no request reached the backend.
    Refused(&'static [u16]),
    /// Forwarded as one request for `/first` whose (decoded) body is
    /// `body`; `close`: the client connection must close after the
    /// answer (RFC 9112 6.1). `check` looks at the request the backend
    /// framed.
    Forwarded {
        body: &'static [u8],
        close: bool,
        check: fn(&Seen) -> Result<(), String>,
    },
}

/// Forwarded, the connection then kept.
pub const fn forwarded(body: &'static [u8]) -> Expect {
    Expect::Forwarded {
        body,
        close: false,
        check: |_| Ok(()),
    }
}

/// Forwarded, the connection then closed.
pub const fn forwarded_then_closed(body: &'static [u8]) -> Expect {
    Expect::Forwarded {
        body,
        close: true,
        check: |_| Ok(()),
    }
}

/// A request and what wharf must do with it. `{host}` in `request` is
/// replaced by the host of the path under test.
pub struct Case {
    pub name: &'static str,
    pub request: String,
    pub expect: Expect,
}

pub fn case(name: &'static str, request: impl Into<String>, expect: Expect) -> Case {
    Case {
        name,
        request: request.into(),
        expect,
    }
}

const SECOND: &str = "GET /second HTTP/1.1\r\nHost: {host}\r\n\r\n";

/// A wharf with both paths, and a catch-all site, in front of one
/// recording backend.
pub struct Setup {
    wharf: Wharf,
    backend: Backend,
}

impl Setup {
    pub async fn start() -> Setup {
        let backend = Backend::start().await;
        let body = format!(
            "[[site]]\nhosts = [\"fast.test\"]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\n\
             [[site]]\nhosts = [\"cors.test\"]\n  [site.cors]\n  origins = [\"https://app.test\"]\n\
             \x20 [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\n\
             [[site]]\nhosts = [\"*\"]\n  [[site.route]]\n  path = \"/\"\n  upstream = \"app\"\n\n\
             [upstream.app]\nservers = [\"{}\"]\n",
            backend.addr
        );
        let wharf = Wharf::start("header_timeout = \"1s\"\nidle_timeout = \"1s\"", &body);
        Setup { wharf, backend }
    }

    /// Runs every case on both paths, alone and pipelined, and fails with
    /// every case that went wrong.
    pub async fn check(&self, cases: &[Case]) {
        let mut failures = Vec::new();
        for case in cases {
            for route in [Route::Fast, Route::Hyper] {
                for pipelined in [false, true] {
                    if let Err(why) = self.run(case, route, pipelined).await {
                        failures.push(format!(
                            "{} ({route:?} path{}): {why}",
                            case.name,
                            if pipelined { ", pipelined" } else { "" }
                        ));
                    }
                }
            }
        }
        assert!(
            !self.wharf.logs_contain("panicked"),
            "wharf panicked:\n{}",
            self.wharf.logs().join("\n")
        );
        assert!(
            failures.is_empty(),
            "{} of {} runs went wrong:\n{}",
            failures.len(),
            cases.len() * 4,
            failures.join("\n")
        );
    }

    async fn run(&self, case: &Case, route: Route, pipelined: bool) -> Result<(), String> {
        self.backend.take();
        let request = case.request.replace("{host}", route.host());
        let second = SECOND.replace("{host}", route.host());
        let mut conn = Conn::open(self.wharf.addr).await;
        let mut bytes = request.into_bytes();
        if pipelined {
            bytes.extend_from_slice(second.as_bytes());
        }
        conn.send(&bytes).await;
        let first = conn.response().await;
        let outcome = match (case.expect, first) {
            (Expect::Refused(statuses), Read::Response(response)) => {
                if !statuses.contains(&response.status) {
                    Err(format!(
                        "answered {} {:?} where {statuses:?} was due",
                        response.status,
                        response.body.escape_ascii().to_string()
                    ))
                } else if !conn.closes_before(&second, pipelined).await {
                    Err(format!(
                        "{}, but the connection stayed open",
                        response.status
                    ))
                } else {
                    Ok(0)
                }
            }
            (Expect::Forwarded { close, .. }, Read::Response(response)) => {
                if response.status != 200 || response.body != b"/first" {
                    Err(format!(
                        "answered {} {:?} where the backend's answer to /first was due",
                        response.status,
                        response.body.escape_ascii().to_string()
                    ))
                } else if close {
                    match conn.closes_before(&second, pipelined).await {
                        true => Ok(1),
                        false => Err("forwarded, but the connection stayed open".into()),
                    }
                } else {
                    self.second(&mut conn, &second, pipelined).await.map(|()| 2)
                }
            }
            (_, other) => Err(format!("no answer: {other:?}")),
        };
        if outcome.is_err() {
            // What wharf still does with the connection belongs to this
            // run, not to the next.
            conn.drain().await;
        }
        let events = self.backend.take();
        let garbage: Vec<_> = events
            .iter()
            .filter_map(|event| match event {
                Event::Garbage(why, bytes) => Some(format!(
                    "{why}: {:?}",
                    String::from_utf8_lossy(bytes).escape_debug().to_string()
                )),
                Event::Request(_) | Event::Cut => None,
            })
            .collect();
        if !garbage.is_empty() {
            return Err(format!(
                "the backend got bytes it cannot frame: {garbage:?}"
            ));
        }
        let seen: Vec<&Seen> = events
            .iter()
            .filter_map(|event| match event {
                Event::Request(seen) => Some(seen),
                Event::Garbage(..) | Event::Cut => None,
            })
            .collect();
        let targets: Vec<&str> = seen.iter().map(|s| s.target.as_str()).collect();
        if targets.iter().any(|t| t.contains("smuggled")) {
            return Err(format!("the backend got a smuggled request: {targets:?}"));
        }
        let expected: &[&str] = match outcome? {
            0 => &[],
            1 => &["/first"],
            _ => &["/first", "/second"],
        };
        if targets != expected {
            return Err(format!(
                "the backend got {targets:?} where {expected:?} was due"
            ));
        }
        if let (Expect::Forwarded { body, check, .. }, Some(first)) = (case.expect, seen.first()) {
            if first.body != body {
                return Err(format!(
                    "forwarded body {:?} where {:?} was due",
                    first.body.escape_ascii().to_string(),
                    body.escape_ascii().to_string()
                ));
            }
            if first.all("host").len() != 1 {
                return Err(format!("forwarded Host fields: {:?}", first.all("host")));
            }
            check(first)?;
        }
        Ok(())
    }

    /// The innocent request on a connection kept open: its own answer, or
    /// none (wharf may close a connection whenever it likes).
    async fn second(&self, conn: &mut Conn, second: &str, pipelined: bool) -> Result<(), String> {
        if !pipelined && !conn.send(second.as_bytes()).await {
            return Err("wharf closed a connection it kept".into());
        }
        match conn.response().await {
            Read::Response(response) if response.status == 200 && response.body == b"/second" => {
                Ok(())
            }
            Read::Response(response) => Err(format!(
                "the innocent request got {} {:?}",
                response.status,
                response.body.escape_ascii().to_string()
            )),
            Read::Closed => Err("the innocent request got no answer: closed".into()),
            Read::Silent => Err("the innocent request got no answer: silence".into()),
        }
    }
}

/// A check that the forwarded request has no field named `name`.
pub fn lacks(seen: &Seen, name: &str) -> Result<(), String> {
    match seen.all(name).as_slice() {
        [] => Ok(()),
        values => Err(format!("forwarded with {name}: {values:?}")),
    }
}
