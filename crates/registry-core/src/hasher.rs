//! Incremental digest computation whose state can be saved and restored, so
//! a chunked upload can be hashed across requests and across replicas
//! without reading earlier chunks again.

use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest as _, Sha256, Sha512};

use crate::{Algorithm, Digest};

/// A running digest over a byte stream.
#[derive(Clone, Debug)]
pub enum DigestHasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

/// A saved hasher state that cannot be restored.
#[derive(Debug, thiserror::Error)]
#[error("saved {0} hash state is corrupt")]
pub struct HasherStateError(Algorithm);

impl DigestHasher {
    pub fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Sha256 => DigestHasher::Sha256(Sha256::new()),
            Algorithm::Sha512 => DigestHasher::Sha512(Sha512::new()),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            DigestHasher::Sha256(_) => Algorithm::Sha256,
            DigestHasher::Sha512(_) => Algorithm::Sha512,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            DigestHasher::Sha256(hasher) => hasher.update(bytes),
            DigestHasher::Sha512(hasher) => hasher.update(bytes),
        }
    }

    /// The digest of everything fed so far.
    pub fn finish(self) -> Digest {
        let (algorithm, bytes) = match self {
            DigestHasher::Sha256(hasher) => (Algorithm::Sha256, hasher.finalize().to_vec()),
            DigestHasher::Sha512(hasher) => (Algorithm::Sha512, hasher.finalize().to_vec()),
        };
        let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        Digest::new(algorithm, hex).expect("a hash output is always valid hex of the right length")
    }

    /// The opaque serialized state, to be restored with [`DigestHasher::restore`].
    pub fn save(&self) -> Vec<u8> {
        match self {
            DigestHasher::Sha256(hasher) => hasher.serialize().to_vec(),
            DigestHasher::Sha512(hasher) => hasher.serialize().to_vec(),
        }
    }

    /// Restores a state written by [`DigestHasher::save`].
    pub fn restore(algorithm: Algorithm, saved: &[u8]) -> Result<Self, HasherStateError> {
        let corrupt = || HasherStateError(algorithm);
        match algorithm {
            Algorithm::Sha256 => {
                let state = saved.try_into().map_err(|_| corrupt())?;
                Sha256::deserialize(state)
                    .map(DigestHasher::Sha256)
                    .map_err(|_| corrupt())
            }
            Algorithm::Sha512 => {
                let state = saved.try_into().map_err(|_| corrupt())?;
                Sha512::deserialize(state)
                    .map(DigestHasher::Sha512)
                    .map_err(|_| corrupt())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_state_continues_where_it_stopped() {
        for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
            let mut whole = DigestHasher::new(algorithm);
            whole.update(b"hello, world");

            let mut first = DigestHasher::new(algorithm);
            first.update(b"hello, ");
            let mut resumed =
                DigestHasher::restore(algorithm, &first.save()).expect("state restores");
            resumed.update(b"world");

            assert_eq!(resumed.finish(), whole.finish());
        }
    }

    #[test]
    fn corrupt_state_is_refused() {
        assert!(DigestHasher::restore(Algorithm::Sha256, b"garbage").is_err());
    }
}
