//! Secrets given either inline or as a file (`--x` or `--x-file`), the file
//! winning, as container secrets are mounted.

use std::path::Path;

/// The secret from `file` (trimmed) when given, else `inline`.
pub fn inline_or_file(
    inline: Option<&str>,
    file: Option<&Path>,
) -> std::io::Result<Option<String>> {
    match file {
        Some(path) => std::fs::read_to_string(path).map(|secret| Some(secret.trim().to_owned())),
        None => Ok(inline.map(str::to_owned)),
    }
}
