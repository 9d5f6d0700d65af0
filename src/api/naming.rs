//! The tenant's Microsoft 365 group naming policy, as Microsoft checks it: a prefix and suffix
//! (fixed text and the creating user's attributes such as `[Department]`) and custom blocked
//! words, from which Global and User administrators are exempt ("Enforce a naming policy on
//! Microsoft 365 groups in Microsoft Entra ID"). GroupMgr does not re-implement the policy:
//! it asks Graph (`POST /directoryObjects/validateProperties` on behalf of the caller), adds
//! the prefix and suffix Graph names, and asks again, so the preview the UI shows and the
//! names a group is created under are Microsoft's own verdict.

use bytes::Bytes;
use warp::http::{Response, StatusCode};

use super::model::{NamingPreview, NamingProblem, NamingProblemCode, NamingProperty};
use super::{ApiError, ErrorCode, Request, caller_graph};
use crate::app::App;
use crate::auth::Caller;
use crate::domain::{DisplayName, MailNickname, ObjectId};
use crate::microsoft::graph::{ErrorDetail, Graph, GraphError};

const MISSING_PREFIX_SUFFIX: &str = "MissingPrefixSuffix";

/// The caller, as `onBehalfOfUserId` (the policy resolves their attributes and exemption).
pub(super) fn subject(caller: &Caller) -> Option<ObjectId> {
    caller.principal.object_id.map(ObjectId::from_uuid)
}

/// `GET /api/policy/naming/preview?displayName=&mailNickname=`.
pub async fn preview(app: &App, caller: &Caller, req: &Request) -> Result<Response<Bytes>, ApiError> {
    let (mut display, mut nick) = (None, None);
    for (k, v) in req.query_pairs() {
        match k.as_str() {
            "displayName" => display = Some(DisplayName::parse(&v)?),
            "mailNickname" => nick = Some(MailNickname::parse(&v)?),
            _ => {}
        }
    }
    let display = display.ok_or_else(|| ApiError::bad_request(ErrorCode::InvalidInput, "displayName: is required"))?;
    let graph = caller_graph(app, caller).await?;
    let preview = check(
        &graph,
        subject(caller),
        Some(display.as_str()),
        nick.as_ref().map(MailNickname::as_str),
    )
    .await?;
    Ok(super::json(StatusCode::OK, &preview))
}

/// Microsoft's verdict on these names for `user` (at least one of them given): the names with
/// the prefix and suffix the policy requires, and the problems that remain with them.
pub(super) async fn check(
    graph: &Graph<'_>,
    user: Option<ObjectId>,
    display_name: Option<&str>,
    mail_nickname: Option<&str>,
) -> Result<NamingPreview, GraphError> {
    let mut names = Names {
        display_name: display_name.map(str::to_string),
        mail_nickname: mail_nickname.map(str::to_string),
    };
    let first = graph
        .validate_group_names(names.display_name.as_deref(), names.mail_nickname.as_deref(), user)
        .await?;
    let affixes_added = first.iter().any(|d| d.code == MISSING_PREFIX_SUFFIX);
    let details = if affixes_added {
        for d in first.iter().filter(|d| d.code == MISSING_PREFIX_SUFFIX) {
            names.apply(d);
        }
        let problems = names.invalid();
        if !problems.is_empty() {
            // Too long with the prefix and suffix: asking Microsoft again cannot help.
            return Ok(names.preview(true, problems));
        }
        graph
            .validate_group_names(names.display_name.as_deref(), names.mail_nickname.as_deref(), user)
            .await?
    } else {
        first
    };
    let problems = details.into_iter().map(problem).collect();
    Ok(names.preview(affixes_added, problems))
}

/// Names under construction.
struct Names {
    display_name: Option<String>,
    mail_nickname: Option<String>,
}

