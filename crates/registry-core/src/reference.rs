//! Tags and the manifest reference that is either a tag or a digest.

use std::fmt;
use std::str::FromStr;

use crate::Digest;

/// Why a string is not a valid tag.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "tag {0:?} is invalid: use up to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
)]
pub struct TagError(pub String);

/// A tag: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Tag {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = TagError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = text.as_bytes();
        let word = |b: &u8| b.is_ascii_alphanumeric() || *b == b'_';
        let valid = !bytes.is_empty()
            && bytes.len() <= 128
            && word(&bytes[0])
            && bytes[1..]
                .iter()
                .all(|b| word(b) || *b == b'.' || *b == b'-');
        if valid {
            Ok(Tag(text.to_owned()))
        } else {
            Err(TagError(text.to_owned()))
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What names a manifest in a URL: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl FromStr for Reference {
    type Err = TagError;

    /// A reference with a ':' must be a digest; anything else must be a tag.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.contains(':') {
            return text
                .parse()
                .map(Reference::Digest)
                .map_err(|_| TagError(text.to_owned()));
        }
        text.parse().map(Reference::Tag)
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(tag) => tag.fmt(f),
            Reference::Digest(digest) => digest.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_grammar() {
        for tag in ["latest", "v1.0.0", "_x", "A-b_c.d", &"a".repeat(128)] {
            assert!(tag.parse::<Tag>().is_ok(), "{tag}");
        }
        for tag in ["", ".hidden", "-x", "a/b", "a:b", &"a".repeat(129), "../x"] {
            assert!(tag.parse::<Tag>().is_err(), "{tag}");
        }
    }

    #[test]
    fn references_are_digests_when_they_have_a_colon() {
        let digest = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(digest.parse(), Ok(Reference::Digest(_))));
        assert!(matches!("latest".parse(), Ok(Reference::Tag(_))));
        assert!("sha256:short".parse::<Reference>().is_err());
    }
}
