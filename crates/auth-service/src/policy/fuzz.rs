//! Target `policy`: a policy file's text. Whatever the text, parsing
//! answers without a panic; a policy that loads grants a user at least
//! what it grants anonymous clients, and grants every rule's actions to
//! the users, group members and (if `anonymous`) clients it names, on each
//! repository the rule names literally, as an independent TOML reading of
//! the same text says.

use std::collections::BTreeSet;

use test_support::fuzz::{self, Unstructured, arbitrary};

use super::{Action, Policy};

#[test]
fn policy() {
    fuzz::fuzz("policy", generate, check);
}

fn check(input: &[u8]) {
    // Policy files that are not UTF-8 are refused before they are parsed.
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let Ok(policy) = Policy::parse(text) else {
        return;
    };
    let file: toml::Table = toml::from_str(text).expect("a policy that loads is TOML");
    let mut probes: BTreeSet<String> = ["team/app", "public/base", "a", ""]
        .map(String::from)
        .into();
    for rule in rules(&file) {
        let granted: BTreeSet<Action> = strings(rule.get("actions"))
            .iter()
            .map(|action| action_named(action))
            .collect();
        let mut principals: Vec<Option<String>> =
            strings(rule.get("users")).into_iter().map(Some).collect();
        for group in strings(rule.get("groups")) {
            let members = file.get("groups").and_then(|groups| groups.get(&group));
            principals.extend(strings(members).into_iter().map(Some));
        }
        if rule.get("anonymous").and_then(toml::Value::as_bool) == Some(true) {
            principals.push(None);
        }
        for repository in strings(rule.get("repositories")) {
            probes.insert(repository.clone());
            if repository.contains(['*', '?', '[', ']', '{', '}', '\\']) {
                continue;
            }
            for principal in &principals {
                let allowed = policy.allowed(principal.as_deref(), &repository);
                assert!(
                    granted.is_subset(&allowed),
                    "{principal:?} on {repository:?}: the rule grants {granted:?}, the policy {allowed:?}"
                );
            }
        }
    }
    for repository in &probes {
        let anonymous = policy.allowed(None, repository);
        for user in ["alice", "bob", "", "nobody"] {
            let allowed = policy.allowed(Some(user), repository);
            assert!(
                anonymous.is_subset(&allowed),
                "{user:?} may do less than anonymous clients on {repository:?}"
            );
        }
    }
}

fn rules(file: &toml::Table) -> Vec<&toml::Table> {
    file.get("rule")
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(toml::Value::as_table)
        .collect()
}

fn strings(value: Option<&toml::Value>) -> Vec<String> {
    value
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| item.as_str().map(str::to_owned))
        .collect()
}

fn action_named(name: &str) -> Action {
    match name {
        "pull" => Action::Pull,
        "push" => Action::Push,
        "delete" => Action::Delete,
        other => panic!("a policy with action {other:?} loaded"),
    }
}

/// Globs that compile, then ones that do not.
const GLOBS: &[&str] = &[
    "team/**",
    "team/*",
    "team/app",
    "public/**",
    "**",
    "*",
    "a",
    "",
    "{a,b}",
    "a/**/b",
    "**/",
    "\u{fc}/*",
    "[",
    "a\\",
    "{a",
];
const VALID_GLOBS: usize = 12;
const NAMES: &[&str] = &["alice", "bob", "", "\"", "a b", "developers", "admins"];
/// Actions, then words that are not.
const ACTIONS: &[&str] = &["pull", "push", "delete", "fly", "PULL", ""];
const VALID_ACTIONS: usize = 3;
/// Groups that may be defined, then one that never is.
const GROUPS: &[&str] = &["developers", "admins", "nobody"];
const DEFINED_GROUPS: usize = 2;

/// Most inputs are policies that load, so the grant properties are
/// checked often; the others carry mistakes of every kind.
fn generate(unstructured: &mut Unstructured<'_>) -> arbitrary::Result<Vec<u8>> {
    if unstructured.ratio(1, 8)? {
        return unstructured.arbitrary::<Vec<u8>>();
    }
    let mistakes = unstructured.ratio(1, 3)?;
    let mut text = String::from("[groups]\n");
    for group in &GROUPS[..DEFINED_GROUPS] {
        text.push_str(&format!("{group} = {}\n", list(unstructured, NAMES)?));
    }
    if mistakes {
        text.push_str(unstructured.choose(&["\"\" = []\n", "a.b = [\"x\"]\n", "x = \"y\"\n"])?);
    }
    for _ in 0..unstructured.int_in_range(1..=3)? {
        text.push_str("\n[[rule]]\n");
        for key in [
            "repositories",
            "users",
            "groups",
            "anonymous",
            "actions",
            "expires",
        ] {
            let times = match key {
                _ if mistakes => *unstructured.choose(&[0, 1, 1, 2])?,
                "repositories" | "actions" => 1,
                "expires" => 0,
                _ => usize::from(unstructured.ratio(1, 2)?),
            };
            for _ in 0..times {
                let value = rule_value(unstructured, key, mistakes)?;
                text.push_str(&format!("{key} = {value}\n"));
            }
        }
    }
    if mistakes && unstructured.ratio(1, 3)? {
        let mut cut = unstructured.int_in_range(0..=text.len())?;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    Ok(text.into_bytes())
}

fn rule_value(
    unstructured: &mut Unstructured<'_>,
    key: &str,
    mistakes: bool,
) -> arbitrary::Result<String> {
    let choices = |all: &'static [&'static str], valid: usize| {
        if mistakes { all } else { &all[..valid] }
    };
    match key {
        "repositories" => list(unstructured, choices(GLOBS, VALID_GLOBS)),
        "users" => list(unstructured, NAMES),
        "groups" => list(unstructured, choices(GROUPS, DEFINED_GROUPS)),
        "anonymous" if mistakes => {
            Ok((*unstructured.choose(&["true", "\"yes\"", "1"])?).to_owned())
        }
        "anonymous" => Ok((*unstructured.choose(&["true", "false"])?).to_owned()),
        "actions" => list(unstructured, choices(ACTIONS, VALID_ACTIONS)),
        _ => Ok("1".to_owned()),
    }
}

/// A TOML array of 0 to 3 strings from `choices`.
fn list(unstructured: &mut Unstructured<'_>, choices: &[&str]) -> arbitrary::Result<String> {
    let items = (0..unstructured.int_in_range(0..=3)?)
        .map(|_| {
            let item = unstructured.choose(choices)?;
            Ok(toml::Value::String((*item).to_owned()).to_string())
        })
        .collect::<arbitrary::Result<Vec<_>>>()?;
    Ok(format!("[{}]", items.join(", ")))
}
