//! The Microsoft 365 group naming policy, as Entra enforces it and as
//! `POST /directoryObjects/validateProperties` reports it.
//!
//! Sources:
//! - "Enforce a naming policy on Microsoft 365 groups in Microsoft Entra ID"
//!   (learn.microsoft.com/entra/identity/users/groups-naming-policy): the prefix-suffix policy
//!   is fixed strings and the user attributes `[Department]`, `[Company]`, `[Office]`,
//!   `[StateOrProvince]`, `[CountryOrRegion]`, `[Title]` around one `[GroupName]`; other
//!   bracketed names are fixed strings; characters a group alias does not allow are applied to
//!   the name but removed from the alias; custom blocked words are not case sensitive and are
//!   not searched as substrings ("Class" passes when "lass" is blocked); Global and User
//!   Administrators are exempt.
//! - "Microsoft 365 Groups and Microsoft Teams naming policy"
//!   (learn.microsoft.com/microsoft-365/solutions/groups-naming-policy): blocked words are
//!   matched against the name the user entered (not the prefix or suffix).
//! - Graph "directoryObject: validateProperties"
//!   (api-reference/v1.0/api/directoryobject-validateproperties.md): 204 when valid; 422
//!   `Request_UnprocessableEntity` with `details`; the prefix-suffix check reports every
//!   property at fault (`MissingPrefixSuffix` with the user's `prefix` and `suffix`), the other
//!   checks only the first failure; delegated permission `Group.Read.All` (or
//!   `Directory.Read.All`, `Directory.ReadWrite.All`), application also `Group.ReadWrite.All`
//!   (includes/permissions/directoryobject-validateproperties-permissions.md).
//! - "group: validateProperties" (group-validateproperties.md): a taken nickname is
//!   `PropertyConflict` on `mailNickname`.
//! - The blocked-word detail is not in Graph's documentation. Its code `ContainsBlockedWord`
//!   is named by Microsoft's support article "Microsoft Copilot for Sales team creation error
//!   ContainsBlockedWord"; the message follows "Troubleshoot Microsoft Teams integration with
//!   Dynamics 365" ("The displayName can't contain the blocked word '…' as per company
//!   policy."). SharePoint's `GroupNameValidationResultErrorParams` carries the word as
//!   `BlockedWord`, but no Graph source shows such a property, so the sim gives the word only
//!   in the message, and clients must read it from there.
//! - A user attribute that is empty: the documentation is silent; a public report
//!   (microsoft-graph-docs#7842) shows it resolving to nothing, which the sim does.
//! - `POST /groups` with names that miss the prefix or suffix: the documentation is silent.
//!   Public reports (OfficeDev/microsoft-teams-apps-requestateam#250,
//!   msgraph-sdk-dotnet#1153) show a refusal, `400 Request_BadRequest` "The property is
//!   missing a required prefix/suffix per your organization's Group naming requirements."
//!   with `details` `{target, code: MissingPrefixSuffix, suggestedPropertyValue}`: the sim's
//!   default. `NamingOnCreate::AddAffixes` models the other reading (the service adds them).

use serde_json::{Value, json};

use super::model::TenantGraph;
use crate::directory::SimUser;

/// What `POST /groups` does with names that miss the policy's prefix or suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NamingOnCreate {
    /// Refuse with 400 and the suggested compliant names (what public reports show).
    #[default]
    Refuse,
    /// Create the group under the compliant names.
    AddAffixes,
}

/// The characters a group's mail nickname may not hold (Graph "Create group":
/// `@ () \ [] " ; : . <> , SPACE`, ASCII only).
pub const FORBIDDEN_NICK: &[char] = &['@', '(', ')', '\\', '[', ']', '"', ';', ':', '.', '<', '>', ',', ' '];

fn alias_char(c: char) -> bool {
    c.is_ascii() && !c.is_ascii_control() && !FORBIDDEN_NICK.contains(&c)
}

/// The tenant's naming policy: its `Group.Unified` setting's `PrefixSuffixNamingRequirement`
/// and `CustomBlockedWordsList`.
pub struct Policy {
    requirement: String,
    blocked: Vec<String>,
}

/// The prefix and suffix one user's names must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Affixes {
    pub prefix: String,
    pub suffix: String,
}

