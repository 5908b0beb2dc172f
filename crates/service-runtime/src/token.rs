//! Shared tokens between Berth's services: the admin port of registry-api
//! (gc-worker, ui-backend, Prometheus) and auth-service (registry-api).
//! Given in a file (a mounted container secret) or the environment; a
//! flag works too but shows in `ps`. Presented as
//! `authorization: Bearer <token>` and compared in constant time, the
//! length included (both sides are hashed first).

use std::path::Path;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::metadata::MetadataValue;
use tonic::{Request, Status};

/// A shared secret; never printed.
#[derive(Clone)]
pub struct SharedToken(Arc<str>);

impl std::fmt::Debug for SharedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedToken(..)")
    }
}

/// Why a token cannot be used; each names the flag or the file.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The I/O error is part of the message and deliberately not a
    /// `source`, so chained reports do not print it twice.
    #[error("{flag} {path}: {error}")]
    Read {
        flag: String,
        path: String,
        error: std::io::Error,
    },
    #[error(
        "{flag} {path} is empty: put a random token in it, e.g. `openssl rand -hex 32 > {path}`"
    )]
    EmptyFile { flag: String, path: String },
    #[error("{flag} is empty: give a random token, or leave it unset")]
    Empty { flag: String },
}

impl SharedToken {
    /// The token from `file` when given, else `inline`; `flag` names the
    /// inline flag (`--admin-token`) and, with `-file`, the file flag.
    pub fn load(
        inline: Option<&str>,
        file: Option<&Path>,
        flag: &str,
    ) -> Result<Option<SharedToken>, TokenError> {
        if let Some(path) = file {
            let (flag, shown) = (format!("{flag}-file"), path.display().to_string());
            let text = std::fs::read_to_string(path).map_err(|error| TokenError::Read {
                flag: flag.clone(),
                path: shown.clone(),
                error,
            })?;
            let token = text.trim();
            if token.is_empty() {
                return Err(TokenError::EmptyFile { flag, path: shown });
            }
            return Ok(Some(SharedToken(token.into())));
        }
        match inline.map(str::trim) {
            Some("") => Err(TokenError::Empty {
                flag: flag.to_owned(),
            }),
            Some(token) => Ok(Some(SharedToken(token.into()))),
            None => Ok(None),
        }
    }

    /// A fresh random token: 32 random bytes in hex.
    pub fn generate() -> SharedToken {
        let bytes: [u8; 32] = rand::random();
        let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        SharedToken(hex.into())
    }

    /// The token itself, to write it where its users read it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The `authorization` value that presents this token.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Adds this token to an outgoing gRPC call.
    pub fn attach<T>(&self, request: &mut Request<T>) {
        if let Ok(value) = MetadataValue::try_from(self.bearer()) {
            request.metadata_mut().insert("authorization", value);
        }
    }

    /// Whether `authorization` (a header's value) presents this token.
    pub fn accepts(&self, authorization: Option<&[u8]>) -> bool {
        let expected = Sha256::digest(self.bearer().as_bytes());
        let presented = Sha256::digest(authorization.unwrap_or_default());
        expected.ct_eq(&presented).into()
    }
}

/// A gRPC interceptor that refuses calls without `token` (every call
/// passes when there is none).
pub fn require(
    token: Option<SharedToken>,
) -> impl Fn(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |request: Request<()>| {
        let Some(token) = &token else {
            return Ok(request);
        };
        let presented = request
            .metadata()
            .get("authorization")
            .map(|value| value.as_bytes());
        if token.accepts(presented) {
            Ok(request)
        } else {
            Err(Status::unauthenticated(
                "the service token is missing or wrong",
            ))
        }
    }
}

/// Warns when the token `id` (a clap argument id) came from the command
/// line, where every user of the machine can read it in `ps`.
pub fn warn_if_on_command_line(matches: &clap::ArgMatches, id: &str, flag: &str) {
    if matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine) {
        tracing::warn!(
            flag,
            "a token given on the command line shows in `ps`; use {flag}-file or the environment"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_compared_whole() {
        let token = SharedToken::load(Some("s3cret"), None, "--admin-token")
            .expect("valid")
            .expect("given");
        assert!(token.accepts(Some(b"Bearer s3cret")));
        for wrong in [&b"Bearer s3cre"[..], b"Bearer s3cretX", b"s3cret", b""] {
            assert!(!token.accepts(Some(wrong)), "{wrong:?}");
        }
        assert!(!token.accepts(None));
    }

    #[test]
    fn empty_tokens_are_refused_naming_the_flag() {
        let file = tempfile::NamedTempFile::new().expect("temporary file");
        std::fs::write(file.path(), "  \n").expect("write");
        let error =
            SharedToken::load(None, Some(file.path()), "--admin-token").expect_err("an empty file");
        assert!(error.to_string().contains("--admin-token-file"), "{error}");
        assert!(SharedToken::load(Some(""), None, "--admin-token").is_err());
        assert!(
            SharedToken::load(None, None, "--admin-token")
                .expect("none")
                .is_none()
        );
    }
}
