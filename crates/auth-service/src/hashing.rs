//! Making new password hashes: argon2id by default, bcrypt for files shared
//! with Distribution or `htpasswd -B`.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, SaltString};

/// bcrypt cost of new hashes (Distribution and `htpasswd -B` default to less).
pub const BCRYPT_COST: u32 = 12;

/// An argon2id PHC string with the library's default parameters.
pub fn argon2id(password: &str) -> String {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).expect("16 bytes is a valid salt length");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail")
        .to_string()
}

/// A `$2b$` bcrypt hash.
pub fn bcrypt(password: &str) -> Result<String, bcrypt::BcryptError> {
    bcrypt::hash(password, BCRYPT_COST)
}
