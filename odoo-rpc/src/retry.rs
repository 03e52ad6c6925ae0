//! When and how the client retries.
//!
//! A call is retried only when repeating it cannot change data twice:
//!
//! - the call is read-only: `version`, `health`, `list_databases`,
//!   `authenticate`, and the ORM methods in [`READ_ONLY_METHODS`] (the typed
//!   helpers `search`, `search_read`, `read`, `search_count`, `fields_get`, and
//!   `call_kw` with one of those names). `create`, `write`, `unlink` and any other
//!   method are never retried, whatever the failure;
//! - and the failure is transient: no connection could be made, the connection
//!   broke, or the server or a proxy answered 502, 503, 504, or a 500 that is not
//!   a JSON error (an Odoo exception is deterministic and is returned as is).
//!
//! Timeouts are not retried: the caller's time budget is spent.
//!
//! Separately, a web session that expired is renewed once, and the call repeated
//! once, for every method: Odoo rejects an expired session before running the
//! method, so nothing ran.

use std::time::Duration;

/// ORM methods that never write, so that repeating them is harmless.
pub const READ_ONLY_METHODS: &[&str] = &[
    "search",
    "search_read",
    "read",
    "search_count",
    "fields_get",
    "name_search",
    "name_get",
    "read_group",
    "web_search_read",
    "web_read",
    "web_read_group",
    "search_fetch",
    "default_get",
    "check_access_rights",
    "context_get",
];

/// Whether an ORM method is in [`READ_ONLY_METHODS`].
#[must_use]
pub fn is_read_only(method: &str) -> bool {
    READ_ONLY_METHODS.contains(&method)
}

/// How often and how fast read-only calls are retried after a transient failure.
///
/// The delay before retry `n` (0-based) is drawn uniformly between half and all
/// of `min(base_delay * 2^n, max_delay)` (jitter spreads out clients that failed
/// together).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 disables retries).
    pub max_retries: u32,
    /// The delay before the first retry, doubled for each further one.
    pub base_delay: Duration,
    /// The longest delay between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Two retries, after about 100 ms and 200 ms, capped at 2 s.
    fn default() -> Self {
        Self {
            max_retries: 2,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    #[must_use]
    pub fn none() -> Self {
        Self {
            max_retries: 0,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        }
    }

    /// The jittered delay before retry number `retry` (0-based).
    #[must_use]
    pub fn delay(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        let full = self
            .base_delay
            .checked_mul(factor)
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let nanos = u64::try_from(full.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(fastrand::u64(nanos / 2..=nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_capped() {
        let policy = RetryPolicy {
            max_retries: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(500),
        };
        for _ in 0..100 {
            let d0 = policy.delay(0);
            assert!(d0 >= Duration::from_millis(50) && d0 <= Duration::from_millis(100));
            let d1 = policy.delay(1);
            assert!(d1 >= Duration::from_millis(100) && d1 <= Duration::from_millis(200));
            let d9 = policy.delay(9);
            assert!(d9 >= Duration::from_millis(250) && d9 <= Duration::from_millis(500));
            assert!(policy.delay(u32::MAX) <= Duration::from_millis(500));
        }
        assert_eq!(RetryPolicy::none().delay(3), Duration::ZERO);
    }

    #[test]
    fn writes_are_not_read_only() {
        for m in [
            "search",
            "search_read",
            "read",
            "search_count",
            "fields_get",
            "name_search",
        ] {
            assert!(is_read_only(m), "{m}");
        }
        for m in [
            "create",
            "write",
            "unlink",
            "action_confirm",
            "button_immediate_install",
            "",
        ] {
            assert!(!is_read_only(m), "{m}");
        }
    }
}
