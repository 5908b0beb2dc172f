//! Failed logins are counted per user and per client address over a
//! window: after a few, each further failure is answered slowly; after
//! more, attempts are refused (429) until the window ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The window failures are counted over.
const WINDOW: Duration = Duration::from_secs(60);
/// Failures answered at normal speed.
const FREE_FAILURES: u32 = 3;
/// Failures after which attempts are refused until the window ends.
const REFUSE_AFTER: u32 = 10;
/// Extra delay per failure past the free ones.
const DELAY_STEP: Duration = Duration::from_millis(250);
/// Keys tracked at most; past this, finished windows are swept.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Client(IpAddr),
}

#[derive(Debug)]
struct Count {
    failures: u32,
    since: Instant,
}

/// What to do with an attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Refuse { retry_after: Duration },
}

#[derive(Debug, Default)]
pub struct FailureLimiter {
    counts: Mutex<HashMap<Key, Count>>,
}

fn keys(user: &str, client: Option<IpAddr>) -> impl Iterator<Item = Key> {
    std::iter::once(Key::User(user.to_owned())).chain(client.map(Key::Client))
}

impl FailureLimiter {
    pub fn check(&self, user: &str, client: Option<IpAddr>) -> Verdict {
        let counts = self.counts.lock().expect("never poisoned");
        let now = Instant::now();
        keys(user, client)
            .filter_map(|key| counts.get(&key))
            .filter(|count| now < count.since + WINDOW && count.failures >= REFUSE_AFTER)
            .map(|count| count.since + WINDOW - now)
            .max()
            .map_or(Verdict::Allow, |retry_after| Verdict::Refuse {
                retry_after,
            })
    }

    /// Records a failure; returns how long to hold the answer back.
    pub fn failed(&self, user: &str, client: Option<IpAddr>) -> Duration {
        let mut counts = self.counts.lock().expect("never poisoned");
        let now = Instant::now();
        if counts.len() >= MAX_KEYS {
            counts.retain(|_, count| now < count.since + WINDOW);
        }
        let mut worst = 0;
        for key in keys(user, client) {
            let count = counts.entry(key).or_insert(Count {
                failures: 0,
                since: now,
            });
            if now >= count.since + WINDOW {
                *count = Count {
                    failures: 0,
                    since: now,
                };
            }
            count.failures += 1;
            worst = worst.max(count.failures);
        }
        DELAY_STEP * worst.saturating_sub(FREE_FAILURES)
    }

    /// A good login clears the user's count (not the address's).
    pub fn succeeded(&self, user: &str) {
        self.counts
            .lock()
            .expect("never poisoned")
            .remove(&Key::User(user.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_slow_down_then_refuse() {
        let limiter = FailureLimiter::default();
        let client = Some(IpAddr::from([127, 0, 0, 1]));
        for _ in 0..FREE_FAILURES {
            assert_eq!(limiter.failed("mallory", client), Duration::ZERO);
        }
        assert_eq!(limiter.failed("mallory", client), DELAY_STEP);
        assert_eq!(limiter.check("mallory", client), Verdict::Allow);
        for _ in 0..REFUSE_AFTER {
            limiter.failed("mallory", client);
        }
        assert!(matches!(
            limiter.check("mallory", client),
            Verdict::Refuse { .. }
        ));
        assert!(
            matches!(
                limiter.check("someone-else", client),
                Verdict::Refuse { .. }
            ),
            "per address too"
        );
        assert_eq!(limiter.check("someone-else", None), Verdict::Allow);
        limiter.succeeded("mallory");
        assert_eq!(limiter.check("mallory", None), Verdict::Allow);
    }
}
