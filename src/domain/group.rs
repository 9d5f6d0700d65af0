//! Microsoft 365 group input, parsed with Graph's own rules (graph-groups.md §3–4, §11), so
//! that a bad request is refused with the field and the rule before anything reaches Graph.

use serde_json::{Map, Value, json};

use super::{InvalidInput, parse_guid};

/// A group's object id (GUID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupId(uuid::Uuid);

impl GroupId {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        parse_guid("id", raw).map(Self)
    }
}

impl std::fmt::Display for GroupId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A user (or other directory object) id given as an owner or member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ObjectId(uuid::Uuid);

impl ObjectId {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, InvalidInput> {
        parse_guid(field, raw).map(Self)
    }
    pub fn from_uuid(u: uuid::Uuid) -> Self {
        Self(u)
    }
}

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// `displayName`: required, not blank, at most 256 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub const MAX: usize = 256;
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        if raw.trim().is_empty() {
            return Err(InvalidInput::new("displayName", "is required and cannot be blank"));
        }
        if raw.chars().count() > Self::MAX {
            return Err(InvalidInput::new(
                "displayName",
                format!("must be at most {} characters", Self::MAX),
            ));
        }
        if raw.chars().any(char::is_control) {
            return Err(InvalidInput::new("displayName", "must not contain control characters"));
        }
        Ok(Self(raw.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `mailNickname`: 1–64 ASCII characters (0–127) without `@ ( ) \ [ ] " ; : . < > ,` or space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailNickname(String);

impl MailNickname {
    pub const MAX: usize = 64;
    const FORBIDDEN: &'static [char] = &['@', '(', ')', '\\', '[', ']', '"', ';', ':', '.', '<', '>', ',', ' '];

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        if raw.is_empty() {
            return Err(InvalidInput::new("mailNickname", "is required"));
        }
        if raw.len() > Self::MAX || raw.chars().count() > Self::MAX {
            return Err(InvalidInput::new(
                "mailNickname",
                format!("must be at most {} characters", Self::MAX),
            ));
        }
        if !raw.is_ascii() {
            return Err(InvalidInput::new("mailNickname", "must contain only ASCII characters"));
        }
        if let Some(c) = raw
            .chars()
            .find(|c| Self::FORBIDDEN.contains(c) || c.is_ascii_control())
        {
            let shown = if c == ' ' {
                "space".to_string()
            } else if c.is_ascii_control() {
                "control characters".to_string()
            } else {
                format!("'{c}'")
            };
            return Err(InvalidInput::new(
                "mailNickname",
                format!("must not contain {shown} (not allowed: @ ( ) \\ [ ] \" ; : . < > , and space)"),
            ));
        }
        Ok(Self(raw.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `description`: optional, at most 1024 characters (Graph's limit for groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub const MAX: usize = 1024;
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        if raw.chars().count() > Self::MAX {
            return Err(InvalidInput::new(
                "description",
                format!("must be at most {} characters", Self::MAX),
            ));
        }
        Ok(Self(raw.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `visibility` of a Microsoft 365 group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Public,
    Private,
}

impl Visibility {
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        match raw {
            "Public" => Ok(Self::Public),
            "Private" => Ok(Self::Private),
            _ => Err(InvalidInput::new("visibility", "must be Public or Private")),
        }
    }
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Public => "Public",
            Self::Private => "Private",
        }
    }
}

/// Which relationship of a group an owner/member route manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    Owners,
    Members,
}

impl Relation {
    /// The Graph navigation property (and our route segment).
    pub fn path(&self) -> &'static str {
        match self {
            Relation::Owners => "owners",
            Relation::Members => "members",
        }
    }
}

/// Most owners + members Graph accepts in a create request.
pub const MAX_CREATE_RELATIONSHIPS: usize = 20;

fn string_field<'a>(obj: &'a Map<String, Value>, field: &'static str) -> Result<Option<&'a str>, InvalidInput> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(InvalidInput::new(field, "must be a string")),
    }
}

fn id_list(obj: &Map<String, Value>, field: &'static str) -> Result<Vec<ObjectId>, InvalidInput> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let id = item
                    .as_str()
                    .ok_or_else(|| InvalidInput::new(field, "must be an array of user ids (GUIDs)"))?;
                let id = ObjectId::parse(field, id)?;
                if !out.contains(&id) {
                    out.push(id);
                }
            }
            Ok(out)
        }
        Some(_) => Err(InvalidInput::new(field, "must be an array of user ids (GUIDs)")),
    }
}