impl Names {
    /// Adds the prefix and suffix of a `MissingPrefixSuffix` detail to its property, without
    /// repeating one the value already has.
    fn apply(&mut self, d: &ErrorDetail) {
        let nickname = d.target.as_deref() == Some("mailNickname");
        let Some(value) = (if nickname {
            self.mail_nickname.as_mut()
        } else {
            self.display_name.as_mut()
        }) else {
            return;
        };
        if let Some(suggested) = d
            .suggested_property_value
            .as_deref()
            .filter(|_| d.prefix.is_none() && d.suffix.is_none())
        {
            *value = suggested.to_string();
            return;
        }
        let (mut prefix, mut suffix) = (
            d.prefix.clone().unwrap_or_default(),
            d.suffix.clone().unwrap_or_default(),
        );
        if nickname {
            // Characters an alias cannot hold are left out of its prefix and suffix ("Enforce a
            // naming policy on Microsoft 365 groups in Microsoft Entra ID").
            prefix.retain(MailNickname::allows);
            suffix.retain(MailNickname::allows);
        }
        // Entered with the prefix or suffix already (long enough to hold both): not twice.
        let room = value.len() >= prefix.len() + suffix.len();
        let mut out = String::with_capacity(prefix.len() + value.len() + suffix.len());
        if !(room && value.starts_with(&prefix)) {
            out.push_str(&prefix);
        }
        out.push_str(value);
        if !(room && value.ends_with(&suffix)) {
            out.push_str(&suffix);
        }
        *value = out;
    }

    /// The names' faults as names (too long with the prefix and suffix).
    fn invalid(&self) -> Vec<NamingProblem> {
        let mut out = Vec::new();
        if let Some(Err(e)) = self.display_name.as_deref().map(DisplayName::parse) {
            out.push(invalid(NamingProperty::DisplayName, e.to_string()));
        }
        if let Some(Err(e)) = self.mail_nickname.as_deref().map(MailNickname::parse) {
            out.push(invalid(NamingProperty::MailNickname, e.to_string()));
        }
        out
    }

    fn preview(self, affixes_added: bool, mut problems: Vec<NamingProblem>) -> NamingPreview {
        if problems.is_empty() {
            problems = self.invalid();
        }
        NamingPreview {
            display_name: self.display_name.unwrap_or_default(),
            mail_nickname: self.mail_nickname,
            affixes_added,
            allowed: problems.is_empty(),
            problems,
        }
    }
}

fn invalid(property: NamingProperty, message: String) -> NamingProblem {
    NamingProblem {
        property,
        code: NamingProblemCode::InvalidName,
        message: format!("with the naming policy's prefix and suffix, {message}"),
        blocked_word: None,
    }
}

/// One of Graph's validation details as a problem of the API.
fn problem(d: ErrorDetail) -> NamingProblem {
    let property = match d.target.as_deref() {
        Some("mailNickname") => NamingProperty::MailNickname,
        _ => NamingProperty::DisplayName,
    };
    let code = match d.code.as_str() {
        "ContainsBlockedWord" => NamingProblemCode::BlockedWord,
        "PropertyConflict" => NamingProblemCode::NicknameTaken,
        MISSING_PREFIX_SUFFIX => NamingProblemCode::MissingPrefixSuffix,
        _ => NamingProblemCode::Other,
    };
    // Graph does not document a property holding the blocked word; take it from the
    // message ("… the blocked word 'X' …") when it is not given.
    let blocked_word = (code == NamingProblemCode::BlockedWord)
        .then(|| d.blocked_word.clone().or_else(|| quoted(&d.message)))
        .flatten();
    let message = if d.message.is_empty() { d.code } else { d.message };
    NamingProblem {
        property,
        code,
        message,
        blocked_word,
    }
}

/// The word quoted after "blocked word" ("… can't contain the blocked word 'X' as per …"),
/// up to the quote before " as per" (a blocked word may hold a quote itself), else the last.
fn quoted(message: &str) -> Option<String> {
    let lower = message.to_ascii_lowercase();
    let after = lower.find("blocked word '")? + "blocked word '".len();
    let end = match lower[after..].find("' as per") {
        Some(n) => after + n,
        None => after + lower[after..].rfind('\'')?,
    };
    Some(message[after..end].to_string()).filter(|w| !w.is_empty())
}

