//! The first start of the embedded stack: an htpasswd file with a user
//! `admin` and a random password, printed once and never again.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use rand::Rng;

const PASSWORD_LENGTH: usize = 24;

/// Creates `htpasswd` with an `admin` user if it does not exist yet.
pub fn ensure_admin(htpasswd: &Path) -> anyhow::Result<()> {
    if htpasswd.exists() {
        return Ok(());
    }
    let password: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(PASSWORD_LENGTH)
        .map(char::from)
        .collect();
    let line = format!("admin:{}\n", auth_service::hashing::argon2id(&password));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(htpasswd)
        .with_context(|| format!("cannot create {}", htpasswd.display()))?;
    file.write_all(line.as_bytes())?;
    // Printed on standard output once, on purpose; never logged.
    println!(
        "\nFirst start: created {} with user `admin`, password `{password}`.\n\
         It is not shown again. Add users with `auth-service hash-password USER >> {}`.\n",
        htpasswd.display(),
        htpasswd.display()
    );
    Ok(())
}
