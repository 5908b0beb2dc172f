//! Short-lived memory of auth-service's answers. Verified credentials are
//! keyed by an HMAC of user and password under a key drawn at start, so
//! the password is never kept. Everything is forgotten when auth-service
//! reports a new file generation.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use registry_core::RepositoryName;
use sha2::Sha256;

use super::{Action, Principal};

/// How long a verified login and a permission answer are trusted.
const TIME_TO_LIVE: Duration = Duration::from_secs(60);
/// Entries kept at most per map; past this, expired entries are swept and
/// then the map is cleared.
const MAX_ENTRIES: usize = 100_000;

/// An HMAC of a user and password, the key of a verified login.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CredentialKey([u8; 32]);

#[derive(Debug)]
struct Expiring<T> {
    value: T,
    until: Instant,
}

fn insert<K: std::hash::Hash + Eq, T>(map: &mut HashMap<K, Expiring<T>>, key: K, value: T) {
    if map.len() >= MAX_ENTRIES {
        let now = Instant::now();
        map.retain(|_, entry| entry.until > now);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
    }
    map.insert(
        key,
        Expiring {
            value,
            until: Instant::now() + TIME_TO_LIVE,
        },
    );
}

/// (principal, repository) → the actions auth-service granted.
type Grants = HashMap<(String, String), Expiring<Vec<i32>>>;

/// Verified logins and permission answers.
pub struct AuthCache {
    hmac_key: [u8; 32],
    generation: AtomicU64,
    verified: Mutex<HashMap<CredentialKey, Expiring<String>>>,
    grants: Mutex<Grants>,
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCache")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

impl Default for AuthCache {
    fn default() -> Self {
        AuthCache {
            hmac_key: rand::random(),
            generation: AtomicU64::new(0),
            verified: Mutex::default(),
            grants: Mutex::default(),
        }
    }
}

impl AuthCache {
    pub fn credential_key(&self, user: &str, password: &str) -> CredentialKey {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.hmac_key).expect("HMAC takes any key length");
        mac.update(user.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        CredentialKey(mac.finalize().into_bytes().into())
    }

    /// Forgets everything when auth-service's files changed.
    pub fn observe_generation(&self, generation: u64) {
        let previous = self.generation.swap(generation, Ordering::AcqRel);
        if previous != generation {
            if previous != 0 {
                tracing::info!(
                    generation,
                    "auth-service reloaded its files; forgetting cached logins"
                );
            }
            self.verified.lock().expect("never poisoned").clear();
            self.grants.lock().expect("never poisoned").clear();
        }
    }

    pub fn verified(&self, key: &CredentialKey) -> Option<String> {
        let map = self.verified.lock().expect("never poisoned");
        map.get(key)
            .filter(|entry| entry.until > Instant::now())
            .map(|entry| entry.value.clone())
    }

    pub fn remember_verified(&self, key: CredentialKey, principal: String) {
        insert(
            &mut self.verified.lock().expect("never poisoned"),
            key,
            principal,
        );
    }

    pub fn grant(
        &self,
        principal: &Principal,
        repository: &RepositoryName,
        action: Action,
    ) -> Option<bool> {
        let key = (principal.proto(), repository.to_string());
        let map = self.grants.lock().expect("never poisoned");
        map.get(&key)
            .filter(|entry| entry.until > Instant::now())
            .map(|entry| entry.value.contains(&action.proto()))
    }

    pub fn remember_grants(
        &self,
        principal: &Principal,
        repository: &RepositoryName,
        actions: &[i32],
    ) {
        let key = (principal.proto(), repository.to_string());
        insert(
            &mut self.grants.lock().expect("never poisoned"),
            key,
            actions.to_vec(),
        );
    }
}
