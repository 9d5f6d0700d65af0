//! Microsoft 365 group input, parsed with Graph's own rules (graph-groups.md §3–4, §11), so
//! that a bad request is refused with the field and the rule before anything reaches Graph.

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

    /// Whether a mail nickname may hold `c`.
    pub fn allows(c: char) -> bool {
        c.is_ascii() && !c.is_ascii_control() && !Self::FORBIDDEN.contains(&c)
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

/// `visibility` of a Microsoft 365 group, as Graph spells it (and the API, which uses this
/// type for its request bodies and their schema).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
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

/// A valid request to create a Microsoft 365 group.
#[derive(Debug, Clone, PartialEq)]
pub struct NewGroup {
    display_name: DisplayName,
    mail_nickname: MailNickname,
    description: Option<Description>,
    visibility: Visibility,
    /// Distinct; with `members`, at most `MAX_CREATE_RELATIONSHIPS`.
    owners: Vec<ObjectId>,
    members: Vec<ObjectId>,
}

impl NewGroup {
    /// A new group from valid parts; repeated owners or members count once, and together
    /// they may be at most `MAX_CREATE_RELATIONSHIPS` (Graph's limit for a create).
    pub fn new(
        display_name: DisplayName,
        mail_nickname: MailNickname,
        description: Option<Description>,
        visibility: Visibility,
        owners: Vec<ObjectId>,
        members: Vec<ObjectId>,
    ) -> Result<Self, InvalidInput> {
        let (owners, members) = (distinct(owners), distinct(members));
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

    pub fn display_name(&self) -> &DisplayName {
        &self.display_name
    }
    pub fn mail_nickname(&self) -> &MailNickname {
        &self.mail_nickname
    }
    pub fn description(&self) -> Option<&Description> {
        self.description.as_ref()
    }
    pub fn visibility(&self) -> Visibility {
        self.visibility
    }
    /// The owners asked for (none: the creator becomes the owner).
    pub fn owners(&self) -> &[ObjectId] {
        &self.owners
    }
    pub fn members(&self) -> &[ObjectId] {
        &self.members
    }

    /// The same group under other names (those the tenant's naming policy gives it).
    pub fn renamed(self, display_name: DisplayName, mail_nickname: MailNickname) -> Self {
        Self {
            display_name,
            mail_nickname,
            ..self
        }
    }
}

fn distinct(ids: Vec<ObjectId>) -> Vec<ObjectId> {
    let mut out: Vec<ObjectId> = Vec::with_capacity(ids.len());
    for id in ids {
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// A valid update: only the properties given change, and at least one does.
/// `description: Some(None)` clears the description; the display name cannot be cleared.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupUpdate {
    display_name: Option<DisplayName>,
    description: Option<Option<Description>>,
    visibility: Option<Visibility>,
    mail_nickname: Option<MailNickname>,
}

impl GroupUpdate {
    /// An update of the properties given; refuses one that changes nothing.
    pub fn new(
        display_name: Option<DisplayName>,
        description: Option<Option<Description>>,
        visibility: Option<Visibility>,
        mail_nickname: Option<MailNickname>,
    ) -> Result<Self, InvalidInput> {
        if display_name.is_none() && description.is_none() && visibility.is_none() && mail_nickname.is_none() {
            return Err(InvalidInput::new(
                "body",
                "nothing to update: give displayName, description, visibility or mailNickname",
            ));
        }
        Ok(Self {
            display_name,
            description,
            visibility,
            mail_nickname,
        })
    }

    pub fn display_name(&self) -> Option<&DisplayName> {
        self.display_name.as_ref()
    }
    /// `Some(None)`: clear it.
    pub fn description(&self) -> Option<Option<&Description>> {
        self.description.as_ref().map(Option::as_ref)
    }
    pub fn visibility(&self) -> Option<Visibility> {
        self.visibility
    }
    pub fn mail_nickname(&self) -> Option<&MailNickname> {
        self.mail_nickname.as_ref()
    }

    /// The same update under other names (those the tenant's naming policy gives).
    pub fn renamed(self, display_name: Option<DisplayName>, mail_nickname: Option<MailNickname>) -> Self {
        Self {
            display_name,
            mail_nickname,
            ..self
        }
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
    fn new_groups_have_distinct_owners_and_at_most_twenty_relationships() {
        let id = |i: u32| ObjectId::parse("owners", &format!("00000000-0000-0000-0000-{i:012}")).unwrap();
        let new = |owners: Vec<ObjectId>, members: Vec<ObjectId>| {
            NewGroup::new(
                DisplayName::parse("Library Assist").unwrap(),
                MailNickname::parse("library").unwrap(),
                None,
                Visibility::Public,
                owners,
                members,
            )
        };
        assert_eq!(
            new(vec![id(1), id(1)], vec![]).unwrap().owners,
            vec![id(1)],
            "duplicates collapse"
        );
        assert!(new(vec![id(1)], (2..21).map(id).collect()).is_ok(), "20 in all");
        assert_eq!(new(vec![], (0..21).map(id).collect()).unwrap_err().field, "owners");
        assert_eq!(
            new(vec![id(1)], (0..19).chain([1]).map(id).collect())
                .unwrap()
                .members
                .len(),
            19,
            "a repeated member counts once"
        );
    }

    #[test]
    fn an_update_must_change_something() {
        assert_eq!(GroupUpdate::new(None, None, None, None).unwrap_err().field, "body");
        let clear = GroupUpdate::new(None, Some(None), None, None).unwrap();
        assert_eq!(clear.description(), Some(None), "clearing the description is a change");
    }
}