fn reject_unknown(obj: &Map<String, Value>, allowed: &[&str]) -> Result<(), InvalidInput> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(_) => Err(InvalidInput::new(
            "body",
            format!("unknown property; allowed: {}", allowed.join(", ")),
        )),
        None => Ok(()),
    }
}

/// A valid request to create a Microsoft 365 group.
#[derive(Debug, Clone, PartialEq)]
pub struct NewGroup {
    pub display_name: DisplayName,
    pub mail_nickname: MailNickname,
    pub description: Option<Description>,
    pub visibility: Visibility,
    pub owners: Vec<ObjectId>,
    pub members: Vec<ObjectId>,
}

impl NewGroup {
    /// Parses the API body `{"displayName","mailNickname","description"?,"visibility"?,
    /// "owners"?,"members"?}`.
    pub fn parse(body: &Value) -> Result<Self, InvalidInput> {
        let obj = body
            .as_object()
            .ok_or_else(|| InvalidInput::new("body", "must be a JSON object"))?;
        reject_unknown(
            obj,
            &[
                "displayName",
                "mailNickname",
                "description",
                "visibility",
                "owners",
                "members",
            ],
        )?;
        let display_name = DisplayName::parse(
            string_field(obj, "displayName")?.ok_or_else(|| InvalidInput::new("displayName", "is required"))?,
        )?;
        let mail_nickname = MailNickname::parse(
            string_field(obj, "mailNickname")?.ok_or_else(|| InvalidInput::new("mailNickname", "is required"))?,
        )?;
        let description = string_field(obj, "description")?.map(Description::parse).transpose()?;
        let visibility = string_field(obj, "visibility")?
            .map(Visibility::parse)
            .transpose()?
            .unwrap_or(Visibility::Public);
        let owners = id_list(obj, "owners")?;
        let members = id_list(obj, "members")?;
        if owners.len() + members.len() > MAX_CREATE_RELATIONSHIPS {
            return Err(InvalidInput::new(
                "owners",
                format!(
                    "owners and members together must be at most {MAX_CREATE_RELATIONSHIPS} at creation; add more afterwards"
                ),
            ));
        }
        Ok(Self {
            display_name,
            mail_nickname,
            description,
            visibility,
            owners,
            members,
        })
    }

    /// The Graph `POST /groups` body; `graph_base` is e.g. `https://graph.microsoft.com/v1.0`.
    /// With no owners given, `default_owner` (the caller) becomes the owner, so the group is
    /// never ownerless (graph-groups.md §3).
    pub fn graph_body(&self, graph_base: &str, default_owner: Option<ObjectId>) -> Value {
        let owners: Vec<ObjectId> = if self.owners.is_empty() {
            default_owner.into_iter().collect()
        } else {
            self.owners.clone()
        };
        let bind = |ids: &[ObjectId]| {
            ids.iter()
                .map(|id| format!("{graph_base}/users/{id}"))
                .collect::<Vec<_>>()
        };
        let mut body = json!({
            "displayName": self.display_name.as_str(),
            "mailNickname": self.mail_nickname.as_str(),
            "mailEnabled": true,
            "securityEnabled": false,
            "groupTypes": ["Unified"],
            "visibility": self.visibility.as_str(),
        });
        if let Some(d) = &self.description {
            body["description"] = json!(d.as_str());
        }
        if !owners.is_empty() {
            body["owners@odata.bind"] = json!(bind(&owners));
        }
        if !self.members.is_empty() {
            body["members@odata.bind"] = json!(bind(&self.members));
        }
        body
    }
}

/// A valid update: only the properties given change.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupUpdate {
    pub display_name: Option<DisplayName>,
    pub description: Option<Description>,
    pub visibility: Option<Visibility>,
    pub mail_nickname: Option<MailNickname>,
}

impl GroupUpdate {
    pub fn parse(body: &Value) -> Result<Self, InvalidInput> {
        let obj = body
            .as_object()
            .ok_or_else(|| InvalidInput::new("body", "must be a JSON object"))?;
        reject_unknown(obj, &["displayName", "description", "visibility", "mailNickname"])?;
        if obj.get("displayName").is_some_and(Value::is_null) {
            return Err(InvalidInput::new("displayName", "cannot be cleared"));
        }
        let update = Self {
            display_name: string_field(obj, "displayName")?.map(DisplayName::parse).transpose()?,
            description: string_field(obj, "description")?.map(Description::parse).transpose()?,
            visibility: string_field(obj, "visibility")?.map(Visibility::parse).transpose()?,
            mail_nickname: string_field(obj, "mailNickname")?
                .map(MailNickname::parse)
                .transpose()?,
        };
        if update == Self::default() && !obj.contains_key("description") {
            return Err(InvalidInput::new(
                "body",
                "nothing to update: give displayName, description, visibility or mailNickname",
            ));
        }
        Ok(update)
    }

