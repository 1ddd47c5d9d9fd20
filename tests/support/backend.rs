//! Backends and addresses for wharf to proxy to: the echo backend in this
//! process or in its own, blocks of free ports, an address where nothing
//! listens, and one where a connect never completes.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use super::WHARF;

/// Starts the echo backend in this process on a free port.
pub async fn echo() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind echo");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = wharf::echo::serve(listener).await;
    });
    addr
}

/// A block of `n` free consecutive loopback ports for wharf to listen on,
/// below the ephemeral range: a port taken from `bind(0)` and released
/// can be handed to any other test's listener or client at once, one
/// from here cannot.
pub fn free_ports(n: u16) -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let seed = std::process::id().wrapping_mul(7919);
    for _ in 0..500 {
        let step = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let base = 20_000 + (seed.wrapping_add(step.wrapping_mul(16)) % 12_000) as u16;
        if (0..n).all(|i| std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no {n} free consecutive ports");
}

/// An address where nothing listens, and nothing else can start to: a
/// socket bound to it without listening is kept open for the life of the
/// test process, so connecting is refused and no other test's listener is
/// given the port.
pub fn dead_addr() -> SocketAddr {
    // SAFETY: plain socket calls on a new descriptor owned here, with
    // pointers to properly sized local structs. The descriptor is never
    // closed on purpose: it holds the port.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
        let mut len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        let bound = libc::bind(fd, std::ptr::addr_of!(addr).cast(), len);
        assert_eq!(bound, 0, "bind: {}", std::io::Error::last_os_error());
        let named = libc::getsockname(fd, std::ptr::addr_of_mut!(addr).cast(), &mut len);
        assert_eq!(named, 0, "getsockname: {}", std::io::Error::last_os_error());
        SocketAddr::from(([127, 0, 0, 1], u16::from_be(addr.sin_port)))
    }
}

/// An address on loopback where a connect hangs as it does behind a
/// firewall that drops packets: a listener with a backlog of 0 that never
/// accepts, whose accept queue is filled by connections held here. The
/// kernel then drops every further SYN (with or without
/// `net.ipv4.tcp_abort_on_overflow`, which only concerns the last ACK of a
/// handshake), so the connect waits for SYN retransmits that are dropped
/// too. Holds the port for as long as it lives.
pub struct Unanswered {
    pub addr: SocketAddr,
    _listener: tokio::net::TcpListener,
    _held: Vec<tokio::net::TcpStream>,
}

/// Opens an [`Unanswered`] address, and proves it: connects until one
/// gets no answer within half a second (a dropped SYN is sent again only
/// after a second). Must run inside a tokio runtime.
pub async fn unanswered() -> Unanswered {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind");
    let listener = socket.listen(0).expect("listen");
    let addr = listener.local_addr().expect("addr");
    let mut held = Vec::new();
    for _ in 0..8 {
        let connect = tokio::net::TcpStream::connect(addr);
        match tokio::time::timeout(std::time::Duration::from_millis(500), connect).await {
            Ok(Ok(stream)) => held.push(stream),
            Ok(Err(error)) => panic!("connect to {addr} failed instead of hanging: {error}"),
            Err(_) => {
                return Unanswered {
                    addr,
                    _listener: listener,
                    _held: held,
                }
            }
        }
    }
    panic!(
        "{addr} accepted {} connections with a backlog of 0",
        held.len()
    );
}

/// A `wharf echo` backend in its own process, so a test can SIGKILL it.
pub struct EchoProcess {
    pub child: Child,
    pub addr: SocketAddr,
}

impl EchoProcess {
    /// Starts `wharf echo` on `port` (0 = any free port).
    pub fn start(port: u16) -> EchoProcess {
        let mut child = Command::new(WHARF)
            .args(["echo", "--port", &port.to_string()])
            .env_remove("PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn wharf echo");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read echo address");
        let addr = line
            .trim()
            .rsplit("http://")
            .next()
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected echo output: {line:?}"));
        EchoProcess { child, addr }
    }

    /// SIGKILL, like a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for EchoProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