impl Affixes {
    fn on(&self, value: &str) -> bool {
        value.len() >= self.prefix.len() + self.suffix.len()
            && value.starts_with(&self.prefix)
            && value.ends_with(&self.suffix)
    }

    pub fn apply(&self, value: &str) -> String {
        format!("{}{value}{}", self.prefix, self.suffix)
    }

    /// The part of `value` the user entered.
    fn strip<'v>(&self, value: &'v str) -> &'v str {
        if self.on(value) {
            &value[self.prefix.len()..value.len() - self.suffix.len()]
        } else {
            value
        }
    }

    fn for_alias(&self) -> Affixes {
        Affixes {
            prefix: self.prefix.chars().filter(|c| alias_char(*c)).collect(),
            suffix: self.suffix.chars().filter(|c| alias_char(*c)).collect(),
        }
    }
}

/// The words of `s`, lower-cased (blocked words match whole words, not substrings).
fn words(s: &str) -> Vec<String> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

impl Policy {
    pub fn of(t: &TenantGraph) -> Option<Policy> {
        let requirement = t.group_unified_value("PrefixSuffixNamingRequirement")?;
        let blocked = t
            .group_unified_value("CustomBlockedWordsList")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        Some(Policy { requirement, blocked })
    }

    /// The prefix and suffix of `user`'s display names (empty when there is no requirement).
    pub fn affixes(&self, user: Option<&SimUser>) -> Affixes {
        let lower = self.requirement.to_ascii_lowercase();
        let Some(at) = lower.find("[groupname]") else {
            return Affixes {
                prefix: String::new(),
                suffix: String::new(),
            };
        };
        let resolve = |part: &str| {
            let mut out = String::new();
            let mut rest = part;
            while let Some(open) = rest.find('[') {
                out.push_str(&rest[..open]);
                let Some(close) = rest[open..].find(']') else {
                    out.push_str(&rest[open..]);
                    rest = "";
                    break;
                };
                let name = &rest[open + 1..open + close];
                let attribute = user.map_or(Some(""), |u| u.attributes.naming_attribute(name));
                // An attribute the policy does not support is a fixed string.
                out.push_str(attribute.unwrap_or(name));
                rest = &rest[open + close + 1..];
            }
            out.push_str(rest);
            out
        };
        Affixes {
            prefix: resolve(&self.requirement[..at]),
            suffix: resolve(&self.requirement[at + "[GroupName]".len()..]),
        }
    }

    /// The first custom blocked word in `entered`, as the policy spells it.
    fn blocked_word(&self, entered: &str) -> Option<&str> {
        let have = words(entered);
        self.blocked.iter().map(String::as_str).find(|w| {
            let want = words(w);
            !want.is_empty() && have.windows(want.len()).any(|win| win == want.as_slice())
        })
    }
}

/// One failed check, in Graph's `details` form.
fn detail(target: &str, code: &str, message: &str) -> Value {
    json!({"target": target, "code": code, "message": message})
}

/// The properties a create or update would give a group.
pub struct Names<'a> {
    pub display_name: Option<&'a str>,
    pub mail_nickname: Option<&'a str>,
}

/// The naming policy's verdict on `names` for `user` (`exempt`: an administrator the policy
/// does not apply to): the `details` of the failed checks, empty when the names comply. As
/// `validateProperties`: every prefix-suffix failure, else the first blocked word.
pub fn policy_details(t: &TenantGraph, user: Option<&SimUser>, exempt: bool, names: &Names<'_>) -> Vec<Value> {
    let Some(policy) = Policy::of(t).filter(|_| !exempt) else {
        return Vec::new();
    };
    let display = policy.affixes(user);
    let alias = display.for_alias();
    let mut out = Vec::new();
    for (target, value, affixes) in [
        ("displayName", names.display_name, &display),
        ("mailNickname", names.mail_nickname, &alias),
    ] {
        if let Some(v) = value
            && !affixes.on(v)
        {
            let mut d = detail(
                target,
                "MissingPrefixSuffix",
                &format!(
                    "Property {target} is missing a required prefix/suffix per your organization's Group naming requirements."
                ),
            );
            d["prefix"] = json!(affixes.prefix);
            d["suffix"] = json!(affixes.suffix);
            out.push(d);
        }
    }
    if !out.is_empty() {
        return out;
    }
    for (target, value, affixes) in [
        ("displayName", names.display_name, &display),
        ("mailNickname", names.mail_nickname, &alias),
    ] {
        if let Some(word) = value.and_then(|v| policy.blocked_word(affixes.strip(v))) {
            return vec![detail(
                target,
                "ContainsBlockedWord",
                &format!("The {target} can't contain the blocked word '{word}' as per company policy."),
            )];
        }
    }
    Vec::new()
}