    /// The Graph PATCH body (absolute values; an explicit `"description": null` clears it).
    pub fn graph_body(&self, clear_description: bool) -> Value {
        let mut b = Map::new();
        if let Some(v) = &self.display_name {
            b.insert("displayName".into(), json!(v.as_str()));
        }
        match &self.description {
            Some(d) => {
                b.insert("description".into(), json!(d.as_str()));
            }
            None if clear_description => {
                b.insert("description".into(), Value::Null);
            }
            None => {}
        }
        if let Some(v) = &self.visibility {
            b.insert("visibility".into(), json!(v.as_str()));
        }
        if let Some(v) = &self.mail_nickname {
            b.insert("mailNickname".into(), json!(v.as_str()));
        }
        Value::Object(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nickname_rules() {
        assert!(MailNickname::parse("library-help_2").is_ok());
        assert!(MailNickname::parse(&"a".repeat(64)).is_ok());
        assert!(MailNickname::parse(&"a".repeat(65)).is_err());
        assert!(MailNickname::parse("").is_err());
        assert!(MailNickname::parse("café").is_err());
        for bad in [
            "a@b", "a(b", "a)b", "a\\b", "a[b", "a]b", "a\"b", "a;b", "a:b", "a.b", "a<b", "a>b", "a,b", "a b", "a\tb",
        ] {
            assert!(MailNickname::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn display_name_rules() {
        assert!(DisplayName::parse("Library Assist").is_ok());
        assert!(DisplayName::parse(&"é".repeat(256)).is_ok(), "characters, not bytes");
        assert!(DisplayName::parse(&"a".repeat(257)).is_err());
        assert!(DisplayName::parse("   ").is_err());
    }

    #[test]
    fn new_group_parsing() {
        let owner = "99e44b05-c10b-4e95-a523-e2732bbaba1e";
        let g = NewGroup::parse(
            &json!({"displayName": "Library Assist", "mailNickname": "library", "owners": [owner, owner]}),
        )
        .unwrap();
        assert_eq!(g.owners.len(), 1, "duplicates collapse");
        assert_eq!(g.visibility, Visibility::Public);
        let body = g.graph_body("https://graph.microsoft.com/v1.0", None);
        assert_eq!(body["groupTypes"], json!(["Unified"]));
        assert_eq!(body["mailEnabled"], true);
        assert_eq!(body["securityEnabled"], false);
        assert_eq!(
            body["owners@odata.bind"],
            json!([format!("https://graph.microsoft.com/v1.0/users/{owner}")])
        );

        let err = |v: Value| NewGroup::parse(&v).unwrap_err().field;
        assert_eq!(err(json!({"mailNickname": "x"})), "displayName");
        assert_eq!(err(json!({"displayName": "x"})), "mailNickname");
        assert_eq!(
            err(json!({"displayName": "x", "mailNickname": "x", "visibility": "Hidden"})),
            "visibility"
        );
        assert_eq!(
            err(json!({"displayName": "x", "mailNickname": "x", "owners": ["nope"]})),
            "owners"
        );
        assert_eq!(
            err(json!({"displayName": "x", "mailNickname": "x", "members": "x"})),
            "members"
        );
        assert_eq!(err(json!({"displayName": 5, "mailNickname": "x"})), "displayName");
        assert_eq!(
            err(json!({"displayName": "x", "mailNickname": "x", "securityEnabled": true})),
            "body"
        );
        assert_eq!(err(json!([])), "body");
        let many: Vec<String> = (0..21).map(|i| format!("00000000-0000-0000-0000-{i:012}")).collect();
        assert_eq!(
            err(json!({"displayName": "x", "mailNickname": "x", "members": many})),
            "owners"
        );
    }

    #[test]
    fn update_parsing() {
        assert!(GroupUpdate::parse(&json!({})).is_err());
        assert!(GroupUpdate::parse(&json!({"displayName": null})).is_err());
        let u = GroupUpdate::parse(&json!({"visibility": "Private"})).unwrap();
        assert_eq!(u.graph_body(false), json!({"visibility": "Private"}));
        let u = GroupUpdate::parse(&json!({"description": null})).unwrap();
        assert_eq!(u.graph_body(true), json!({"description": null}));
    }
}
