//! The htpasswd file: `user:hash` lines with bcrypt (`$2a$`, `$2b$`, `$2y$`)
//! or argon2id (PHC string) hashes. Weaker formats (`$apr1$` MD5, `{SHA}`,
//! crypt, plain text) are refused line by line, never accepted.

use std::collections::HashMap;

use argon2::password_hash::PasswordHash;
use argon2::{Argon2, PasswordVerifier};

/// A password hash the service accepts.
#[derive(Clone, Debug)]
enum Hash {
    Bcrypt(String),
    Argon2id(String),
}

impl Hash {
    fn parse(text: &str) -> Result<Hash, &'static str> {
        if ["$2a$", "$2b$", "$2y$"]
            .iter()
            .any(|prefix| text.starts_with(prefix))
        {
            return Ok(Hash::Bcrypt(text.to_owned()));
        }
        if text.starts_with("$argon2id$") {
            PasswordHash::new(text).map_err(|_| "malformed argon2id PHC string")?;
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

/// A line that was not loaded, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedLine {
    pub line: usize,
    pub user: String,
    pub reason: &'static str,
}

/// The users of one htpasswd file.
#[derive(Clone, Debug)]
pub struct Users {
    hashes: HashMap<String, Hash>,
    /// Verified against when the user is unknown, so an unknown user takes
    /// as long as a known one with a wrong password.
    decoy: Hash,
    pub refused: Vec<RefusedLine>,
}

impl Users {
    /// Parses a file's text. Bad lines are refused, not fatal.
    pub fn parse(text: &str) -> Users {
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
                });
                continue;
            };
            match Hash::parse(hash.trim()) {
                Ok(hash) => {
                    hashes.insert(user.to_owned(), hash);
                }
                Err(reason) => refused.push(RefusedLine {
                    line: line_number,
                    user: user.to_owned(),
                    reason,
                }),
            }
        }
        let decoy = decoy_for(hashes.values());
        Users {
            hashes,
            decoy,
            refused,
        }
    }

    pub fn len(&self) -> usize {
        self.hashes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether `password` is `user`'s. Costs one hash verification whether
    /// or not the user exists. CPU-heavy: call from a blocking thread.
    pub fn verify(&self, user: &str, password: &str) -> bool {
        match self.hashes.get(user) {
            Some(hash) => hash.verify(password),
            None => {
                self.decoy.verify(password);
                false
            }
        }
    }
}

/// A hash of a random password with the same algorithm and cost as the
/// file's first entry (argon2id with default parameters for an empty file).
fn decoy_for<'a>(mut hashes: impl Iterator<Item = &'a Hash>) -> Hash {
    let secret: String = (0..24).map(|_| rand::random_range('a'..='z')).collect();
    match hashes.next() {
        Some(Hash::Bcrypt(existing)) => {
            let cost = existing
                .get(4..6)
                .and_then(|cost| cost.parse().ok())
                .unwrap_or(bcrypt::DEFAULT_COST);
            bcrypt::hash(&secret, cost)
                .map(Hash::Bcrypt)
                .unwrap_or_else(|_| argon2_decoy(&secret))
        }
        _ => argon2_decoy(&secret),
    }
}

fn argon2_decoy(secret: &str) -> Hash {
    Hash::Argon2id(crate::hashing::argon2id(secret))
}

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
}
