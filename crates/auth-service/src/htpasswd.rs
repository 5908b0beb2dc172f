//! The htpasswd file: `user:hash` lines with bcrypt (`$2a$`, `$2b$`, `$2y$`)
//! or argon2id (PHC string) hashes. Weaker formats (`$apr1$` MD5, `{SHA}`,
//! crypt, plain text) are refused line by line, never accepted. A bcrypt or
//! argon2id hash that is not whole is refused too, marked damaged: the
//! file was cut off or mangled, and is not used at all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher};
use argon2::{Argon2, Params, ParamsBuilder, PasswordVerifier};

/// A password hash the service accepts.
#[derive(Clone, Debug)]
enum Hash {
    Bcrypt(String),
    Argon2id(String),
}

/// The markers that open the kinds of hash the service accepts.
const BCRYPT_MARKERS: [&str; 3] = ["$2a$", "$2b$", "$2y$"];
const ARGON2ID_MARKER: &str = "$argon2id$";

impl Hash {
    /// Whether `text` opens as a kind of hash the service accepts: one
    /// that still fails to parse is not whole (cut off or mangled).
    fn is_accepted_kind(text: &str) -> bool {
        BCRYPT_MARKERS.iter().any(|marker| text.starts_with(marker))
            || text.starts_with(ARGON2ID_MARKER)
    }

    fn parse(text: &str) -> Result<Hash, &'static str> {
        if BCRYPT_MARKERS.iter().any(|prefix| text.starts_with(prefix)) {
            check_bcrypt(text)?;
            return Ok(Hash::Bcrypt(text.to_owned()));
        }
        if text.starts_with(ARGON2ID_MARKER) {
            check_argon2id(text)?;
            return Ok(Hash::Argon2id(text.to_owned()));
        }
        if text.starts_with("$apr1$") || text.starts_with("$1$") {
            return Err(
                "MD5 ($apr1$) hashes are too weak; rehash with `auth-service hash-password`",
            );
        }
        if text.starts_with("{SHA}") {
            return Err(
                "SHA-1 ({SHA}) hashes are too weak; rehash with `auth-service hash-password`",
            );
        }
        if text.starts_with("$argon2") {
            return Err("only the argon2id variant of argon2 is accepted");
        }
        Err(
            "not a bcrypt or argon2id hash (crypt or plain text?); rehash with `auth-service hash-password`",
        )
    }

    /// What makes two hashes cost the same to verify: the algorithm and
    /// its parameters.
    fn cost_class(&self) -> String {
        match self {
            Hash::Bcrypt(hash) => format!("bcrypt {}", hash.get(4..6).unwrap_or("")),
            Hash::Argon2id(hash) => {
                let params = hash.split('$').nth(3).unwrap_or("");
                format!("argon2id {params}")
            }
        }
    }

    /// How long a verification takes here: the quicker of two tries.
    fn measure(&self) -> Duration {
        (0..2)
            .map(|_| {
                let started = Instant::now();
                self.verify("a password nobody has");
                started.elapsed()
            })
            .min()
            .unwrap_or_default()
    }

    fn verify(&self, password: &str) -> bool {
        match self {
            Hash::Bcrypt(hash) => bcrypt::verify(password, hash).unwrap_or(false),
            Hash::Argon2id(hash) => PasswordHash::new(hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false),
        }
    }
}

/// Refuses a bcrypt hash that can never verify: cut off (a whole one is
/// 60 characters) or of a cost bcrypt does not compute.
fn check_bcrypt(text: &str) -> Result<(), &'static str> {
    let parts: bcrypt::HashParts = text.parse().map_err(|_| {
        "cut-off or malformed bcrypt hash (a whole one is 60 characters); rehash with `auth-service hash-password`"
    })?;
    if !(4..=31).contains(&parts.get_cost()) {
        return Err("bcrypt cost is outside 4 to 31; rehash with `auth-service hash-password`");
    }
    Ok(())
}

