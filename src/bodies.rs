//! Request bodies, bounded in size and time: the listeners wrap each request's
//! body in a `Deadline` (`--body-read-timeout`: a client trickling a body
//! holds its request for a bounded time only), and the handlers read bodies
//! whole with `read_limited`, whose error says which bound was crossed.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::StatusCode;
use axum::http::header::CONTENT_ENCODING;
use bytes::Bytes;
use http_body_util::LengthLimitError;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the body did not arrive whole within {0:?}")]
    TimedOut(Duration),
    #[error("the body could not be read: {0}")]
    Unreadable(String),
    #[error("{0}")]
    Coded(Coded),
}

impl BodyError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TimedOut(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Unreadable(_) => StatusCode::BAD_REQUEST,
            Self::Coded(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        }
    }

    /// The error key, as Kubernetes names its reasons.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge(_) => "RequestEntityTooLarge",
            Self::TimedOut(_) => "Timeout",
            Self::Unreadable(_) => "BadRequest",
            Self::Coded(_) => "UnsupportedMediaType",
        }
    }
}

/// The content codings a request's body is sent in (`Content-Encoding:
/// gzip`), or None when it is sent as it is or there is no body for them to
/// apply to.
pub fn coded(request: &axum::extract::Request) -> Option<String> {
    if request.body().is_end_stream() {
        return None;
    }
    codings(request.headers())
}

/// The content codings these headers say a body is in, other than
/// `identity` (cut at 256 characters), or None.
pub fn codings(headers: &axum::http::HeaderMap) -> Option<String> {
    let codings = headers.get_all(CONTENT_ENCODING);
    codings.iter().find_map(|value| {
        let codings = value.to_str().unwrap_or("?");
        let identity = codings
            .split(',')
            .all(|coding| coding.trim().eq_ignore_ascii_case("identity"));
        (!identity).then(|| codings.chars().take(256).collect())
    })
}

/// A body sent in these content codings, which no listener decodes: taken
/// as it is, a compressed body would be read as JSON that is not there, or
/// go on as an event's data under the type the sender named for the decoded
/// form.
#[derive(Debug, Clone, thiserror::Error)]
#[error("Content-Encoding {0:?} is not accepted; send the body uncompressed")]
pub struct Coded(pub String);

/// What stands in for a coded body: reading it fails with
/// `BodyError::Coded`, so the request is refused (415) where its body is
/// read — once its handler knows the caller, so an anonymous one still gets
/// 401 first.
pub fn refusing(codings: String) -> axum::body::Body {
    let refusal = futures::stream::once(async move { Err::<Bytes, _>(Coded(codings)) });
    axum::body::Body::from_stream(refusal)
}

/// How deep a stored object may nest. The JSON parser reads at most 128
/// levels; an object kept deeper could be written and never read back, in a
/// list (two levels more) or on a Kubernetes API server, whose
/// `managedFields` copy an object's shape a few levels down.
pub const MAX_NESTING: usize = 100;

/// Whether JSON text nests arrays and objects deeper than `most` levels:
/// one pass over the bytes, before anything is built from them.
pub fn nests_deeper_than(json: &[u8], most: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > most {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The whole body, at most `limit` bytes.
pub async fn read_limited(body: axum::body::Body, limit: usize) -> Result<Bytes, BodyError> {
    // A Content-Length over the limit is refused before the body is read:
    // not waited for until the body deadline, and never invited with a
    // `100 Continue` (sent when the body is first read).
    if axum::body::HttpBody::size_hint(&body).lower() > limit as u64 {
        return Err(BodyError::TooLarge(limit));
    }
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let cause = error.into_inner();
        if cause.is::<LengthLimitError>() {
            return BodyError::TooLarge(limit);
        }
        // The body's own error comes wrapped once more by axum's `Body`.
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(cause.as_ref());
        while let Some(error) = source {
            if let Some(DeadlinePassed(timeout)) = error.downcast_ref() {
                return BodyError::TimedOut(*timeout);
            }
            if let Some(coded) = error.downcast_ref::<Coded>() {
                return BodyError::Coded(coded.clone());
            }
            source = error.source();
        }
        BodyError::Unreadable(cause.to_string())
    })
}

#[derive(Debug, thiserror::Error)]
#[error("the body did not arrive whole within {0:?}")]
struct DeadlinePassed(Duration);

/// A request body that fails once `timeout` has passed since its headers.
/// The timer is only set when the body is not all there at once, so a
/// small request costs none.
pub struct Deadline<B> {
    body: B,
    timeout: Duration,
    due: Instant,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<B> Deadline<B> {
    pub fn new(body: B, timeout: Duration) -> Self {
        Self {
            body,
            timeout,
            due: Instant::now() + timeout,
            timer: None,
        }
    }
}

impl<B> Body for Deadline<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let due = this.due;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(DeadlinePassed(this.timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings_only() {
        let nested = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        assert!(!nests_deeper_than(nested(100).as_bytes(), 100));
        assert!(nests_deeper_than(nested(101).as_bytes(), 100));
        // Brackets in strings, also after an escaped quote, are text.
        let text = format!(
            r#"{{"a": "{}\"{}", "b": [[1]]}}"#,
            "[".repeat(500),
            "{".repeat(500)
        );
        assert!(!nests_deeper_than(text.as_bytes(), 3));
        assert!(nests_deeper_than(text.as_bytes(), 2));
    }

    /// A body that sends nothing after its headers.
    struct Silent;

    impl Body for Silent {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Pending
        }
    }

    const TIMEOUT: Duration = Duration::from_secs(60);

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_coming_times_out_at_its_deadline() {
        let started = Instant::now();
        let body = axum::body::Body::new(Deadline::new(Silent, TIMEOUT));
        let error = read_limited(body, 1024).await.expect_err("times out");
        assert!(matches!(error, BodyError::TimedOut(TIMEOUT)), "{error}");
        assert_eq!(error.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(started.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_whole_body_is_read_and_an_oversized_one_named() {
        let body = axum::body::Body::new(Deadline::new(
            http_body_util::Full::new(Bytes::from_static(b"hello")),
            TIMEOUT,
        ));
        assert_eq!(read_limited(body, 5).await.expect("whole"), "hello");
        let body = axum::body::Body::new(Deadline::new(
            http_body_util::Full::new(Bytes::from_static(b"hello!")),
            TIMEOUT,
        ));
        let error = read_limited(body, 5).await.expect_err("too large");
        assert!(matches!(error, BodyError::TooLarge(5)), "{error}");
        assert_eq!(error.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
