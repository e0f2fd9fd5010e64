//! [`CoalescedWrites`]: a connection's writes wait one turn of the
//! scheduler, so that the responses finished in the same turn leave in one
//! `writev` instead of one each.
//!
//! Why: under load, the group commit answers a few dozen sends at once. Each
//! send's response wakes the connection task, and Tokio runs a task woken by
//! another next (its LIFO slot), so h2 wrote and flushed after every single
//! response: one `writev` (and one loopback TCP segment for the client to
//! read) per send, ~7% of chat-service's CPU in `tcp_sendmsg` at 64 in
//! flight (BENCHMARKS.md, "Lean send path"). Here the first write of a turn
//! is answered `Pending` with the task woken again at once: a self-wake puts
//! the connection task at the *back* of the run queue, behind the other
//! responses that are ready, and its next write carries them all.
//!
//! The cost is one extra poll of the connection task per flush, and a write
//! waits at most for the tasks already queued on this worker: none when the
//! server is idle, so a lone request is not delayed.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Where the current flush stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Turn {
    /// Nothing written since the last flush: the next write yields first.
    Idle,
    /// The first write yielded; the next one goes through.
    Yielded,
    /// Writes go through until the flush that ends them.
    Writing,
}

/// An I/O object whose first write after each flush yields once.
pub struct CoalescedWrites<T> {
    inner: T,
    turn: Turn,
}

impl<T> CoalescedWrites<T> {
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            turn: Turn::Idle,
        }
    }

    /// Whether this write must yield first (waking the task, so that it is
    /// polled again after the tasks already queued).
    fn yields(&mut self, cx: &mut Context<'_>) -> bool {
        if self.turn == Turn::Idle {
            self.turn = Turn::Yielded;
            cx.waker().wake_by_ref();
            return true;
        }
        self.turn = Turn::Writing;
        false
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CoalescedWrites<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CoalescedWrites<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.yields(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.yields(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.turn = Turn::Idle;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn every_byte_arrives_in_order_across_flushes() {
        let (client, mut server) = tokio::io::duplex(1024);
        let mut writer = CoalescedWrites::new(client);
        for chunk in [&b"one "[..], b"two ", b"three"] {
            writer.write_all(chunk).await.expect("write");
            writer.flush().await.expect("flush");
        }
        writer.shutdown().await.expect("shutdown");
        let mut received = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut server, &mut received)
            .await
            .expect("read");
        assert_eq!(received, b"one two three");
    }

    #[tokio::test]
    async fn the_first_write_after_a_flush_yields_once_then_goes_through() {
        let (client, _server) = tokio::io::duplex(1024);
        let mut writer = CoalescedWrites::new(client);
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let mut pinned = Pin::new(&mut writer);
        assert!(pinned.as_mut().poll_write(&mut cx, b"a").is_pending());
        assert!(matches!(
            pinned.as_mut().poll_write(&mut cx, b"a"),
            Poll::Ready(Ok(1))
        ));
        // Further writes of the same flush are not held back.
        assert!(matches!(
            pinned.as_mut().poll_write(&mut cx, b"b"),
            Poll::Ready(Ok(1))
        ));
        assert!(pinned.as_mut().poll_flush(&mut cx).is_ready());
        assert!(pinned.as_mut().poll_write(&mut cx, b"c").is_pending());
    }
}
