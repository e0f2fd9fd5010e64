//! Tokens already verified, remembered until they expire.
//!
//! Verifying a JWT (base64, HMAC or RSA/ECDSA, JSON) was ~9% of a send's
//! CPU in the profile (BENCHMARKS.md), and a client sends the same token
//! with every message until it renews it. The outcome of verifying the same
//! bytes does not change, except with time: so a success is kept, keyed by
//! the whole token (never a hash of it), until the token's `exp` plus the
//! leeway, and checked against the clock at every use. Failures are never
//! kept. The cache is bounded: when full, expired entries go, and if that is
//! not enough, everything goes (a burst of new tokens costs a verification
//! each, as without a cache).

use std::collections::HashMap;
use std::sync::Mutex;

use super::Identity;

/// At most this many tokens are remembered (a few hundred bytes each).
pub const DEFAULT_CAPACITY: usize = 10_000;

#[derive(Debug)]
pub struct TokenCache {
    entries: Mutex<HashMap<Box<str>, Entry>>,
    capacity: usize,
}

#[derive(Debug)]
struct Entry {
    identity: Identity,
    /// Unix seconds; the token is accepted while the clock is below this.
    valid_until: u64,
}

impl TokenCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The identity of `token` if it was verified and is still valid at
    /// `now` (unix seconds).
    pub fn get(&self, token: &str, now: u64) -> Option<Identity> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(token)
            .filter(|entry| now < entry.valid_until)
            .map(|entry| entry.identity.clone())
    }

    /// Remembers a verified `token` until `valid_until` (unix seconds).
    pub fn put(&self, token: &str, identity: Identity, valid_until: u64, now: u64) {
        if self.capacity == 0 || valid_until <= now {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity && !entries.contains_key(token) {
            entries.retain(|_, entry| now < entry.valid_until);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(
            token.into(),
            Entry {
                identity,
                valid_until,
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::UserId;

    fn identity(name: &str) -> Identity {
        Identity {
            user_id: UserId::parse("64d15f9e2e6c8f4d5a123456").expect("valid"),
            username: Some(name.to_owned()),
            name: None,
            surname: None,
            roles: Vec::new(),
            valid_until: chrono::DateTime::<chrono::Utc>::MAX_UTC,
        }
    }

    #[test]
    fn a_token_is_remembered_until_it_expires() {
        let cache = TokenCache::new(10);
        cache.put("a.b.c", identity("ayse"), 1_000, 900);
        assert_eq!(cache.get("a.b.c", 999), Some(identity("ayse")));
        assert_eq!(cache.get("a.b.c", 1_000), None, "expired");
        assert_eq!(cache.get("a.b.x", 999), None, "only the same bytes");
    }

    #[test]
    fn an_expired_token_is_not_kept() {
        let cache = TokenCache::new(10);
        cache.put("a.b.c", identity("ayse"), 900, 900);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first_then_everything() {
        let cache = TokenCache::new(2);
        cache.put("old", identity("old"), 100, 50);
        cache.put("live", identity("live"), 1_000, 50);
        // At 200 "old" has expired: it makes room.
        cache.put("new", identity("new"), 1_000, 200);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("live", 200), Some(identity("live")));
        assert_eq!(cache.get("new", 200), Some(identity("new")));
        // Nothing has expired: the cache starts over, bounded.
        cache.put("newer", identity("newer"), 1_000, 200);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get("newer", 200), Some(identity("newer")));
    }
}
