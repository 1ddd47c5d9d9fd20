//! Over HTTPS, a client that writes its whole request body before it
//! reads (as most scripts do) gets the 413 wharf answered before reading
//! the body: the connection lingers, reading and dropping the rest of the
//! body under TLS, instead of being reset (`server/conn/linger.rs`).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::*;
use crate::support::{self, Wharf};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_a_client_writing_its_whole_body_first_gets_the_413_for_it() {
    let host = "upload.internal.test";
    let echo = support::echo().await;
    let storage = tempfile::tempdir().expect("tempdir");
    let (http, https) = (free_port(), free_port());
    let sites = format!(
        "[[site]]\nhosts = [\"{host}\"]\n[[site.route]]\npath = \"/\"\nupstream = \"app\"\n\n\
         [upstream.app]\nservers = [\"{echo}\"]\n"
    );
    let tls = format!(
        "mode = \"internal\"\nstorage = \"{}\"\n",
        storage.path().display()
    );
    let text = config(storage.path(), http, https, &sites, &tls)
        .replace("[server]\n", "[server]\nmax_body_size = \"1KiB\"\n");
    let _wharf = Wharf::start_with_config(tempfile::tempdir().expect("tempdir"), &text);
    let ca = std::fs::read_to_string(storage.path().join("internal/ca.pem")).expect("local CA");

    let bound = Duration::from_secs(20);
    let piece = vec![b'u'; 64 * 1024];
    for round in 0..3 {
        let mut stream = connect(https_addr(https), host, &ca, &[b"http/1.1"])
            .await
            .expect("TLS connection");
        let body = 256 * piece.len();
        let head =
            format!("POST /upload HTTP/1.1\r\nHost: {host}\r\nContent-Length: {body}\r\n\r\n");
        stream.write_all(head.as_bytes()).await.expect("head");
        for sent in 0..256 {
            match tokio::time::timeout(bound, stream.write_all(&piece)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => panic!(
                    "round {round}: writing the body, after {} KiB: {e}",
                    sent * 64
                ),
                Err(_) => panic!(
                    "round {round}: writing the body stalled after {} KiB",
                    sent * 64
                ),
            }
        }
        stream.flush().await.expect("flush");
        let mut answer = Vec::new();
        let read = tokio::time::timeout(bound, stream.read_to_end(&mut answer)).await;
        let text = String::from_utf8_lossy(&answer);
        assert!(
            text.starts_with("HTTP/1.1 413"),
            "round {round}: {read:?}, the answer was {text:?}"
        );
    }
}
