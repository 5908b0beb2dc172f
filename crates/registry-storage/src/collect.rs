//! What only the collector uses: whole-store listings, the trash that
//! takes garbage out inside the read-only window, and the incomplete S3
//! multipart uploads it aborts.

pub(crate) mod multipart;
pub(crate) mod scan;
pub(crate) mod trash;
