//! Target `basic-credentials`: an `Authorization` header value read as
//! Basic credentials. What is read encodes back to a header that reads the
//! same, and a user name never holds the ':' that ends it.

use base64::Engine;
use registry_core::parse_basic;
use test_support::fuzz::{self, Unstructured, arbitrary};

#[test]
fn basic_credentials() {
    fuzz::fuzz("basic-credentials", generate, check);
}

fn check(header: &[u8]) {
    let Some((user, password)) = parse_basic(header) else {
        return;
    };
    assert!(
        !user.contains(':'),
        "user {user:?} holds the ':' that ends it"
    );
    let again = encode(&user, &password);
    assert_eq!(
        parse_basic(again.as_bytes()),
        Some((user, password)),
        "credentials read from {:?} do not survive encoding as {again:?}",
        header.escape_ascii().to_string()
    );
}

fn encode(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

fn generate(unstructured: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    if unstructured.ratio(1, 4)? {
        return unstructured.arbitrary::<Vec<u8>>();
    }
    let scheme = *unstructured.choose(&["Basic", "basic", "BASIC", "Bearer", "Basic\t", "Basi"])?;
    let padding = *unstructured.choose(&["", " ", "  ", "\t"])?;
    let secret: Vec<u8> = match unstructured.int_in_range(0..=2)? {
        0 => format!(
            "{}:{}",
            unstructured.arbitrary::<String>()?,
            unstructured.arbitrary::<String>()?
        )
        .into_bytes(),
        1 => unstructured.arbitrary::<String>()?.into_bytes(),
        _ => unstructured.arbitrary::<Vec<u8>>()?,
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(secret);
    let encoded = if unstructured.ratio(1, 6)? {
        encoded.trim_end_matches('=').to_owned()
    } else {
        encoded
    };
    Ok(format!("{padding}{scheme} {encoded}{padding}").into_bytes())
}
