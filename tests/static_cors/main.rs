//! Everything a site does besides proxying, through the real binary: static
//! files (types, caching, ranges, precompressed siblings, SPA fallback),
//! path traversal refused on the wire, CORS, response compression,
//! redirects, fixed responses and host-based site selection.
//!
//! This file holds the static tree the static, traversal and compression
//! tests serve, and the helpers more than one of them reads answers with.

#[path = "../support/mod.rs"]
mod support;

mod compression;
mod cors;
mod hosts;
mod redirects;
mod route_headers;
mod static_files;
mod traversal;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use http::Method;
use support::*;

/// Unique bytes in the file beside the static root; no response may hold them.
const SECRET: &str = "WHARF-SECRET-5c1e0d9a-do-not-serve";

/// A few KB of CSS: big enough for the compression layer, and repetitive.
fn css() -> String {
    (0..120)
        .map(|i| format!(".rule-{i} {{ color: red; margin: {i}px; }}\n"))
        .collect()
}

/// `dir/secret.txt` sits beside the static root `dir/www`, which holds
/// ordinary files, precompressed siblings, a directory with an index and a
/// symlink `link` pointing back at `dir`.
fn static_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let www = dir.path().join("www");
    std::fs::create_dir_all(www.join("docs")).expect("mkdir docs");
    std::fs::create_dir_all(www.join("a")).expect("mkdir a");
    std::fs::write(dir.path().join("secret.txt"), SECRET).expect("write secret");
    std::fs::write(www.join("index.html"), "<h1>home</h1>").expect("write");
    std::fs::write(www.join("docs/index.html"), "<h1>docs</h1>").expect("write");
    std::fs::write(www.join("style.css"), css()).expect("write");
    std::fs::write(www.join("app.js"), "console.log('plain');").expect("write");
    std::fs::write(www.join("app.js.gz"), b"\x1f\x8bprecompressed-gzip").expect("write");
    std::fs::write(www.join("app.js.br"), b"precompressed-brotli").expect("write");
    std::fs::write(www.join("data.bin"), b"0123456789").expect("write");
    std::fs::write(www.join("data.json"), "{\"ok\": true}").expect("write");
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(std::iter::repeat_n(0u8, 4096));
    std::fs::write(www.join("logo.png"), png).expect("write");
    std::os::unix::fs::symlink(dir.path(), www.join("link")).expect("symlink");
    dir
}

/// `/static/` serves `www` plainly, `/app/` serves it as a single-page app.
const STATIC_SITE: &str = "[[site]]\n  [[site.route]]\n  path = \"/static/\"\n  static = \"www\"\n\
     [[site.route]]\n  path = \"/app/\"\n  static = \"www\"\n  spa = true\n";

fn static_wharf() -> Wharf {
    Wharf::start_in(static_tree(), "", STATIC_SITE)
}

/// The status code of a raw HTTP/1.1 response, if there is one.
fn raw_status(response: &str) -> Option<u16> {
    response
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

/// Every value of a header that may repeat, joined with commas.
fn all_values(reply: &Reply, name: &str) -> String {
    let values: Vec<&str> = reply
        .headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    values.join(", ")
}

fn list_contains(value: Option<&str>, wanted: &str) -> bool {
    value.is_some_and(|v| {
        v.split(',')
            .any(|item| item.trim().eq_ignore_ascii_case(wanted))
    })
}
