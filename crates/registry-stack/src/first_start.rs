//! The first start of the embedded stack: an htpasswd file with a user
//! `admin` and a random password, printed once and never again; and the
//! shared tokens its services present to each other (the admin port,
//! auth-service), each in a file only the owner can read.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use rand::Rng;
use service_runtime::token::SharedToken;

const PASSWORD_LENGTH: usize = 24;

/// Creates `htpasswd` with an `admin` user if it does not exist yet, and
/// says where to log in with it.
pub fn ensure_admin(htpasswd: &Path, ui: std::net::SocketAddr) -> anyhow::Result<()> {
    if htpasswd.exists() {
        return Ok(());
    }
    let password: String = rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(PASSWORD_LENGTH)
        .map(char::from)
        .collect();
    let line = format!("admin:{}\n", auth_service::hashing::argon2id(&password));
    create_private(htpasswd, &line)?;
    // Printed on standard output once, on purpose; never logged.
    println!(
        "\nFirst start: created {} with user `admin`, password `{password}`.\n\
         It is not shown again. Log in to the web UI at http://{ui} with it.\n\
         Add users with `auth-service hash-password USER >> {}`.\n",
        htpasswd.display(),
        htpasswd.display()
    );
    Ok(())
}

/// The token in `path`, created with a random one if the file is missing.
pub fn ensure_token(path: &Path) -> anyhow::Result<()> {
    if !path.exists() {
        let token = SharedToken::generate();
        create_private(path, &format!("{}\n", token.expose()))?;
    }
    Ok(())
}

/// Writes a new file that only its owner can read.
fn create_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}
