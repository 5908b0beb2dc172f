//! Failed logins are counted per (user, client address) and per client
//! address over all users, over a window. Past a few, each further failure
//! is answered slowly; past more, that client's attempts are refused (429)
//! until the window ends. The counts a client builds only ever stop that
//! client: nobody can lock anybody else out, and a user logs in from their
//! own address whatever is guessed against their name elsewhere.
//!
//! An attempt is reserved before the password is checked, so concurrent
//! guesses cannot outrun the limit. One that gets no answer (auth-service
//! overloaded, the client gone) tested nothing, so it does not count
//! against the user; it counts against the address, so flooding does not
//! pay. One that never reached auth-service (stopped, restarting) cost it
//! nothing and counts against nobody: clients that keep retrying through
//! an outage are not locked out once it ends. An
//! address may have only a few checks under way at once: a few addresses
//! cannot fill auth-service's queue and starve everybody's logins.
//! IPv6 clients are counted by their /64, which one machine usually holds
//! whole.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The window failures are counted over.
const WINDOW: Duration = Duration::from_secs(60);
/// Extra delay per failure past the free ones.
const DELAY_STEP: Duration = Duration::from_millis(250);
/// The longest an answer is held back.
const MAX_DELAY: Duration = Duration::from_secs(2);
/// Keys tracked at most; past this, finished windows are swept.
const MAX_KEYS: usize = 100_000;
/// Password checks one address may have under way at once.
const CHECKS_PER_ADDRESS: u32 = 8;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// One user from one address: guessing one password.
    Pair(String, Option<IpAddr>),
    /// One address over every user: spraying one password.
    Client(IpAddr),
}

impl Key {
    /// Failures answered at normal speed, and failures (with attempts in
    /// flight) after which attempts are refused.
    fn limits(&self) -> (u32, u32) {
        match self {
            Key::Pair(..) => (3, 10),
            Key::Client(_) => (10, 100),
        }
    }
}

#[derive(Debug)]
struct Count {
    failures: u32,
    in_flight: u32,
    since: Instant,
}

impl Count {
    fn fresh(now: Instant) -> Self {
        Count {
            failures: 0,
            in_flight: 0,
            since: now,
        }
    }
}

#[derive(Debug, Default)]
pub struct FailureLimiter {
    counts: Mutex<HashMap<Key, Count>>,
}

/// A login attempt that holds its place in the counts until it is settled;
/// dropped unsettled (auth-service unreachable, the client gone), it counts
/// as unanswered.
#[derive(Debug)]
pub struct Attempt {
    limiter: Arc<FailureLimiter>,
    keys: Vec<Key>,
    settled: bool,
}

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Succeeded,
    Failed,
    Unanswered,
    /// auth-service was not reached: nothing was tested or spent.
    NotAsked,
}

fn keys(user: &str, client: Option<IpAddr>) -> Vec<Key> {
    let client = client.map(service_runtime::client_address::counted);
    let pair = Key::Pair(user.to_owned(), client);
    std::iter::once(pair)
        .chain(client.map(Key::Client))
        .collect()
}

impl FailureLimiter {
    /// How long `client` must wait before trying `user` again, if it is
    /// refused now.
    pub fn refused(&self, user: &str, client: Option<IpAddr>) -> Option<Duration> {
        let counts = self.counts.lock().expect("never poisoned");
        refusal(&counts, &keys(user, client), Instant::now())
    }

    /// Reserves an attempt, or says how long to wait.
    pub fn begin(
        self: &Arc<Self>,
        user: &str,
        client: Option<IpAddr>,
    ) -> Result<Attempt, Duration> {
        let keys = keys(user, client);
        let mut counts = self.counts.lock().expect("never poisoned");
        let now = Instant::now();
        if counts.len() >= MAX_KEYS {
            counts.retain(|_, count| count.in_flight > 0 || now < count.since + WINDOW);
        }
        if let Some(retry_after) = refusal(&counts, &keys, now) {
            return Err(retry_after);
        }
        let busy = keys.iter().any(|key| {
            matches!(key, Key::Client(_))
                && counts
                    .get(key)
                    .is_some_and(|count| count.in_flight >= CHECKS_PER_ADDRESS)
        });
        if busy {
            return Err(Duration::from_secs(1));
        }
        for key in &keys {
            let count = counts
                .entry(key.clone())
                .or_insert_with(|| Count::fresh(now));
            if now >= count.since + WINDOW {
                *count = Count {
                    in_flight: count.in_flight,
                    ..Count::fresh(now)
                };
            }
            count.in_flight += 1;
        }
        Ok(Attempt {
            limiter: self.clone(),
            keys,
            settled: false,
        })
    }
}

/// The longest wait any of `keys` imposes now, if one is at its limit.
fn refusal(counts: &HashMap<Key, Count>, keys: &[Key], now: Instant) -> Option<Duration> {
    keys.iter()
        .filter_map(|key| Some((key, counts.get(key)?)))
        .filter(|(key, count)| {
            let failures = if now < count.since + WINDOW {
                count.failures
            } else {
                0
            };
            failures + count.in_flight >= key.limits().1
        })
        .map(|(_, count)| (count.since + WINDOW).saturating_duration_since(now))
        .max()
        .map(|wait| wait.max(Duration::from_secs(1)))
}

impl Attempt {
    /// The password was wrong: returns how long to hold the answer back.
    pub fn failed(mut self) -> Duration {
        self.settle(Outcome::Failed)
    }

