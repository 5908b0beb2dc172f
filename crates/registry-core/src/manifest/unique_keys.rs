//! Keys a pushed manifest may not repeat. JSON parsers disagree about an
//! object that names a key twice: some refuse it, some keep the first,
//! most keep the last, and Go's `encoding/json` (docker, containerd,
//! Distribution) matches struct fields ignoring case, so for it `layers`
//! and `Layers` are one field. A manifest built that way would show
//! Berth's checks one list of layers and a client another. Every object
//! in a pushed manifest must therefore name each key once, also when keys
//! are compared as Go compares field names. Annotations are maps, which
//! Go keeps with their keys as written: there only exact repeats count.

use std::collections::HashMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};

/// Checks every object of `body` (which must be JSON) for repeated keys.
pub(super) fn check(body: &[u8]) -> Result<(), serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    Object {
        path: "",
        is_map: false,
    }
    .deserialize(&mut deserializer)?;
    deserializer.end()
}

/// A JSON value at `path` (`layers[1].annotations`; empty for the whole
/// manifest); `is_map` when its object's keys are data (annotations)
/// rather than field names.
struct Object<'a> {
    path: &'a str,
    is_map: bool,
}

/// `key` as Go's `encoding/json` matches field names: each character
/// simply case-folded (`K`, `k` and the Kelvin sign alike; `ß` stays).
fn folded(key: &str) -> String {
    if key.is_ascii() {
        return key.to_ascii_lowercase();
    }
    key.chars()
        .map(|character| {
            let upper = only(character.to_uppercase(), character);
            only(upper.to_lowercase(), upper)
        })
        .collect()
}

/// The one character of `chars`, or `fallback` where there are several
/// (simple folding never turns one character into two).
fn only(mut chars: impl Iterator<Item = char>, fallback: char) -> char {
    match (chars.next(), chars.next()) {
        (Some(single), None) => single,
        _ => fallback,
    }
}

impl<'de> DeserializeSeed<'de> for Object<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Object<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: HashMap<String, String> = HashMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let compared = if self.is_map {
                key.clone()
            } else {
                folded(&key)
            };
            if let Some(earlier) = seen.get(&compared) {
                let how = if *earlier == key {
                    format!("names the key {key:?} twice")
                } else {
                    format!(
                        "names the keys {earlier:?} and {key:?}, which clients written in Go read as one"
                    )
                };
                let place = if self.path.is_empty() {
                    "the manifest"
                } else {
                    self.path
                };
                return Err(A::Error::custom(format!(
                    "{place} {how}: JSON parsers disagree on which one counts, so send each key once"
                )));
            }
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            map.next_value_seed(Object {
                path: &path,
                is_map: key == "annotations",
            })?;
            seen.insert(compared, key);
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut sequence: A) -> Result<(), A::Error> {
        let mut index = 0;
        loop {
            let path = format!("{}[{index}]", self.path);
            let element = Object {
                path: &path,
                is_map: false,
            };
            if sequence.next_element_seed(element)?.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(json: &str) -> String {
        check(json.as_bytes())
            .expect_err("a repeated key is refused")
            .to_string()
    }

    #[test]
    fn unique_keys_pass() {
        let json = r#"{"layers":[{"digest":"a"},{"digest":"b"}],
            "annotations":{"a":"1","A":"2","straße":"3","strasse":"4"},"n":null}"#;
        check(json.as_bytes()).expect("no key is repeated");
    }

    #[test]
    fn repeats_at_any_depth_are_refused_naming_where() {
        let top = refusal(r#"{"layers":[],"x":1,"layers":[]}"#);
        assert!(
            top.contains(r#"the manifest names the key "layers" twice"#),
            "{top}"
        );
        let nested = refusal(r#"{"layers":[{"digest":"a"},{"digest":"b","digest":"c"}]}"#);
        assert!(
            nested.contains(r#"layers[1] names the key "digest" twice"#),
            "{nested}"
        );
        let annotations = refusal(r#"{"annotations":{"a":"1","a":"2"}}"#);
        assert!(
            annotations.starts_with(r#"annotations names the key "a""#),
            "{annotations}"
        );
        // An escape spells the same key.
        refusal(r#"{"layers":[],"l\u0061yers":[]}"#);
    }

    #[test]
    fn field_names_that_go_reads_as_one_are_refused() {
        let cased = refusal(r#"{"layers":[],"Layers":[]}"#);
        assert!(cased.contains("written in Go read as one"), "{cased}");
        // U+017F (long s) and U+212A (Kelvin sign) fold to `s` and `k`.
        refusal("{\"schemaVersion\":2,\"\u{17f}chemaVersion\":3}");
        refusal("{\"kind\":1,\"\u{212a}ind\":2}");
    }
}
