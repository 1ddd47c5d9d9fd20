//! Buffers of the fast path, kept per thread between requests.
//!
//! A keep-alive connection gives its read buffer up while it waits for
//! the next request, so 10,000 idle connections hold no buffers; a
//! request's upstream buffer lives as long as the request. Freed and
//! allocated again for every request, these 4 and 16 KiB blocks often
//! find their allocator page emptied and take the allocator's slow path
//! (300 to 500 instructions each). Kept here instead, the next request on
//! this thread, on any connection, takes one back for a few instructions.

use std::cell::RefCell;

use bytes::BytesMut;

/// Which buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spare {
    /// A client connection's read buffer (`READ_BUFFER`).
    Read,
    /// A response's buffer from the upstream (`UPSTREAM_BUFFER`).
    Upstream,
}

/// A client connection's read buffer; grows up to `max_header_size`.
pub const READ_BUFFER: usize = 4096;
/// The first read buffer for an upstream response.
pub const UPSTREAM_BUFFER: usize = 16 * 1024;

thread_local! {
    static READ: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
    static UPSTREAM: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

impl Spare {
    /// The room a buffer of this kind starts with.
    pub const fn size(self) -> usize {
        match self {
            Spare::Read => READ_BUFFER,
            Spare::Upstream => UPSTREAM_BUFFER,
        }
    }

    /// Most buffers kept per thread, whatever the number of connections:
    /// 64 of each kind, 1.25 MiB in their first sizes, 2.5 MiB at most.
    /// Keeping 16 upstream buffers, three requests in four found none
    /// at 64 busy connections.
    const fn kept(self) -> usize {
        match self {
            Spare::Read => 64,
            Spare::Upstream => 64,
        }
    }

    /// The thread's buffers of this kind; `None` during thread teardown.
    fn with<R>(self, f: impl FnOnce(&RefCell<Vec<BytesMut>>) -> R) -> Option<R> {
        match self {
            Spare::Read => READ.try_with(f).ok(),
            Spare::Upstream => UPSTREAM.try_with(f).ok(),
        }
    }
}

/// An empty buffer with room for at least `spare.size()` bytes.
pub fn take(spare: Spare) -> BytesMut {
    spare
        .with(|kept| kept.try_borrow_mut().ok()?.pop())
        .flatten()
        .unwrap_or_else(|| BytesMut::with_capacity(spare.size()))
}

/// Gives `buf` back for another request. Kept only when it holds its
/// memory alone (no `Bytes` taken from it is alive) and has not grown
/// beyond twice its size (a long head, a large body); otherwise dropped.
pub fn give(spare: Spare, mut buf: BytesMut) {
    buf.clear();
    if !buf.try_reclaim(spare.size()) || buf.capacity() > 2 * spare.size() {
        return;
    }
    spare.with(|kept| {
        if let Ok(mut kept) = kept.try_borrow_mut() {
            if kept.len() < spare.kept() {
                kept.push(buf);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_given_back_is_taken_again_with_its_memory() {
        let mut buf = take(Spare::Read);
        buf.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let at = buf.as_ptr();
        give(Spare::Read, buf);
        let again = take(Spare::Read);
        assert_eq!(again.as_ptr(), at, "the same memory is reused");
        assert!(again.is_empty());
        assert!(again.capacity() >= READ_BUFFER);
    }

    #[test]
    fn a_buffer_read_past_is_kept_whole() {
        let mut buf = take(Spare::Read);
        buf.extend_from_slice(&[b'x'; 1000]);
        let _ = buf.split_to(1000);
        // The split half is dropped: the buffer holds its memory alone
        // again and gets its full room back.
        give(Spare::Read, buf);
        let again = take(Spare::Read);
        assert!(again.capacity() >= READ_BUFFER);
    }

    #[test]
    fn a_buffer_still_shared_or_grown_large_is_not_kept() {
        // Empty the cache of this test's thread first.
        while READ.with(|kept| kept.borrow_mut().pop()).is_some() {}

        let mut shared = take(Spare::Read);
        shared.extend_from_slice(b"head");
        let held = shared.split_to(4).freeze();
        give(Spare::Read, shared);
        assert_eq!(READ.with(|kept| kept.borrow().len()), 0);
        drop(held);

        give(Spare::Read, BytesMut::with_capacity(64 * 1024));
        assert_eq!(READ.with(|kept| kept.borrow().len()), 0);

        give(Spare::Read, BytesMut::new());
        assert_eq!(READ.with(|kept| kept.borrow().len()), 0);
    }

    #[test]
    fn upstream_buffers_are_kept_apart_from_read_buffers() {
        let mut upstream = take(Spare::Upstream);
        assert!(upstream.capacity() >= UPSTREAM_BUFFER);
        upstream.extend_from_slice(b"HTTP/1.1 200 OK\r\n\r\n");
        let at = upstream.as_ptr();
        give(Spare::Upstream, upstream);
        let read = take(Spare::Read);
        assert_ne!(read.as_ptr(), at);
        assert_eq!(take(Spare::Upstream).as_ptr(), at);
    }

    #[test]
    fn at_most_kept_buffers_are_held() {
        while READ.with(|kept| kept.borrow_mut().pop()).is_some() {}
        for _ in 0..Spare::Read.kept() + 10 {
            give(Spare::Read, BytesMut::with_capacity(READ_BUFFER));
        }
        assert_eq!(READ.with(|kept| kept.borrow().len()), Spare::Read.kept());
    }
}
