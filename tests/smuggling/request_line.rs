//! The request line and `Host` (RFC 9112 3, 3.2, 3.2.2): one space
//! between the parts, HTTP/1.0 or HTTP/1.1, exactly one valid `Host`
//! (an absolute-form target's authority wins over it), and nothing a
//! client pipelined after a refused request is served.

use super::*;

/// Forwarded with `Host` as the absolute-form target named it.
fn host_from_target(seen: &Seen) -> Result<(), String> {
    match seen.all("host").as_slice() {
        ["fast.test"] | ["cors.test"] => Ok(()),
        hosts => Err(format!("forwarded Host {hosts:?}")),
    }
}

#[tokio::test]
async fn an_absolute_form_target_wins_over_host() {
    let setup = Setup::start().await;
    let ok = Expect::Forwarded {
        body: b"",
        close: false,
        check: host_from_target,
    };
    setup
        .check(&[
            case(
                "another Host",
                "GET http://{host}/first HTTP/1.1\r\nHost: other.test\r\n\r\n",
                ok,
            ),
            case(
                "the same Host",
                "GET http://{host}/first HTTP/1.1\r\nHost: {host}\r\n\r\n",
                ok,
            ),
            case(
                "a target naming another site's host",
                "GET http://other.test/first HTTP/1.1\r\nHost: {host}\r\n\r\n",
                Expect::Forwarded {
                    body: b"",
                    close: false,
                    check: |seen| match seen.all("host").as_slice() {
                        ["other.test"] => Ok(()),
                        hosts => Err(format!("forwarded Host {hosts:?}")),
                    },
                },
            ),
        ])
        .await;
}

#[tokio::test]
async fn a_missing_doubled_or_invalid_host_is_refused() {
    let setup = Setup::start().await;
    let bad = Expect::Refused(&[400]);
    setup
        .check(&[
            case("no Host", "GET /first HTTP/1.1\r\n\r\n", bad),
            case(
                "Host twice",
                "GET /first HTTP/1.1\r\nHost: {host}\r\nHost: {host}\r\n\r\n",
                bad,
            ),
            case(
                "Host twice, differing",
                "GET /first HTTP/1.1\r\nHost: {host}\r\nHost: other.test\r\n\r\n",
                bad,
            ),
            case(
                "userinfo",
                "GET /first HTTP/1.1\r\nHost: user@{host}\r\n\r\n",
                bad,
            ),
            case(
                "userinfo with a password",
                "GET /first HTTP/1.1\r\nHost: user:secret@{host}\r\n\r\n",
                bad,
            ),
            case(
                "a path",
                "GET /first HTTP/1.1\r\nHost: {host}/x\r\n\r\n",
                bad,
            ),
            case(
                "a space",
                "GET /first HTTP/1.1\r\nHost: {host} x\r\n\r\n",
                bad,
            ),
            case(
                "a quote",
                "GET /first HTTP/1.1\r\nHost: {host}\"\r\n\r\n",
                bad,
            ),
            case(
                "userinfo in an absolute-form target",
                "GET http://user@{host}/first HTTP/1.1\r\nHost: {host}\r\n\r\n",
                bad,
            ),
            case(
                "a backslash",
                "GET /first HTTP/1.1\r\nHost: {host}\\x\r\n\r\n",
                bad,
            ),
            case(
                "a bad port",
                "GET /first HTTP/1.1\r\nHost: {host}:x\r\n\r\n",
                bad,
            ),
            case(
                "a refused request, then one pipelined behind it",
                "GET /first HTTP/1.1\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: {host}\r\n\r\n",
                bad,
            ),
        ])
        .await;
}

#[tokio::test]
async fn an_odd_request_line_is_refused() {
    let setup = Setup::start().await;
    let bad = Expect::Refused(&[400]);
    setup
        .check(&[
            case(
                "two spaces after the method",
                "GET  /first HTTP/1.1\r\nHost: {host}\r\n\r\n",
                bad,
            ),
            case(
                "two spaces before the version",
                "GET /first  HTTP/1.1\r\nHost: {host}\r\n\r\n",
                bad,
            ),
            case(
                "a tab between parts",
                "GET\t/first HTTP/1.1\r\nHost: {host}\r\n\r\n",
                bad,
            ),
            case(
                "a space before the method",
                " GET /first HTTP/1.1\r\nHost: {host}\r\n\r\n",
                bad,
            ),
            case(
                "trailing space",
                "GET /first HTTP/1.1 \r\nHost: {host}\r\n\r\n",
                bad,
            ),
            case("HTTP/0.9", "GET /first\r\n\r\n", bad),
            case(
                "HTTP/0.9 then a request",
                "GET /first\r\nHost: {host}\r\n\r\n",
                bad,
            ),
            case(
                "HTTP/1.2",
                "GET /first HTTP/1.2\r\nHost: {host}\r\n\r\n",
                bad,
            ),
            case(
                "HTTP/2.0",
                "GET /first HTTP/2.0\r\nHost: {host}\r\n\r\n",
                bad,
            ),
            case(
                "HTTP/1.10",
                "GET /first HTTP/1.10\r\nHost: {host}\r\n\r\n",
                bad,
            ),
            case(
                "lowercase version",
                "GET /first http/1.1\r\nHost: {host}\r\n\r\n",
                bad,
            ),
            case(
                "a space in the target",
                "GET /fir st HTTP/1.1\r\nHost: {host}\r\n\r\n",
                bad,
            ),
        ])
        .await;
}
