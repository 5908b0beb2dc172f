//! Permissions: an optional TOML policy granting pull, push and delete to
//! users, groups or anonymous clients over repository globs. Without a
//! policy every authenticated user may do everything and anonymous clients
//! nothing (what Distribution's htpasswd mode does).
//!
//! ```toml
//! [groups]
//! developers = ["alice", "bob"]
//!
//! [[rule]]
//! repositories = ["team/**"]      # `*` stays within a path component, `**` crosses them
//! groups = ["developers"]
//! actions = ["pull", "push"]
//!
//! [[rule]]
//! repositories = ["public/**"]
//! anonymous = true                # clients without credentials
//! actions = ["pull"]
//! ```

use std::collections::{BTreeSet, HashMap};

use globset::{GlobBuilder, GlobMatcher};

/// An action on a repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pull,
    Push,
    Delete,
}

pub const ALL_ACTIONS: [Action; 3] = [Action::Pull, Action::Push, Action::Delete];

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    groups: HashMap<String, Vec<String>>,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleFile>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    repositories: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    anonymous: bool,
    actions: Vec<Action>,
}

#[derive(Debug)]
struct Rule {
    repositories: Vec<GlobMatcher>,
    users: BTreeSet<String>,
    anonymous: bool,
    actions: BTreeSet<Action>,
}

/// A loaded policy.
#[derive(Debug)]
pub struct Policy {
    rules: Vec<Rule>,
}

/// Why a policy file was refused; the message names the line or the rule.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{0}")]
    Syntax(String),
    #[error("rule {rule}: repository glob {glob:?}: {reason}")]
    BadGlob {
        rule: usize,
        glob: String,
        reason: String,
    },
    #[error("rule {rule}: group {group:?} is not defined under [groups]")]
    UnknownGroup { rule: usize, group: String },
    #[error("rule {rule}: names no users, groups or anonymous, so it grants nothing")]
    NoOne { rule: usize },
}

impl Policy {
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile =
            toml::from_str(text).map_err(|error| PolicyError::Syntax(error.to_string()))?;
        let mut rules = Vec::new();
        for (index, rule) in file.rules.into_iter().enumerate() {
            let number = index + 1;
            if rule.users.is_empty() && rule.groups.is_empty() && !rule.anonymous {
                return Err(PolicyError::NoOne { rule: number });
            }
            let mut users: BTreeSet<String> = rule.users.into_iter().collect();
            for group in rule.groups {
                let members = file
                    .groups
                    .get(&group)
                    .ok_or_else(|| PolicyError::UnknownGroup {
                        rule: number,
                        group: group.clone(),
                    })?;
                users.extend(members.iter().cloned());
            }
            let repositories = rule
                .repositories
                .iter()
                .map(|glob| {
                    compile(glob).map_err(|reason| PolicyError::BadGlob {
                        rule: number,
                        glob: glob.clone(),
                        reason,
                    })
                })
                .collect::<Result<_, _>>()?;
            rules.push(Rule {
                repositories,
                users,
                anonymous: rule.anonymous,
                actions: rule.actions.into_iter().collect(),
            });
        }
        Ok(Policy { rules })
    }

    /// What `principal` (`None`: anonymous) may do on `repository`.
    pub fn allowed(&self, principal: Option<&str>, repository: &str) -> BTreeSet<Action> {
        self.rules
            .iter()
            .filter(|rule| match principal {
                None => rule.anonymous,
                Some(user) => rule.anonymous || rule.users.contains(user),
            })
            .filter(|rule| {
                rule.repositories
                    .iter()
                    .any(|glob| glob.is_match(repository))
            })
            .flat_map(|rule| rule.actions.iter().copied())
            .collect()
    }
}

fn compile(glob: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(glob)
        .literal_separator(true)
        .build()
        .map(|glob| glob.compile_matcher())
        .map_err(|error| error.kind().to_string())
}

#[cfg(test)]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
[groups]
developers = ["alice", "bob"]

[[rule]]
repositories = ["team/**"]
groups = ["developers"]
actions = ["pull", "push"]

[[rule]]
repositories = ["team/*"]
users = ["alice"]
actions = ["delete"]

[[rule]]
repositories = ["public/**"]
anonymous = true
actions = ["pull"]
"#;

    #[test]
    fn rules_grant_by_user_group_and_glob() {
        let policy = Policy::parse(POLICY).expect("valid policy");
        let set = |actions: &[Action]| actions.iter().copied().collect::<BTreeSet<_>>();
        use Action::*;
        assert_eq!(
            policy.allowed(Some("alice"), "team/app"),
            set(&[Pull, Push, Delete])
        );
        assert_eq!(
            policy.allowed(Some("alice"), "team/app/api"),
            set(&[Pull, Push])
        );
        assert_eq!(policy.allowed(Some("bob"), "team/app"), set(&[Pull, Push]));
        assert_eq!(policy.allowed(Some("carol"), "team/app"), set(&[]));
        assert_eq!(policy.allowed(None, "public/base"), set(&[Pull]));
        assert_eq!(policy.allowed(Some("carol"), "public/base"), set(&[Pull]));
        assert_eq!(policy.allowed(None, "team/app"), set(&[]));
    }

    #[test]
    fn bad_policies_say_where() {
        let syntax = Policy::parse("[[rule]]\nrepositories = [\"a\"\n").expect_err("syntax");
        assert!(syntax.to_string().contains("line 2"), "{syntax}");
        let action =
            Policy::parse("[[rule]]\nrepositories=[\"a\"]\nusers=[\"x\"]\nactions=[\"fly\"]\n")
                .expect_err("unknown action");
        assert!(action.to_string().contains("fly"), "{action}");
        let group = Policy::parse(
            "[[rule]]\nrepositories=[\"a\"]\ngroups=[\"nope\"]\nactions=[\"pull\"]\n",
        )
        .expect_err("unknown group");
        assert!(group.to_string().contains("nope"), "{group}");
    }
}
