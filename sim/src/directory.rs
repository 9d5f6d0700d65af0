//! The seeded directory: tenants, their users, and the GroupMgr app registration. Everything is
//! derived deterministically from names (UUID v5), so ids are stable across runs.

use uuid::Uuid;

const NAMESPACE: Uuid = Uuid::from_u128(0x6d33_3635_2d73_696d_2d64_6972_6563_746f);

/// A stable id for a named thing in the sim.
pub fn stable_id(kind: &str, name: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("{kind}:{name}").as_bytes())
}

/// The demo tenant every run is seeded with.
pub const CONTOSO: Uuid = Uuid::from_u128(0x6f1c2b4a_3d5e_4f70_8a9b_0c1d2e3f4a5b);
/// A second tenant, so that cross-tenant isolation can be tested.
pub const FABRIKAM: Uuid = Uuid::from_u128(0x9a8b7c6d_5e4f_4a3b_8c2d_1e0f9a8b7c6d);
/// The GroupMgr multi-tenant app registration (the API the UI calls).
pub const GROUPMGR_CLIENT_ID: Uuid = Uuid::from_u128(0x3c5e7a9b_1d2f_4a6b_8c0d_2e4f6a8b0c1d);
/// Its client secret in the sim. It has no meaning anywhere else.
pub const GROUPMGR_CLIENT_SECRET: &str = "sim-only-client-secret-not-a-real-credential";
/// The GroupMgr UI (a public SPA client that requests tokens for the API).
pub const UI_CLIENT_ID: Uuid = Uuid::from_u128(0x5b7d9f1a_3c5e_4b7d_9f1a_3c5e7b9d1f3a);
/// Every seeded user's password, for the resource-owner password grant the sim supports.
pub const USER_PASSWORD: &str = "sim-password";

/// The delegated scope the GroupMgr API exposes.
pub const API_SCOPE: &str = "access_as_user";
/// The app role that allows policy changes, sync and log reading.
pub const ADMIN_ROLE: &str = "GroupMgr.Admin";

#[derive(Debug, Clone)]
pub struct SimUser {
    pub id: Uuid,
    pub upn: String,
    pub display_name: String,
    /// GroupMgr app roles assigned to the user.
    pub app_roles: Vec<String>,
    /// Graph `accountEnabled`: a disabled account cannot sign in (people who left keep their
    /// account, disabled, for a while: "Delete or restore a user", Microsoft Learn).
    pub enabled: bool,
    /// Graph `userType` `Guest`: a B2B guest (`…#EXT#@` user principal name).
    pub guest: bool,
    /// Holds a directory admin role (Global / Groups Administrator): may manage every group
    /// and the tenant's group settings, not only groups they own.
    pub directory_admin: bool,
    /// A conditional-access policy requiring multifactor authentication applies to the user:
    /// on-behalf-of for a token without MFA fails with a claims challenge.
    pub mfa_policy: bool,
    /// The directory attributes a group naming policy may use.
    pub attributes: UserAttributes,
}

/// The user attributes the Microsoft 365 group naming policy resolves ("Enforce a naming
/// policy on Microsoft 365 groups in Microsoft Entra ID": `[Department]`, `[Company]`,
/// `[Office]`, `[StateOrProvince]`, `[CountryOrRegion]`, `[Title]`). Real directories leave
/// some of them empty.
#[derive(Debug, Clone, Default)]
pub struct UserAttributes {
    pub department: Option<String>,
    pub company_name: Option<String>,
    pub office_location: Option<String>,
    pub state: Option<String>,
    pub country: Option<String>,
    pub job_title: Option<String>,
}

impl UserAttributes {
    /// The value of a naming-policy attribute (`Department`, …), `None` for a name the
    /// policy does not support (it is then a fixed string).
    pub fn naming_attribute(&self, name: &str) -> Option<&str> {
        let v = match name.to_ascii_lowercase().as_str() {
            "department" => &self.department,
            "company" => &self.company_name,
            "office" => &self.office_location,
            "stateorprovince" => &self.state,
            "countryorregion" => &self.country,
            "title" => &self.job_title,
            _ => return None,
        };
        Some(v.as_deref().unwrap_or(""))
    }
}

#[derive(Debug, Clone)]
pub struct SimTenant {
    pub id: Uuid,
    pub name: String,
    pub domain: String,
    pub users: Vec<SimUser>,
    /// Whether an admin has consented to GroupMgr (its service principal exists). Revoking it
    /// makes on-behalf-of and app-only token requests fail with AADSTS65001 / AADSTS7000229.
    pub consented: bool,
    /// GroupMgr's application permissions an admin removed after consenting (Entra admin
    /// center, Enterprise applications → Permissions → Revoke). App-only tokens no longer
    /// carry them in `roles`, and Graph answers 403 to what needed them.
    pub removed_app_roles: Vec<String>,
    /// Application permissions an admin granted GroupMgr's service principal beyond what the
    /// app registration requests (Graph `POST /servicePrincipals/{id}/appRoleAssignedTo`,
    /// "Grant an appRoleAssignment to a service principal"): how a tenant that chooses
    /// automatic lifecycle actions grants `TeamSettings.ReadWrite.All` and
    /// `Group.ReadWrite.All`. App-only tokens carry them in `roles`.
    pub added_app_roles: Vec<String>,
}

