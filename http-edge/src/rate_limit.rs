//! The send rate limit chat-service reports, as the IETF RateLimit header
//! fields (`RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`).
//!
//! chat-service sends them as response metadata (`ratelimit-limit`,
//! `ratelimit-remaining`, `ratelimit-reset`) on `SendMessage` successes and
//! on its slow-mode and burst-limit refusals; the edge copies them onto the
//! HTTP response. Each value must be a plain non-negative integer: anything
//! else is dropped rather than passed on, so nothing chat-service sends can
//! inject a header value.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use tonic::metadata::MetadataMap;

/// The header fields, in the names the IETF draft gives them (HTTP/1.1
/// sends header names in lowercase anyway).
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// What chat-service said about the caller's sending quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Messages allowed per window.
    pub limit: Option<u64>,
    /// Messages left in the current window.
    pub remaining: Option<u64>,
    /// Seconds until the quota is full again.
    pub reset: Option<u64>,
}

impl RateLimit {
    /// The values in `metadata` (gRPC metadata keys are the header names);
    /// `None` when it has none of them.
    pub fn from_metadata(metadata: &MetadataMap) -> Option<Self> {
        let number = |key: &HeaderName| {
            metadata
                .get(key.as_str())
                .and_then(|value| value.to_str().ok())
                .and_then(parse_count)
        };
        let rate_limit = Self {
            limit: number(&RATELIMIT_LIMIT),
            remaining: number(&RATELIMIT_REMAINING),
            reset: number(&RATELIMIT_RESET),
        };
        (rate_limit.limit.is_some() || rate_limit.remaining.is_some() || rate_limit.reset.is_some())
            .then_some(rate_limit)
    }

    /// Adds the header fields that have a value.
    pub fn insert_into(&self, headers: &mut HeaderMap) {
        for (name, value) in [
            (RATELIMIT_LIMIT, self.limit),
            (RATELIMIT_REMAINING, self.remaining),
            (RATELIMIT_RESET, self.reset),
        ] {
            if let Some(value) = value {
                headers.insert(name, HeaderValue::from(value));
            }
        }
    }
}

/// Plain decimal digits only (what the IETF fields allow), bounded so that
/// it fits a u64.
fn parse_count(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(pairs: &[(&'static str, &'static str)]) -> MetadataMap {
        let mut metadata = MetadataMap::new();
        for (key, value) in pairs {
            metadata.insert(*key, value.parse().expect("ASCII"));
        }
        metadata
    }

    #[test]
    fn the_three_values_become_the_three_headers() {
        let rate_limit = RateLimit::from_metadata(&metadata(&[
            ("ratelimit-limit", "20"),
            ("ratelimit-remaining", "0"),
            ("ratelimit-reset", "2"),
        ]))
        .expect("reported");
        let mut headers = HeaderMap::new();
        rate_limit.insert_into(&mut headers);
        assert_eq!(headers["ratelimit-limit"], "20");
        assert_eq!(headers["ratelimit-remaining"], "0");
        assert_eq!(headers["ratelimit-reset"], "2");
    }

    #[test]
    fn no_values_is_no_rate_limit_and_garbage_is_dropped() {
        assert_eq!(RateLimit::from_metadata(&MetadataMap::new()), None);
        assert_eq!(
            RateLimit::from_metadata(&metadata(&[("ratelimit-limit", "-1")])),
            None
        );
        let rate_limit = RateLimit::from_metadata(&metadata(&[
            ("ratelimit-limit", "20"),
            ("ratelimit-remaining", "1.5"),
            ("ratelimit-reset", "99999999999999999999"),
        ]))
        .expect("the limit is reported");
        assert_eq!(
            rate_limit,
            RateLimit {
                limit: Some(20),
                remaining: None,
                reset: None
            }
        );
    }
}
