//! The identifier of an upload session: a random UUID, the name of its
//! directory under `_uploads/`.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// The identifier of an upload session: a random UUID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UploadId(Uuid);

impl UploadId {
    pub(super) fn random() -> Self {
        UploadId(Uuid::new_v4())
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for UploadId {
    type Err = uuid::Error;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(text).map(UploadId)
    }
}
