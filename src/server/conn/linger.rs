//! Lingering close, as nginx's `lingering_close`: a connection wharf
//! closes while its client is still sending (an upload refused with 413,
//! an upstream that answered before it read the body, a request behind
//! one that said `Connection: close`) is not closed at once. The kernel
//! would answer the bytes still arriving with a reset, and a client that
//! writes its whole body before it reads (Python's `requests`, most
//! scripts) would see "connection reset" and never the answer. Instead
//! the write side is shut (the answer and a FIN go out), and what the
//! client still sends is read and dropped until it stops: nothing for
//! [`LINGERING_TIMEOUT`], or [`LINGERING_TIME`] in all. A connection with
//! nothing left to read closes at once, as before.

use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::observe::metrics;

/// Longest a connection lingers in all (nginx: `lingering_time 30s`).
pub const LINGERING_TIME: Duration = Duration::from_secs(30);
/// Longest it waits for more of the client's bytes (nginx:
/// `lingering_timeout 5s`).
pub const LINGERING_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections lingering at once; past this, a connection closes at once
/// (a flood of refused uploads cannot hold sockets without bound).
const MAX_LINGERING: usize = 4096;

static LINGERING: AtomicUsize = AtomicUsize::new(0);

/// Closes `stream`, a connection's socket after its last answer, lingering
/// when the client may still be sending: `unread` (bytes of it wharf read
/// and left), or bytes waiting in the socket. Needs no async context;
/// lingering runs as a task of its own on the current runtime.
pub(crate) fn close(stream: TcpStream, unread: bool) {
    let Ok(stream) = stream.into_std() else {
        return;
    };
    if !unread {
        // Still non-blocking: `WouldBlock` when nothing is waiting.
        let mut probe = [0u8; 1];
        match stream.peek(&mut probe) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
    // The answer and a FIN go out now; the socket stays open for reading.
    let _ = stream.shutdown(Shutdown::Write);
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if LINGERING.fetch_add(1, Ordering::Relaxed) >= MAX_LINGERING {
        LINGERING.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let counted = Counted {
        _metric: metrics::global().lingering_started(),
    };
    runtime.spawn(async move {
        let _counted = counted;
        if let Ok(stream) = TcpStream::from_std(stream) {
            drain(stream).await;
        }
    });
}

/// One lingering connection, uncounted (here and in the metrics) when
/// dropped.
struct Counted {
    _metric: metrics::LingeringGuard,
}

impl Drop for Counted {
    fn drop(&mut self) {
        LINGERING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Reads and drops what the client sends until it stops or closes.
async fn drain(mut stream: TcpStream) {
    let end = tokio::time::Instant::now() + LINGERING_TIME;
    let mut scratch = [0u8; 4096];
    loop {
        let wait = (tokio::time::Instant::now() + LINGERING_TIMEOUT).min(end);
        match tokio::time::timeout_at(wait, stream.read(&mut scratch)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        (client, server)
    }

    #[tokio::test]
    async fn a_connection_with_nothing_left_to_read_closes_at_once() {
        let (mut client, server) = pair().await;
        close(server, false);
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(2), client.read(&mut byte)).await;
        assert!(matches!(read, Ok(Ok(0))), "{read:?}");
        // Nothing reads any more: the next bytes are refused.
        let mut refused = false;
        for _ in 0..50 {
            if client.write_all(&[0u8; 4096]).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused, "the socket was kept open with nothing to read");
    }

    #[tokio::test]
    async fn a_client_still_sending_gets_the_end_of_the_answer_and_loses_nothing() {
        let (mut client, mut server) = pair().await;
        client
            .write_all(&[b'x'; 64 * 1024])
            .await
            .expect("first bytes");
        server.write_all(b"answer").await.expect("answer");
        // Wait until the client's bytes are there, unread.
        tokio::time::sleep(Duration::from_millis(50)).await;
        close(server, false);
        // The client goes on writing, as one sending its whole body
        // before reading does, then reads the answer and the end.
        for _ in 0..256 {
            client
                .write_all(&[b'x'; 64 * 1024])
                .await
                .expect("the rest of the body");
        }
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut answer));
        assert!(matches!(read.await, Ok(Ok(6))));
        assert_eq!(answer, b"answer");
    }

    #[tokio::test]
    async fn bytes_known_to_be_unread_make_it_linger_before_they_arrive() {
        let (mut client, server) = pair().await;
        close(server, true);
        tokio::time::sleep(Duration::from_millis(50)).await;
        for _ in 0..64 {
            client
                .write_all(&[b'x'; 64 * 1024])
                .await
                .expect("the body, sent late");
        }
        let mut end = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut end));
        assert!(matches!(read.await, Ok(Ok(0))));
    }
}
