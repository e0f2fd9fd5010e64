//! A strict reader of the edge's Server-Sent Events, over reqwest's
//! `Response::chunk`: it splits the body into events (`id:`, `event:`, one
//! `data:` line), keeps comments apart, and never waits more than its read
//! timeout ([`READ_TIMEOUT`] unless the test sets another) for a chunk, so
//! that a test fails instead of hanging.

use std::time::Duration;

use serde_json::Value;

/// The longest wait for the next chunk of a stream that should be sending.
/// Enough for the edge in front of a scripted fake; the whole stack on a
/// database wants more (see [`SseReader::with_read_timeout`]).
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// One event as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|error| panic!("data {:?} is not JSON: {error}", self.data))
    }
}

pub struct SseReader {
    response: reqwest::Response,
    buffer: Vec<u8>,
    ended: bool,
    read_timeout: Duration,
    /// Everything read so far, as text.
    pub raw: String,
    /// The comment lines read so far, without the `:`.
    pub comments: Vec<String>,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: Vec::new(),
            ended: false,
            read_timeout: READ_TIMEOUT,
            raw: String::new(),
            comments: Vec::new(),
        }
    }

    /// As [`Self::new`], waiting at most `read_timeout` for each chunk.
    pub fn with_read_timeout(response: reqwest::Response, read_timeout: Duration) -> Self {
        Self {
            read_timeout,
            ..Self::new(response)
        }
    }

    /// Reads one more chunk within `wait`; `false` when none came in time.
    async fn fill(&mut self, wait: Duration) -> bool {
        let Ok(chunk) = tokio::time::timeout(wait, self.response.chunk()).await else {
            return false;
        };
        match chunk.expect("the body reads") {
            Some(bytes) => {
                self.raw
                    .push_str(std::str::from_utf8(&bytes).expect("UTF-8"));
                self.buffer.extend_from_slice(&bytes);
            }
            None => self.ended = true,
        }
        true
    }

    /// The next line, without its `\n`; `None` at the end of the body.
    async fn next_line(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.iter().position(|byte| *byte == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                let text = String::from_utf8(line[..end].to_vec()).expect("UTF-8");
                assert!(!text.contains('\r'), "line endings are \\n: {text:?}");
                return Some(text);
            }
            if self.ended {
                assert!(self.buffer.is_empty(), "the body ended mid-line");
                return None;
            }
            let wait = self.read_timeout;
            assert!(
                self.fill(wait).await,
                "nothing within {wait:?}; read so far: {:?}",
                self.raw
            );
        }
    }

    /// The next event; `None` when the body ends.
    pub async fn next_event(&mut self) -> Option<SseEvent> {
        let mut event = SseEvent {
            id: None,
            event: None,
            data: String::new(),
        };
        let mut fields = 0;
        let mut data_lines = 0;
        while let Some(line) = self.next_line().await {
            if line.is_empty() {
                if fields > 0 {
                    return Some(event);
                }
                continue;
            }
            if let Some(comment) = line.strip_prefix(':') {
                self.comments.push(comment.trim_start().to_owned());
                continue;
            }
            let (name, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match name {
                "id" => event.id = Some(value),
                "event" => event.event = Some(value),
                "data" => {
                    data_lines += 1;
                    assert_eq!(data_lines, 1, "one data line per event: {:?}", self.raw);
                    event.data = value;
                }
                other => panic!("unexpected field {other:?} in {:?}", self.raw),
            }
            fields += 1;
        }
        assert_eq!(fields, 0, "the body ended inside an event: {:?}", self.raw);
        None
    }

    /// The next `count` events; panics if the body ends before.
    pub async fn events(&mut self, count: usize) -> Vec<SseEvent> {
        let mut events = Vec::with_capacity(count);
        for _ in 0..count {
            let event = self.next_event().await;
            events.push(event.unwrap_or_else(|| panic!("the body ended: {:?}", self.raw)));
        }
        events
    }

    /// Asserts that the body ends with no further event.
    pub async fn expect_end(&mut self) {
        let next = self.next_event().await;
        assert_eq!(next, None, "expected the end of the stream");
    }

    /// Asserts that nothing but comments arrives for `wait` and the body is
    /// still open.
    pub async fn expect_silence(&mut self, wait: Duration) {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || !self.fill(left).await {
                break;
            }
            assert!(!self.ended, "the stream ended: {:?}", self.raw);
        }
        let pending: String = String::from_utf8_lossy(&self.buffer).into_owned();
        let only_comments = pending
            .split('\n')
            .all(|line| line.is_empty() || line.starts_with(':'));
        assert!(only_comments, "unexpected data: {pending:?}");
    }
}

/// Reads an event stream's raw connection (one whose client stopped reading)
/// until the server closes it, within `hang`, and asserts that its last event
/// is a `gap` carrying the resume cursor: how a laggard is ended.
pub async fn expect_closed_with_gap(
    connection: &mut (impl tokio::io::AsyncRead + Unpin),
    hang: Duration,
) {
    use tokio::io::AsyncReadExt;

    let mut seen = Vec::new();
    tokio::time::timeout(hang, connection.read_to_end(&mut seen))
        .await
        .expect("a client that fell behind is disconnected")
        .ok();
    let seen = String::from_utf8_lossy(&seen);
    let last = seen
        .rsplit("\n\n")
        .find(|block| block.contains("event: "))
        .expect("events were sent");
    assert!(last.contains("event: gap"), "{last}");
    assert!(
        last.contains("id: "),
        "the gap carries the resume cursor: {last}"
    );
}
