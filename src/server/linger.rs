//! Closing a connection without resetting it. A request refused before its
//! body is read (413 from its Content-Length) leaves the body arriving; a
//! socket closed with unread data sends a reset, which can destroy the
//! answer before the client reads it, and a client still writing the body
//! sees only a broken pipe. So, as nginx's `lingering_close`, closing first
//! ends the sending side, then reads and drops what still comes until the
//! client closes too, it pauses for `IDLE`, `LONGEST` has passed or `MOST`
//! bytes were dropped. A client that closes when it sees the end (as
//! kept-alive pools do) ends it at once.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

const IDLE: Duration = Duration::from_millis(200);
const LONGEST: Duration = Duration::from_secs(2);
const MOST: usize = 64 << 20;

pub struct Linger<I> {
    io: I,
    closing: Option<Closing>,
}

struct Closing {
    /// Whether the sending side is shut and only dropping is left.
    shut: bool,
    ends_at: Instant,
    /// When the next read must have come by: the sooner of `ends_at` and
    /// `IDLE` after the last one.
    timer: Pin<Box<Sleep>>,
    dropped: usize,
}

impl<I> Linger<I> {
    pub fn new(io: I) -> Self {
        Self { io, closing: None }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Linger<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Linger<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let closing = this.closing.get_or_insert_with(|| {
            let ends_at = Instant::now() + LONGEST;
            Closing {
                shut: false,
                ends_at,
                timer: Box::pin(tokio::time::sleep_until(ends_at.min(Instant::now() + IDLE))),
                dropped: 0,
            }
        });
        if !closing.shut {
            std::task::ready!(Pin::new(&mut this.io).poll_shutdown(cx))?;
            closing.shut = true;
        }
        let mut scratch = [0u8; 8192];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut this.io).poll_read(cx, &mut buf) {
                Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                    closing.dropped += buf.filled().len();
                    if closing.dropped >= MOST {
                        return Poll::Ready(Ok(()));
                    }
                    let next = closing.ends_at.min(Instant::now() + IDLE);
                    closing.timer.as_mut().reset(next);
                }
                // The client closed too, or the connection broke: done.
                Poll::Ready(_) => return Poll::Ready(Ok(())),
                Poll::Pending => {
                    return match closing.timer.as_mut().poll(cx) {
                        Poll::Ready(()) => Poll::Ready(Ok(())),
                        Poll::Pending => Poll::Pending,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    #[tokio::test(start_paused = true)]
    async fn closing_drops_what_still_comes_until_the_client_closes() {
        let (near, mut far) = duplex(1024);
        let mut linger = Linger::new(near);
        let closed = tokio::spawn(async move { linger.shutdown().await });
        // The near side's end is seen, and what is written meanwhile is taken.
        let mut seen = Vec::new();
        far.read_to_end(&mut seen).await.expect("read");
        assert!(seen.is_empty());
        far.write_all(&[1; 100_000])
            .await
            .expect("taken while closing");
        assert!(!closed.is_finished(), "still dropping");
        drop(far);
        closed.await.expect("task").expect("closed");
    }

    #[tokio::test(start_paused = true)]
    async fn closing_ends_after_a_pause_or_at_the_latest_after_longest() {
        let (near, far) = duplex(1024);
        let mut linger = Linger::new(near);
        let started = Instant::now();
        linger.shutdown().await.expect("closed");
        assert_eq!(started.elapsed(), IDLE, "nothing came: one pause");
        drop(far);

        let (near, mut far) = duplex(1024);
        let mut linger = Linger::new(near);
        let started = Instant::now();
        let closing = tokio::spawn(async move { linger.shutdown().await });
        // A client trickling a byte every half pause is cut at LONGEST.
        while !closing.is_finished() {
            tokio::time::sleep(IDLE / 2).await;
            let _ = far.write_all(&[1]).await;
        }
        closing.await.expect("task").expect("closed");
        let took = started.elapsed();
        assert!(took >= LONGEST && took <= LONGEST + IDLE, "{took:?}");
    }
}