/// Whether a Microsoft 365 group already has this nickname. A deleted group keeps it while it
/// can be restored ("Restore a deleted Microsoft 365 group in Microsoft Entra ID": the group
/// comes back with its email address), so it stays taken.
pub fn nickname_taken(t: &TenantGraph, nick: &str) -> bool {
    t.groups
        .values()
        .any(|g| g.is_unified() && g.mail_nickname.eq_ignore_ascii_case(nick))
}

/// The `PropertyConflict` detail of a taken nickname.
pub fn nickname_conflict() -> Value {
    detail(
        "mailNickname",
        "PropertyConflict",
        "Another object with the same value for property mailNickname already exists.",
    )
}

/// The compliant value of each `MissingPrefixSuffix` detail's property (what a refused create
/// suggests, and what `AddAffixes` gives the group).
pub fn suggested(details: &[Value], names: &Names<'_>) -> Vec<(String, String)> {
    details
        .iter()
        .filter(|d| d["code"] == "MissingPrefixSuffix")
        .filter_map(|d| {
            let target = d["target"].as_str()?;
            let value = match target {
                "displayName" => names.display_name?,
                _ => names.mail_nickname?,
            };
            let affixes = Affixes {
                prefix: d["prefix"].as_str()?.to_string(),
                suffix: d["suffix"].as_str()?.to_string(),
            };
            Some((target.to_string(), affixes.apply(value)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::model::{GROUP_UNIFIED_TEMPLATE, Setting};

    fn tenant(requirement: &str, blocked: &str) -> TenantGraph {
        let mut t = crate::graph::model::seed(&crate::directory::seed()[0], 0);
        t.settings.push(Setting {
            id: uuid::Uuid::new_v4(),
            template_id: GROUP_UNIFIED_TEMPLATE.into(),
            values: vec![
                ("PrefixSuffixNamingRequirement".into(), requirement.into()),
                ("CustomBlockedWordsList".into(), blocked.into()),
            ],
        });
        t
    }

    fn user(alias: &str) -> SimUser {
        crate::directory::seed()[0]
            .users
            .iter()
            .find(|u| u.upn.starts_with(&format!("{alias}@")))
            .cloned()
            .unwrap()
    }

    #[test]
    fn attributes_resolve_and_unknown_names_are_fixed_strings() {
        let t = tenant("GRP [Department] [postalCode]-[GroupName]-[CountryOrRegion]", "");
        let p = Policy::of(&t).unwrap();
        let a = p.affixes(Some(&user("pattif")));
        assert_eq!(a.prefix, "GRP Executive Management postalCode-");
        assert_eq!(a.suffix, "-US");
        assert_eq!(a.for_alias().prefix, "GRPExecutiveManagementpostalCode-");
        // An empty attribute resolves to nothing.
        assert_eq!(p.affixes(Some(&user("leeg"))).prefix, "GRP  postalCode-");
    }

    #[test]
    fn blocked_words_match_whole_words_of_the_entered_name_only() {
        let t = tenant("[lass-][GroupName]", "lass, Top Secret");
        let p = Policy::of(&t).unwrap();
        assert_eq!(p.blocked_word("Class notes"), None);
        assert_eq!(p.blocked_word("the LASS room"), Some("lass"));
        assert_eq!(p.blocked_word("top  secret plans"), Some("Top Secret"));
        let u = user("adelev");
        let names = |d| Names {
            display_name: Some(d),
            mail_nickname: None,
        };
        // The prefix holds a blocked word; only the entered part is checked.
        assert!(policy_details(&t, Some(&u), false, &names("lass-Class notes")).is_empty());
        let d = policy_details(&t, Some(&u), false, &names("lass-Lass notes"));
        assert_eq!(d[0]["code"], "ContainsBlockedWord");
        let d = policy_details(&t, Some(&u), false, &names("Notes"));
        assert_eq!(d[0]["code"], "MissingPrefixSuffix");
        assert!(
            policy_details(&t, Some(&u), true, &names("Notes")).is_empty(),
            "admins are exempt"
        );
    }
}
