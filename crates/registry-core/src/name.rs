//! Repository names, checked against the OCI distribution spec's grammar so
//! that a name can never reach outside its own place in the store.

use std::fmt;
use std::str::FromStr;

/// Names longer than this are refused, as Distribution does.
pub const MAX_NAME_LENGTH: usize = 255;

/// Why a string is not a valid repository name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("repository name is empty")]
    Empty,
    #[error("repository name is longer than {MAX_NAME_LENGTH} characters")]
    TooLong,
    #[error(
        "repository name component {0:?} is invalid: use lowercase letters and digits, \
         separated by '.', '_', '__' or dashes"
    )]
    BadComponent(String),
}

/// A repository name such as `library/alpine` or `team/app/api`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(String);

impl RepositoryName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The path components, outermost first.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, written out by hand.
fn is_valid_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut index = 0;
    loop {
        let start = index;
        while index < bytes.len() && alnum(bytes[index]) {
            index += 1;
        }
        if index == start {
            return false;
        }
        if index == bytes.len() {
            return true;
        }
        let separator_start = index;
        while index < bytes.len() && !alnum(bytes[index]) {
            index += 1;
        }
        let separator = &component[separator_start..index];
        let valid_separator = matches!(separator, "." | "_" | "__")
            || (!separator.is_empty() && separator.bytes().all(|b| b == b'-'));
        if !valid_separator {
            return false;
        }
    }
}

impl FromStr for RepositoryName {
    type Err = NameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.is_empty() {
            return Err(NameError::Empty);
        }
        if text.len() > MAX_NAME_LENGTH {
            return Err(NameError::TooLong);
        }
        if let Some(bad) = text.split('/').find(|c| !is_valid_component(c)) {
            return Err(NameError::BadComponent(bad.to_owned()));
        }
        Ok(RepositoryName(text.to_owned()))
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_spec_grammar() {
        for name in [
            "alpine",
            "library/alpine",
            "a/b/c/d/e",
            "my-app",
            "my--app",
            "my_app",
            "my__app",
            "v1.2",
            "0",
        ] {
            assert!(name.parse::<RepositoryName>().is_ok(), "{name}");
        }
    }

    #[test]
    fn refuses_everything_else() {
        for name in [
            "", "Alpine", "a//b", "/a", "a/", "..", "a/../b", "a/./b", "-a", "a-", "a___b", "a._b",
            "a b", "a%2fb",
        ] {
            assert!(name.parse::<RepositoryName>().is_err(), "{name}");
        }
        assert_eq!(
            "a".repeat(256).parse::<RepositoryName>(),
            Err(NameError::TooLong)
        );
    }
}
