//! Target `references`: one string read as a repository name, a tag, a
//! manifest reference and a digest. Each parser must agree with the
//! distribution spec's regular expression for it, and what it accepts must
//! print back as the very input.

use std::sync::LazyLock;

use regex::Regex;
use registry_core::{Algorithm, Digest, Reference, RepositoryName, Tag};
use test_support::fuzz::{self, Unstructured, arbitrary};

/// The spec's grammar for repository names (without the length limit).
static NAME_GRAMMAR: LazyLock<Regex> = LazyLock::new(|| {
    grammar(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*")
});
static TAG_GRAMMAR: LazyLock<Regex> =
    LazyLock::new(|| grammar(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"));
/// The digests Berth can verify: the image spec's grammar narrowed to
/// sha256 and sha512 with their exact lengths.
static DIGEST_GRAMMAR: LazyLock<Regex> =
    LazyLock::new(|| grammar(r"sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}"));

fn grammar(expression: &str) -> Regex {
    Regex::new(&format!(r"\A(?:{expression})\z")).expect("a valid regular expression")
}

#[test]
fn references() {
    fuzz::fuzz("references", generate, |input| {
        check(&String::from_utf8_lossy(input));
    });
}

fn check(text: &str) {
    check_name(text);
    check_tag(text);
    check_digest(text);
    check_reference(text);
}

fn check_name(text: &str) {
    let parsed = text.parse::<RepositoryName>();
    let in_grammar = NAME_GRAMMAR.is_match(text) && text.len() <= 255;
    assert_eq!(
        parsed.is_ok(),
        in_grammar,
        "name {text:?}: parsed as {parsed:?}, the spec grammar says {in_grammar}"
    );
    let Ok(name) = parsed else { return };
    assert_eq!(name.to_string(), text);
    assert_eq!(name.as_str(), text);
    let components: Vec<&str> = name.components().collect();
    assert_eq!(components.join("/"), text);
    assert!(
        components
            .iter()
            .all(|component| !component.is_empty() && *component != "." && *component != ".."),
        "name {text:?} has a component that could leave its place in the store"
    );
    assert_eq!(text.parse::<RepositoryName>(), Ok(name));
}

fn check_tag(text: &str) {
    let parsed = text.parse::<Tag>();
    let in_grammar = TAG_GRAMMAR.is_match(text);
    assert_eq!(
        parsed.is_ok(),
        in_grammar,
        "tag {text:?}: parsed as {parsed:?}, the spec grammar says {in_grammar}"
    );
    if let Ok(tag) = parsed {
        assert_eq!(tag.to_string(), text);
        assert_eq!(tag.as_str(), text);
    }
}

fn check_digest(text: &str) {
    let parsed = text.parse::<Digest>();
    let in_grammar = DIGEST_GRAMMAR.is_match(text);
    assert_eq!(
        parsed.is_ok(),
        in_grammar,
        "digest {text:?}: parsed as {parsed:?}, the grammar says {in_grammar}"
    );
    // Building from parts agrees with parsing the whole.
    for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
        if let Some(hex) = text.strip_prefix(&format!("{algorithm}:")) {
            assert_eq!(
                Digest::new(algorithm, hex).ok().as_ref(),
                parsed.as_ref().ok()
            );
        }
    }
    let Ok(digest) = parsed else { return };
    assert_eq!(digest.to_string(), text);
    assert_eq!(digest.hex().len(), digest.algorithm().hex_len());
    let json = serde_json::to_string(&digest).expect("a digest serializes");
    assert_eq!(json, format!("\"{text}\""));
    let back: Digest = serde_json::from_str(&json).expect("a digest deserializes");
    assert_eq!(back, digest);
}

fn check_reference(text: &str) {
    let parsed = text.parse::<Reference>();
    match &parsed {
        Ok(Reference::Digest(digest)) => assert_eq!(Ok(digest), text.parse::<Digest>().as_ref()),
        Ok(Reference::Tag(tag)) => {
            assert!(!text.contains(':'), "{text:?} has a ':' yet is a tag");
            assert_eq!(Ok(tag), text.parse::<Tag>().as_ref());
        }
        Err(_) => assert!(
            text.parse::<Digest>().is_err() && text.parse::<Tag>().is_err(),
            "{text:?} is a tag or a digest, yet not a reference"
        ),
    }
    if let Ok(reference) = parsed {
        assert_eq!(reference.to_string(), text);
    }
}

/// Characters at the edges of the grammars: separators, the other
/// reference syntaxes, upper case, percent escapes, Unicode.
const EDGE_CHARACTERS: &[char] = &[
    'a', 'z', '0', '9', 'f', 'A', 'Z', '.', '_', '-', '/', ':', '@', '%', ' ', '+', 'é',
    '\u{feff}', '\n', '\0',
];
const SEPARATORS: &[&str] = &[".", "_", "__", "-", "--", "---"];
const ALGORITHMS: &[&str] = &[
    "sha256",
    "sha512",
    "SHA256",
    "sha384",
    "md5",
    "",
    "sha256+b64",
];
const HEX_LENGTHS: &[usize] = &[0, 1, 63, 64, 65, 127, 128, 129];

fn generate(unstructured: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    let text = match unstructured.int_in_range(0..=4)? {
        0 => grammatical_name(unstructured)?,
        1 => tag_like(unstructured)?,
        2 => digest_like(unstructured)?,
        3 => fuzz::string_from(unstructured, EDGE_CHARACTERS, 300)?,
        _ => unstructured.arbitrary::<String>()?,
    };
    let text = if unstructured.ratio(1, 3)? {
        mutate(unstructured, text)?
    } else {
        text
    };
    Ok(text.into_bytes())
}

/// A name in the grammar, of any length up to a little past the limit.
fn grammatical_name(unstructured: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let components = unstructured.int_in_range(1..=6)?;
    let mut name = String::new();
    for index in 0..components {
        if index > 0 {
            name.push('/');
        }
        let runs = unstructured.int_in_range(1..=3)?;
        for run in 0..runs {
            if run > 0 {
                name.push_str(unstructured.choose(SEPARATORS)?);
            }
            let length = unstructured.int_in_range(1..=60)?;
            name.push_str(&fuzz::string_of_length(
                unstructured,
                &['a', 'k', 'z', '0', '7'],
                length,
            )?);
        }
    }
    Ok(name)
}

fn tag_like(unstructured: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let length = *unstructured.choose(&[0, 1, 127, 128, 129, 16])?;
    fuzz::string_of_length(unstructured, &['a', 'Z', '9', '_', '.', '-'], length)
}

fn digest_like(unstructured: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let algorithm = unstructured.choose(ALGORITHMS)?;
    let length = *unstructured.choose(HEX_LENGTHS)?;
    let hex_alphabet: &[char] = if unstructured.ratio(1, 4)? {
        &['0', '9', 'a', 'f', 'A', 'F', 'g']
    } else {
        &['0', '3', '9', 'a', 'c', 'f']
    };
    let hex = fuzz::string_of_length(unstructured, hex_alphabet, length)?;
    Ok(format!("{algorithm}:{hex}"))
}

/// One to three edits with edge characters: what a typo, a traversal or a
/// smuggled separator looks like.
fn mutate(unstructured: &mut Unstructured<'_>, text: String) -> arbitrary::Result<String> {
    let mut characters: Vec<char> = text.chars().collect();
    for _ in 0..unstructured.int_in_range(1..=3)? {
        let at = unstructured.int_in_range(0..=characters.len())?;
        let edge = *unstructured.choose(EDGE_CHARACTERS)?;
        match unstructured.int_in_range(0..=3)? {
            0 if at < characters.len() => characters[at] = edge,
            1 if at < characters.len() => {
                characters.remove(at);
            }
            2 => characters.splice(at..at, "/../".chars()).for_each(drop),
            _ => characters.insert(at, edge),
        }
    }
    Ok(characters.into_iter().collect())
}