/// The answer to a create or rename the policy does not allow: a taken nickname is a
/// conflict, everything else the caller must change.
pub(super) fn refusal(preview: &NamingPreview) -> ApiError {
    let Some(first) = preview.problems.first() else {
        return ApiError::bad_request(ErrorCode::NamingPolicyViolation, "the naming policy refused the names");
    };
    let message = match (&first.code, &first.blocked_word) {
        (NamingProblemCode::BlockedWord, Some(w)) => format!(
            "{}: contains '{w}', a word the tenant's group naming policy blocks",
            first.property.as_str()
        ),
        _ => format!("{}: {}", first.property.as_str(), first.message),
    };
    match first.code {
        NamingProblemCode::NicknameTaken => ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, message),
        NamingProblemCode::InvalidName => ApiError::bad_request(ErrorCode::InvalidInput, message),
        _ => ApiError::bad_request(ErrorCode::NamingPolicyViolation, message),
    }
}

/// The compliant names a create or rename refused for a missing prefix or suffix suggests
/// (Graph's `details` with `suggestedPropertyValue`, or `prefix` and `suffix`), if that is
/// why it was refused. `None` for every other failure.
pub(super) fn suggested_names(
    e: &GraphError,
    display_name: Option<&str>,
    mail_nickname: Option<&str>,
) -> Option<(Option<String>, Option<String>)> {
    let GraphError::Service {
        status: 400 | 422,
        details,
        ..
    } = e
    else {
        return None;
    };
    let missing: Vec<&ErrorDetail> = details.iter().filter(|d| d.code == MISSING_PREFIX_SUFFIX).collect();
    if missing.is_empty() {
        return None;
    }
    let mut names = Names {
        display_name: display_name.map(str::to_string),
        mail_nickname: mail_nickname.map(str::to_string),
    };
    for d in missing {
        names.apply(d);
    }
    Some((names.display_name, names.mail_nickname))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn missing(target: &str, prefix: &str, suffix: &str) -> ErrorDetail {
        ErrorDetail {
            code: MISSING_PREFIX_SUFFIX.into(),
            target: Some(target.into()),
            prefix: Some(prefix.into()),
            suffix: Some(suffix.into()),
            ..ErrorDetail::default()
        }
    }

    #[test]
    fn affixes_are_added_once() {
        let mut n = Names {
            display_name: Some("GRP_Sales Plan".into()),
            mail_nickname: Some("plan".into()),
        };
        n.apply(&missing("displayName", "GRP_Sales ", "_US"));
        n.apply(&missing("mailNickname", "GRP_Sales (HQ)", "_US"));
        assert_eq!(
            n.display_name.as_deref(),
            Some("GRP_Sales Plan_US"),
            "the prefix was there already"
        );
        assert_eq!(
            n.mail_nickname.as_deref(),
            Some("GRP_SalesHQplan_US"),
            "characters an alias cannot hold are left out"
        );
        // Prefix and suffix overlapping in what was entered: both are added.
        let mut n = Names {
            display_name: Some("GRP_Sales_US".into()),
            mail_nickname: None,
        };
        n.apply(&missing("displayName", "GRP_Sales_", "_US"));
        assert_eq!(n.display_name.as_deref(), Some("GRP_Sales_GRP_Sales_US_US"));
        // A refused create suggests the whole value.
        let mut n = Names {
            display_name: Some("Plan".into()),
            mail_nickname: None,
        };
        n.apply(&ErrorDetail {
            code: MISSING_PREFIX_SUFFIX.into(),
            target: Some("displayName".into()),
            suggested_property_value: Some("Plan - M365".into()),
            ..ErrorDetail::default()
        });
        assert_eq!(n.display_name.as_deref(), Some("Plan - M365"));
    }

    #[test]
    fn a_blocked_word_is_read_from_the_message_when_not_given() {
        let p = problem(ErrorDetail {
            code: "ContainsBlockedWord".into(),
            target: Some("displayName".into()),
            message: "The displayName can't contain the blocked word 'Payroll' as per company policy.".into(),
            ..ErrorDetail::default()
        });
        assert_eq!(p.code, NamingProblemCode::BlockedWord);
        assert_eq!(p.blocked_word.as_deref(), Some("Payroll"));
        assert_eq!(quoted("no quotes"), None);
        assert_eq!(
            quoted("The displayName can't contain the blocked word 'don't' as per company policy.").as_deref(),
            Some("don't")
        );
    }
}