/// Refuses an argon2id PHC string that can never verify: cut off before
/// its salt or hash, or with parameters, a version or a salt that argon2
/// cannot use.
fn check_argon2id(text: &str) -> Result<(), &'static str> {
    const CUT_OFF: &str = "cut-off argon2id hash (no salt or no hash output); rehash with `auth-service hash-password`";
    let parsed = PasswordHash::new(text).map_err(|_| "malformed argon2id PHC string")?;
    let (Some(salt), Some(output)) = (parsed.salt, parsed.hash) else {
        return Err(CUT_OFF);
    };
    Params::try_from(&parsed).map_err(|_| "argon2id parameters are out of range")?;
    // The version and salt, read as verifying reads them, at the least cost.
    let cheapest = ParamsBuilder::new()
        .m_cost(Params::MIN_M_COST)
        .t_cost(Params::MIN_T_COST)
        .p_cost(Params::MIN_P_COST)
        .output_len(output.len())
        .build()
        .map_err(|_| "argon2id hash output has a length argon2 cannot produce")?;
    Argon2::default()
        .hash_password_customized(b"", Some(parsed.algorithm), parsed.version, cheapest, salt)
        .map_err(
            |_| "argon2id version or salt is unusable; rehash with `auth-service hash-password`",
        )?;
    Ok(())
}

/// User names longer than this never exist: lines with one are refused,
/// and checks of one are answered at once.
pub const MAX_USER_NAME: usize = 256;

/// A line that was not loaded, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedLine {
    pub line: usize,
    pub user: String,
    pub reason: &'static str,
    /// A bcrypt or argon2id hash that is not whole: the file was cut off
    /// or mangled, rather than holding a kind of hash the service refuses.
    pub damaged: bool,
}

/// The users of one htpasswd file.
#[derive(Debug)]
pub struct Users {
    hashes: HashMap<String, Hash>,
    /// Verified against when the user is unknown: a hash of the file's
    /// slowest kind.
    decoy: Hash,
    /// The kind of the decoy.
    slowest_kind: String,
    /// How long every answer is held. With the decoy, unknown users and
    /// known users of every kind take the same time, so timing tells
    /// nobody which names exist.
    pub pace: Pace,
    pub refused: Vec<RefusedLine>,
}

/// How long every answer is held: a quarter above the slowest
/// verification seen lately. Measured at load, then raised by any slower
/// verification of the slowest kind and lowered slowly again, so that the
/// spread of the slowest hash under load stays hidden below it.
#[derive(Debug)]
pub struct Pace {
    slowest_nanos: AtomicU64,
}

impl Pace {
    fn new(measured: Duration) -> Self {
        Pace {
            slowest_nanos: AtomicU64::new(nanos(measured)),
        }
    }

    fn observe(&self, took: Duration) {
        let took = nanos(took);
        let _ = self
            .slowest_nanos
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |slowest| {
                Some(took.max(slowest - slowest / 64))
            });
    }

    /// How long an answer is held, counted from the start of its check.
    pub fn hold(&self) -> Duration {
        Duration::from_nanos(self.slowest_nanos.load(Ordering::Relaxed)) * 5 / 4
    }
}

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// What a check of a user and password found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checked {
    Accepted,
    WrongPassword,
    UnknownUser,
}

impl Users {
    /// Parses a file's text. Bad lines are refused, not fatal.
    pub fn parse(text: &str) -> Users {
        let (hashes, refused) = read_lines(text);
        let (decoy, took) = slowest(hashes.values());
        Users {
            hashes,
            slowest_kind: decoy.cost_class(),
            decoy,
            pace: Pace::new(took),
            refused,
        }
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether `password` is `user`'s, and whether `user` exists. Costs one
    /// hash verification either way. CPU-heavy: call from a blocking
    /// thread, and hold the answer until [`Pace::hold`] has passed.
    pub fn check(&self, user: &str, password: &str) -> Checked {
        let started = Instant::now();
        let (checked, hash) = match self.hashes.get(user) {
            Some(hash) if hash.verify(password) => (Checked::Accepted, hash),
            Some(hash) => (Checked::WrongPassword, hash),
            None => {
                self.decoy.verify(password);
                (Checked::UnknownUser, &self.decoy)
            }
        };
        if hash.cost_class() == self.slowest_kind {
            self.pace.observe(started.elapsed());
        }
        checked
    }

    /// Whether `password` is `user`'s.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        self.check(user, password) == Checked::Accepted
    }
}

/// Every line of a file's text: a user with a hash that can verify, or a
/// refused line. Blank lines and comments are neither. A user on several
/// lines keeps the last.
fn read_lines(text: &str) -> (HashMap<String, Hash>, Vec<RefusedLine>) {
    let mut hashes = HashMap::new();
    let mut refused = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_number = index + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = trimmed.split_once(':') else {
            refused.push(RefusedLine {
                line: line_number,
                user: String::new(),
                reason: "no ':' between user and hash",
                damaged: false,
            });
            continue;
        };
        if user.len() > MAX_USER_NAME {
            refused.push(RefusedLine {
                line: line_number,
                user: String::new(),
                reason: "the user name is longer than 256 bytes",
                damaged: false,
            });
            continue;
        }
        match Hash::parse(hash.trim()) {
            Ok(hash) => {
                hashes.insert(user.to_owned(), hash);
            }
            Err(reason) => refused.push(RefusedLine {
                line: line_number,
                user: user.to_owned(),
                reason,
                damaged: Hash::is_accepted_kind(hash.trim()),
            }),
        }
    }
    (hashes, refused)
}