    /// The login succeeded: the pair's failures are forgotten (not the
    /// address's).
    pub fn succeeded(mut self) {
        self.settle(Outcome::Succeeded);
    }

    /// auth-service could not be reached: the attempt counts against
    /// nobody.
    pub fn not_asked(mut self) {
        self.settle(Outcome::NotAsked);
    }

    fn settle(&mut self, outcome: Outcome) -> Duration {
        self.settled = true;
        let mut counts = self.limiter.counts.lock().expect("never poisoned");
        let mut delay = Duration::ZERO;
        for key in &self.keys {
            let Some(count) = counts.get_mut(key) else {
                continue;
            };
            count.in_flight = count.in_flight.saturating_sub(1);
            match (outcome, key) {
                (Outcome::Failed, _) | (Outcome::Unanswered, Key::Client(_)) => {
                    count.failures += 1;
                    let free = key.limits().0;
                    let step = DELAY_STEP * count.failures.saturating_sub(free);
                    delay = delay.max(step.min(MAX_DELAY));
                }
                (Outcome::Succeeded, Key::Pair(..)) => count.failures = 0,
                (Outcome::Unanswered, Key::Pair(..))
                | (Outcome::Succeeded, Key::Client(_))
                | (Outcome::NotAsked, _) => {}
            }
        }
        delay
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.settled {
            self.settle(Outcome::Unanswered);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([192, 0, 2, last]))
    }

    fn limiter() -> Arc<FailureLimiter> {
        Arc::new(FailureLimiter::default())
    }

    #[test]
    fn a_guessing_client_is_slowed_then_refused_and_nobody_else() {
        let limiter = limiter();
        let (attacker, victim) = (address(1), address(2));
        let mut delays = Vec::new();
        for _ in 0..10 {
            delays.push(limiter.begin("alice", attacker).expect("allowed").failed());
        }
        assert_eq!(delays[2], Duration::ZERO);
        assert_eq!(delays[3], DELAY_STEP);
        assert!(
            limiter.begin("alice", attacker).is_err(),
            "the guesser is refused"
        );
        assert!(limiter.refused("alice", attacker).is_some());
        assert!(
            limiter.refused("alice", victim).is_none(),
            "alice from her own address"
        );
        limiter.begin("alice", victim).expect("allowed").succeeded();
        assert!(
            limiter.begin("bob", attacker).is_ok(),
            "other users from the attacker's address"
        );
    }

    #[test]
    fn concurrent_attempts_are_reserved_before_they_are_checked() {
        let limiter = limiter();
        let attempts: Vec<_> = (0..60)
            .filter_map(|_| limiter.begin("alice", address(1)).ok())
            .collect();
        assert_eq!(
            attempts.len(),
            CHECKS_PER_ADDRESS as usize,
            "only a few checks at once per address"
        );
        for attempt in attempts {
            attempt.failed();
        }
        let more: Vec<_> = (0..60)
            .filter_map(|_| limiter.begin("alice", address(1)).ok())
            .collect();
        assert_eq!(more.len(), 2, "then only what is left of the limit");
    }

    #[test]
    fn unanswered_attempts_count_against_the_address_not_the_user() {
        let limiter = limiter();
        for _ in 0..20 {
            drop(limiter.begin("alice", address(1)).expect("allowed"));
        }
        assert!(
            limiter.refused("alice", address(1)).is_none(),
            "alice is not locked out"
        );
        for _ in 0..80 {
            drop(limiter.begin("alice", address(1)).expect("allowed"));
        }
        assert!(
            limiter.refused("bob", address(1)).is_some(),
            "a flooding address is"
        );
    }

    #[test]
    fn attempts_that_never_reached_auth_service_count_against_nobody() {
        let limiter = limiter();
        for _ in 0..500 {
            limiter
                .begin("alice", address(1))
                .expect("never refused for an outage")
                .not_asked();
        }
        assert!(limiter.refused("alice", address(1)).is_none());
        assert_eq!(
            limiter
                .begin("alice", address(1))
                .expect("allowed")
                .failed(),
            Duration::ZERO,
            "and they are not failures"
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let limiter = limiter();
        for host in 0..10u16 {
            let client = Some(IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, host]));
            let _ = limiter.begin("alice", client).map(Attempt::failed);
        }
        let neighbour = Some(IpAddr::from([0x2001, 0xdb8, 0, 1, 9, 9, 9, 9]));
        assert!(limiter.refused("alice", neighbour).is_some());
        let elsewhere = Some(IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]));
        assert!(limiter.refused("alice", elsewhere).is_none());
    }

    #[test]
    fn spraying_one_password_over_many_users_is_capped_per_address() {
        let limiter = limiter();
        for user in 0..100 {
            let _ = limiter
                .begin(&format!("user{user}"), address(1))
                .map(Attempt::failed);
        }
        assert!(limiter.begin("someone", address(1)).is_err());
        assert!(limiter.begin("someone", address(2)).is_ok());
    }

    #[test]
    fn success_clears_the_pair() {
        let limiter = limiter();
        for _ in 0..5 {
            let _ = limiter.begin("alice", address(1)).map(Attempt::failed);
        }
        limiter
            .begin("alice", address(1))
            .expect("allowed")
            .succeeded();
        assert_eq!(
            limiter
                .begin("alice", address(1))
                .expect("allowed")
                .failed(),
            Duration::ZERO
        );
    }
}
