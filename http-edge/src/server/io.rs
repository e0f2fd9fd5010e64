//! [`GuardedIo`]: a client connection that is closed once it has moved no
//! byte, either way, for the idle timeout, and whose automatic error
//! responses from hyper are rewritten into the envelope.
//!
//! One rule covers three attacks: an idle keep-alive connection, a client
//! that stopped reading its response (its writes make no progress once the
//! socket buffer is full), and an HTTP/2 connection left open with nothing on
//! it. A live event stream is never idle: it writes a keep-alive comment
//! every 15 s. Slow headers and slow bodies that do trickle bytes are bounded
//! separately (the header read timeout, the body read timeout).
//!
//! The timer is re-armed lazily: each read or write only records the time,
//! and the sleep, when it fires early, is pushed to the last progress plus
//! the timeout. A busy connection thus costs one clock read per operation,
//! not a timer update.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    time::{Instant, Sleep},
};

use super::automatic_response;

/// A client connection with an idle deadline.
pub struct GuardedIo {
    inner: TcpStream,
    idle_timeout: Duration,
    last_progress: Instant,
    deadline: Pin<Box<Sleep>>,
    /// An envelope being written in place of hyper's bare error response,
    /// and how many bytes of hyper's buffer it stands for.
    replacement: Option<Replacement>,
    /// Set once a replacement went out: closing then drains what the
    /// client still sends (see [`Self::poll_linger`]).
    linger: Option<Linger>,
}

/// A lingering close, as nginx does after an error: after hyper refused a
/// request it had not read in full, closing the socket with the client's
/// unread bytes in it would make the kernel send a reset, which can destroy
/// the answer before the client reads it. So the write side is shut, and
/// what the client still sends is read and dropped, for a bounded time and
/// number of bytes, before the socket is closed.
struct Linger {
    drained: usize,
    until: Instant,
}

const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 4 * 1024 * 1024;

struct Replacement {
    bytes: Vec<u8>,
    written: usize,
    stands_for: usize,
}

impl GuardedIo {
    pub fn new(inner: TcpStream, idle_timeout: Duration) -> Self {
        let now = Instant::now();
        Self {
            inner,
            idle_timeout,
            last_progress: now,
            deadline: Box::pin(tokio::time::sleep_until(now + idle_timeout)),
            replacement: None,
            linger: None,
        }
    }

    fn progress(&mut self) {
        self.last_progress = Instant::now();
    }

    /// Called when the socket is not ready: fails the operation once the
    /// connection has been idle for the whole timeout, else makes sure the
    /// task is woken when it would be.
    fn check_idle(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        loop {
            if self.deadline.as_mut().poll(cx).is_pending() {
                return Ok(());
            }
            let due = self.last_progress + self.idle_timeout;
            if Instant::now() >= due {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connection idle for too long",
                ));
            }
            // Progress was made since the timer was armed: re-arm it, and
            // poll it again so that it holds this task's waker.
            self.deadline.as_mut().reset(due);
        }
    }

    /// Writes the pending replacement, if any; `Ready(Some(n))` once it is
    /// all out, `n` being what it stands for in hyper's buffer.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Option<usize>>> {
        let Some(replacement) = self.replacement.as_mut() else {
            return Poll::Ready(Ok(None));
        };
        while replacement.written < replacement.bytes.len() {
            match Pin::new(&mut self.inner)
                .poll_write(cx, &replacement.bytes[replacement.written..])
            {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(written)) => {
                    replacement.written += written;
                    self.last_progress = Instant::now();
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => {
                    self.check_idle(cx)?;
                    return Poll::Pending;
                }
            }
        }
        let stands_for = replacement.stands_for;
        self.replacement = None;
        self.linger = Some(Linger {
            drained: 0,
            until: Instant::now() + LINGER_TIME,
        });
        Poll::Ready(Ok(Some(stands_for)))
    }

    /// After the write side is shut: reads and drops what the client still
    /// sends until it closes, or the linger's time or byte budget is spent.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(linger) = self.linger.as_mut() else {
            return Poll::Ready(());
        };
        let mut scratch = [0_u8; 8192];
        loop {
            if linger.drained >= LINGER_BYTES || Instant::now() >= linger.until {
                return Poll::Ready(());
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.inner).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(()),
                Poll::Ready(Ok(())) => linger.drained += buf.filled().len(),
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => {
                    // Woken by the socket, or by the linger's end.
                    self.deadline.as_mut().reset(linger.until);
                    if self.deadline.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(());
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl AsyncRead for GuardedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.progress();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                this.check_idle(cx)?;
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for GuardedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacement.is_none()
            && let Some(bytes) = automatic_response::replacement(buf)
        {
            this.replacement = Some(Replacement {
                bytes,
                written: 0,
                stands_for: buf.len(),
            });
        }
        if let Some(stands_for) = ready!(this.poll_replacement(cx))? {
            return Poll::Ready(Ok(stands_for));
        }
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(written)) => {
                if written > 0 {
                    this.progress();
                }
                Poll::Ready(Ok(written))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                this.check_idle(cx)?;
                Poll::Pending
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => {
                this.check_idle(cx)?;
                Poll::Pending
            }
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        let shut = match Pin::new(&mut this.inner).poll_shutdown(cx) {
            Poll::Pending => {
                this.check_idle(cx)?;
                return Poll::Pending;
            }
            Poll::Ready(shut) => shut,
        };
        ready!(this.poll_linger(cx));
        this.linger = None;
        Poll::Ready(shut)
    }
}
