//! A connection whose writes fail once its client has taken nothing for
//! `--send-timeout`. hyper has no write timeout, and an HTTP/1 connection
//! whose client never reads its answers would keep its task for ever: it
//! reads no next request while an answer waits, so the header timeout never
//! comes. As nginx's `send_timeout`, the clock runs between two writes that
//! move data; the timer is set only when a write has to wait.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

pub struct SendDeadline<I> {
    io: I,
    timeout: Duration,
    waiting: Option<Pin<Box<Sleep>>>,
}

impl<I> SendDeadline<I> {
    pub fn new(io: I, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            waiting: None,
        }
    }

    fn watch<T>(
        &mut self,
        polled: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.waiting = None;
            return polled;
        }
        let timeout = self.timeout;
        let timer = self
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client took nothing of the answer for {timeout:?}"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for SendDeadline<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for SendDeadline<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.watch(polled, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.watch(polled, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        this.watch(polled, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_shutdown(cx);
        this.watch(polled, cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_takes_nothing_of_fails_after_the_timeout() {
        let timeout = Duration::from_secs(30);
        // A pipe whose other end never reads: 64 bytes fill it.
        let (near, _far) = tokio::io::duplex(64);
        let mut sending = SendDeadline::new(near, timeout);
        let started = tokio::time::Instant::now();
        let error = sending
            .write_all(&[0u8; 1024])
            .await
            .expect_err("the write times out");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), timeout);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_keeps_taking_keeps_the_clock_from_running_out() {
        let timeout = Duration::from_secs(30);
        let (near, mut far) = tokio::io::duplex(64);
        let mut sending = SendDeadline::new(near, timeout);
        // The peer takes 64 bytes every 20 s: slower than the writer, never
        // idle for the whole timeout.
        let reader = tokio::spawn(async move {
            let mut taken = 0;
            let mut buffer = [0u8; 64];
            while taken < 1024 {
                tokio::time::sleep(Duration::from_secs(20)).await;
                taken += tokio::io::AsyncReadExt::read(&mut far, &mut buffer)
                    .await
                    .expect("reads");
            }
        });
        sending.write_all(&[0u8; 1024]).await.expect("all written");
        reader.await.expect("reader");
    }
}
