//! Target `htpasswd`: a file's text read line by line. Every line that is
//! not blank or a comment is a user or refused (what start-up and reload
//! rely on); a whole hash on a line yields a user who logs in with its
//! password; every hash accepted is one the verifier can check, so a
//! cut-off hash is refused, not loaded as a user nobody can log in as.
//!
//! Inside the crate, since the public `Users::parse` also measures the
//! file's hashes: up to a second per call in a debug build.

use std::collections::BTreeSet;

use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordVerifier, Version};
use test_support::fuzz::{self, Unstructured, arbitrary};

use super::{Hash, MAX_USER_NAME, read_lines};

const PASSWORD: &str = "correct horse";

/// Whole hashes of [`PASSWORD`] at the lowest costs, so that checking
/// them costs little.
struct KnownHashes {
    bcrypt: String,
    argon2id: String,
}

impl KnownHashes {
    fn new() -> Self {
        let cheapest = Params::new(Params::MIN_M_COST, 1, 1, None).expect("argon2 parameters");
        let salt = SaltString::encode_b64(b"sixteen bytes ok").expect("a salt");
        let argon2id = Argon2::new(Algorithm::Argon2id, Version::V0x13, cheapest)
            .hash_password(PASSWORD.as_bytes(), &salt)
            .expect("argon2id hashes")
            .to_string();
        KnownHashes {
            bcrypt: bcrypt::hash(PASSWORD, 4).expect("bcrypt hashes"),
            argon2id,
        }
    }
}

#[test]
fn htpasswd() {
    let known = KnownHashes::new();
    fuzz::fuzz(
        "htpasswd",
        |unstructured| generate(unstructured, &known),
        |input| check(&known, input),
    );
}

