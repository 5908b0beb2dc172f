//! Domain types every Berth service shares: content digests and their
//! hashers, repository names, tags and references, manifest media types,
//! Basic credentials and the OCI error codes with their HTTP status. No framework lives here.

mod basic;
mod digest;
mod error;
mod hasher;
pub mod manifest;
pub mod media_types;
mod name;
mod reference;

pub use basic::parse_basic;
pub use digest::{Algorithm, Digest, DigestError};
pub use error::{ErrorCode, RegistryError};
pub use hasher::{DigestHasher, HasherStateError};
pub use name::{NameError, RepositoryName};
pub use reference::{Reference, Tag, TagError};