/// The hash of the slowest kind among `hashes` (measured, one of each
/// kind) and its verification time; a fresh argon2id hash for an empty
/// file.
fn slowest<'a>(hashes: impl Iterator<Item = &'a Hash>) -> (Hash, Duration) {
    let mut kinds: HashMap<String, &Hash> = HashMap::new();
    for hash in hashes {
        kinds.entry(hash.cost_class()).or_insert(hash);
    }
    let fallback;
    let candidates: Vec<&Hash> = if kinds.is_empty() {
        let secret: String = (0..24).map(|_| rand::random_range('a'..='z')).collect();
        fallback = Hash::Argon2id(crate::hashing::argon2id(&secret));
        vec![&fallback]
    } else {
        kinds.into_values().collect()
    };
    candidates
        .into_iter()
        .map(|hash| (hash.clone(), hash.measure()))
        .max_by_key(|(_, took)| *took)
        .expect("at least one candidate")
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_bcrypt_and_argon2id_and_refuses_the_rest() {
        let bcrypt_hash = bcrypt::hash("s3cret", 4).expect("bcrypt");
        let bcrypt_2y = bcrypt_hash.replacen("$2b$", "$2y$", 1);
        let argon = crate::hashing::argon2id("hunter2");
        let text = format!(
            "# comment\n\nalice:{bcrypt_hash}\ncarol:{bcrypt_2y}\nbob:{argon}\n\
             md5:$apr1$abc$def\nsha:{{SHA}}qUqP5cyxm6YcTAhz05Hph5gvu9M=\nplain:password\nbroken\n"
        );
        let users = Users::parse(&text);
        assert_eq!(users.len(), 3);
        assert!(users.verify("alice", "s3cret"));
        assert!(users.verify("carol", "s3cret"));
        assert!(!users.verify("alice", "wrong"));
        assert!(users.verify("bob", "hunter2"));
        assert!(!users.verify("nobody", "hunter2"));
        let refused: Vec<_> = users
            .refused
            .iter()
            .map(|r| (r.line, r.user.as_str()))
            .collect();
        assert_eq!(refused, [(6, "md5"), (7, "sha"), (8, "plain"), (9, "")]);
    }

    #[test]
    fn hashes_that_can_never_verify_are_refused_saying_why() {
        let bcrypt_hash = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
        let argon = "$argon2id$v=19$m=8,t=1,p=1$c2l4dGVlbiBieXRlcyBvaw$Vy9CxtGLjLYl9q6ndVxSlRKfSk2cmG5rDYBWfVVgJ1o";
        let (argon_without_output, _) = argon.rsplit_once('$').expect("a PHC string");
        let text = [
            format!("whole-bcrypt:{bcrypt_hash}"),
            format!("whole-argon:{argon}"),
            format!("cut-bcrypt:{}", &bcrypt_hash[..40]),
            format!("cut-argon:{argon_without_output}"),
            format!("cost-3:{}", bcrypt_hash.replacen("$05$", "$03$", 1)),
            format!("version-20:{}", argon.replacen("v=19", "v=20", 1)),
        ]
        .join("\n");
        let (hashes, refused) = read_lines(&text);
        let mut users: Vec<&str> = hashes.keys().map(String::as_str).collect();
        users.sort_unstable();
        assert_eq!(users, ["whole-argon", "whole-bcrypt"]);
        let reasons: Vec<(&str, &str)> = refused
            .iter()
            .map(|line| (line.user.as_str(), line.reason))
            .collect();
        assert!(
            reasons[0].1.starts_with("cut-off or malformed bcrypt"),
            "{reasons:?}"
        );
        assert!(reasons[1].1.starts_with("cut-off argon2id"), "{reasons:?}");
        assert!(
            reasons[2].1.starts_with("bcrypt cost is outside"),
            "{reasons:?}"
        );
        assert!(
            reasons[3].1.starts_with("argon2id version or salt"),
            "{reasons:?}"
        );
        assert_eq!(reasons.len(), 4, "{reasons:?}");
    }
}