fn check(known: &KnownHashes, input: &[u8]) {
    // Files that are not UTF-8 are refused before their lines are read.
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let (hashes, refused) = read_lines(text);
    let meaningful: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(index, line)| (index + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let refused_lines: BTreeSet<usize> = refused.iter().map(|line| line.line).collect();
    assert_eq!(refused_lines.len(), refused.len(), "a line refused twice");
    for number in &refused_lines {
        assert!(
            meaningful.iter().any(|(line, _)| line == number),
            "line {number} refused, but it is blank or a comment"
        );
    }
    for (number, line) in meaningful
        .iter()
        .filter(|(number, _)| !refused_lines.contains(number))
    {
        let (user, _) = line
            .split_once(':')
            .unwrap_or_else(|| panic!("line {number} {line:?} has no ':' yet was not refused"));
        assert!(
            hashes.contains_key(user),
            "line {number} {line:?} is neither a user nor refused"
        );
    }
    for (user, hash) in &hashes {
        assert!(
            !user.contains(':') && user.len() <= MAX_USER_NAME,
            "user {user:?}"
        );
        check_hash(known, user, hash);
    }
}

/// A known hash verifies its password; any other cheap one can at least
/// be checked (bcrypt reads it, argon2 says "wrong password", not "bad
/// hash").
fn check_hash(known: &KnownHashes, user: &str, hash: &Hash) {
    hash.cost_class();
    match hash {
        Hash::Bcrypt(text) if *text == known.bcrypt => {
            assert!(hash.verify(PASSWORD), "{user} cannot log in with {text}");
        }
        Hash::Argon2id(text) if *text == known.argon2id => {
            assert!(hash.verify(PASSWORD), "{user} cannot log in with {text}");
        }
        Hash::Bcrypt(text) => {
            let cost: u32 = text
                .get(4..6)
                .and_then(|cost| cost.parse().ok())
                .unwrap_or(31);
            if cost <= 5 {
                let verified = bcrypt::verify("a password nobody has", text);
                assert!(
                    verified.is_ok(),
                    "{user}: bcrypt cannot check {text}: {verified:?}"
                );
            }
        }
        Hash::Argon2id(text) => {
            let parsed = PasswordHash::new(text).expect("an accepted PHC string parses");
            let params = Params::try_from(&parsed).expect("accepted parameters");
            if params.m_cost() <= 64 && params.t_cost() <= 2 && params.p_cost() <= 2 {
                let verified = Argon2::default().verify_password(b"a password nobody has", &parsed);
                assert_eq!(
                    verified,
                    Err(argon2::password_hash::Error::Password),
                    "{user}: argon2 cannot check {text}"
                );
            }
        }
    }
}

/// Hash-like strings that are not whole hashes Berth takes.
const OTHER_HASHES: &[&str] = &[
    "$apr1$abc$def",
    "{SHA}qUqP5cyxm6YcTAhz05Hph5gvu9M=",
    "$1$salt$hash",
    "$argon2i$v=19$m=8,t=1,p=1$c2l4dGVlbiBieXRlcyBvaw$aGFzaA",
    "$argon2id$v=19$m=19456,t=2,p=1$c2l4dGVlbiBieXRlcyBvaw$Vy9CxtGLjLYl9q6ndVxSlRKfSk2cmG5rDYBWfVVgJ1o",
    "$argon2id$v=19$m=1,t=1,p=1$c2l4dGVlbiBieXRlcyBvaw$Vy9CxtGLjLYl9q6ndVxSlRKfSk2cmG5rDYBWfVVgJ1o",
    "$argon2id$v=20$m=8,t=1,p=1$c2l4dGVlbiBieXRlcyBvaw$Vy9CxtGLjLYl9q6ndVxSlRKfSk2cmG5rDYBWfVVgJ1o",
    "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$Vy9CxtGLjLYl9q6ndVxSlRKfSk2cmG5rDYBWfVVgJ1o",
    "$2y$",
    "$2b$04$",
    "plain text",
    "",
];
const USER_CHARACTERS: &[char] = &[
    'a', 'z', 'A', '0', '.', '-', '_', '@', ' ', ':', '#', '\t', 'é',
];

fn generate(
    unstructured: &mut Unstructured<'_>,
    known: &KnownHashes,
) -> arbitrary::Result<Vec<u8>> {
    if unstructured.ratio(1, 8)? {
        return unstructured.arbitrary::<Vec<u8>>();
    }
    let newline = *unstructured.choose(&["\n", "\r\n"])?;
    let lines = (0..unstructured.int_in_range(0..=6)?)
        .map(|_| line(unstructured, known))
        .collect::<arbitrary::Result<Vec<_>>>()?;
    let bom = if unstructured.ratio(1, 10)? {
        "\u{feff}"
    } else {
        ""
    };
    Ok(format!("{bom}{}", lines.join(newline)).into_bytes())
}

fn line(unstructured: &mut Unstructured<'_>, known: &KnownHashes) -> arbitrary::Result<String> {
    let user = match unstructured.int_in_range(0..=5)? {
        0 => "u".repeat(*unstructured.choose(&[256, 257])?),
        1 => fuzz::string_from(unstructured, USER_CHARACTERS, 12)?,
        _ => (*unstructured.choose(&["alice", "bob", "carol", "#alice", " alice"])?).to_owned(),
    };
    let whole = if unstructured.ratio(1, 2)? {
        &known.bcrypt
    } else {
        &known.argon2id
    };
    let hash = match unstructured.int_in_range(0..=5)? {
        0 | 1 => whole.clone(),
        2 => {
            // Cut off where a half-written file or a bad paste ends.
            let cut = unstructured.int_in_range(0..=whole.len())?;
            whole[..cut].to_owned()
        }
        3 => {
            let at = unstructured.int_in_range(0..=whole.len() - 1)?;
            let replacement = *unstructured.choose(&['0', '3', '9', 'a', '$', '=', ',', 'é'])?;
            let mut changed = whole.clone();
            changed.replace_range(at..=at, &replacement.to_string());
            changed
        }
        4 => (*unstructured.choose(OTHER_HASHES)?).to_owned(),
        _ => unstructured.arbitrary::<String>()?,
    };
    let separator = *unstructured.choose(&[":", ":", " : ", "::", ""])?;
    Ok(format!("{user}{separator}{hash}"))
}
