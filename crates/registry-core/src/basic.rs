//! HTTP Basic credentials (`Authorization: Basic base64(user:password)`),
//! as container clients and the web UI send them.

use base64::Engine;

/// `Basic base64(user:password)` → (user, password); `None` for anything
/// else.
pub fn parse_basic(value: &[u8]) -> Option<(String, String)> {
    let text = std::str::from_utf8(value).ok()?;
    let (scheme, encoded) = text.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::parse_basic;

    #[test]
    fn basic_credentials_are_parsed_strictly() {
        assert_eq!(
            parse_basic(b"Basic YWxpY2U6czNjcjp4"),
            Some(("alice".to_owned(), "s3cr:x".to_owned()))
        );
        assert_eq!(parse_basic(b"Bearer abc"), None);
        assert_eq!(parse_basic(b"Basic !!!"), None);
        assert_eq!(parse_basic(b"Basic YWxpY2U="), None);
    }
}
