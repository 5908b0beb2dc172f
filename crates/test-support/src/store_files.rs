//! What a store on disk holds, file by file, so a test can show that a
//! refused request left nothing behind.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Every file under `root`, relative to it (directories left empty by a
/// removal do not count).
pub fn files_under(root: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut directories = vec![root.to_owned()];
    while let Some(directory) = directories.pop() {
        let entries = std::fs::read_dir(&directory)
            .unwrap_or_else(|error| panic!("reading {}: {error}", directory.display()));
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                directories.push(path);
            } else {
                let relative = path.strip_prefix(root).expect("under the root");
                found.insert(relative.to_owned());
            }
        }
    }
    found
}