impl SimTenant {
    pub fn user_by_upn(&self, upn: &str) -> Option<&SimUser> {
        self.users.iter().find(|u| u.upn.eq_ignore_ascii_case(upn))
    }

    pub fn user_by_id(&self, id: &Uuid) -> Option<&SimUser> {
        self.users.iter().find(|u| &u.id == id)
    }
}

fn user(domain: &str, alias: &str, display: &str, admin: bool) -> SimUser {
    let upn = format!("{alias}@{domain}");
    SimUser {
        id: stable_id("user", &upn),
        upn,
        display_name: display.to_string(),
        app_roles: if admin { vec![ADMIN_ROLE.to_string()] } else { vec![] },
        enabled: true,
        guest: false,
        directory_admin: admin,
        mfa_policy: false,
        attributes: UserAttributes::default(),
    }
}

/// A Contoso user with the attributes Microsoft's demo tenant gives them (department, title,
/// office); `department` may be missing, as it is for many users in real directories.
fn contoso_user(alias: &str, display: &str, department: Option<&str>, title: &str, office: &str) -> SimUser {
    SimUser {
        attributes: UserAttributes {
            department: department.map(str::to_string),
            company_name: Some("Contoso".into()),
            office_location: Some(office.into()),
            state: Some("WA".into()),
            country: Some("US".into()),
            job_title: Some(title.into()),
        },
        ..user("contoso.onmicrosoft.com", alias, display, false)
    }
}

/// The seeded tenants: Contoso (the demo tenant, eleven users, one GroupMgr admin, one user
/// under a conditional-access policy, two disabled accounts of people who left, one guest)
/// and Fabrikam.
pub fn seed() -> Vec<SimTenant> {
    let contoso = "contoso.onmicrosoft.com";
    let fabrikam = "fabrikam.onmicrosoft.com";
    vec![
        SimTenant {
            id: CONTOSO,
            name: "Contoso".into(),
            domain: contoso.into(),
            users: vec![
                user(contoso, "admin", "MOD Administrator", true),
                contoso_user("adelev", "Adele Vance", Some("Retail"), "Retail Manager", "18/2111"),
                contoso_user(
                    "alexw",
                    "Alex Wilber",
                    Some("Marketing"),
                    "Marketing Assistant",
                    "131/1104",
                ),
                contoso_user(
                    "meganb",
                    "Megan Bowen",
                    Some("Marketing"),
                    "Marketing Manager",
                    "12/1110",
                ),
                contoso_user("lynner", "Lynne Robbins", Some("Retail"), "Product Manager", "20/1109"),
                contoso_user("diegos", "Diego Siciliani", Some("HR"), "HR Manager", "14/1108"),
                contoso_user("isaiahl", "Isaiah Langer", Some("Sales"), "Sales Rep", "20/1101"),
                contoso_user(
                    "johannal",
                    "Johanna Lorenz",
                    Some("Engineering"),
                    "Senior Engineer",
                    "23/2102",
                ),
                // No department: the naming policy's [Department] resolves to nothing.
                contoso_user("leeg", "Lee Gu", None, "Director", "23/3101"),
                contoso_user(
                    "pattif",
                    "Patti Fernandez",
                    Some("Executive Management"),
                    "President",
                    "15/1102",
                ),
                // Real tenants have conditional access: Nestor's sign-ins must do MFA.
                SimUser {
                    mfa_policy: true,
                    ..contoso_user("nestorw", "Nestor Wilke", Some("Operations"), "Director", "36/2121")
                },
                // People who left: their accounts are disabled, not deleted yet, and still own
                // groups (a real tenant's ownerless groups are mostly theirs).
                SimUser {
                    enabled: false,
                    ..contoso_user("gradya", "Grady Archie", Some("R&D"), "Designer", "19/2109")
                },
                SimUser {
                    enabled: false,
                    ..contoso_user("miriamg", "Miriam Graham", Some("Sales"), "Director", "131/2103")
                },
                // A B2B guest, member of some groups (never suggested as an owner).
                SimUser {
                    guest: true,
                    ..user(contoso, "jon.doe_fabrikam.com#EXT#", "Jon Doe (Fabrikam)", false)
                },
            ],
            consented: true,
            removed_app_roles: Vec::new(),
            added_app_roles: Vec::new(),
        },
        SimTenant {
            id: FABRIKAM,
            name: "Fabrikam".into(),
            domain: fabrikam.into(),
            users: vec![
                user(fabrikam, "admin", "Fabrikam Admin", true),
                user(fabrikam, "kim", "Kim Akers", false),
                user(fabrikam, "pat", "Pat Coleman", false),
            ],
            consented: true,
            removed_app_roles: Vec::new(),
            added_app_roles: Vec::new(),
        },
    ]
}
