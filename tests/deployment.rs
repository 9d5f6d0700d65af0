//! The deployment side agrees with the code: the app registration (infra/app-registration)
//! exposes the scope and role the gate checks and asks for v2 tokens; the README justifies
//! every permission it requests; every Bicep module is used by main.bicep and every
//! environment has a parameters file.

use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn the_app_registration_matches_the_gate_and_the_readme() {
    let app: serde_json::Value = serde_json::from_str(&read("infra/app-registration/app.json")).unwrap();
    assert_eq!(
        app["signInAudience"], "AzureADMultipleOrgs",
        "customers sign in from their own tenants"
    );
    assert_eq!(app["requestedAccessTokenVersion"], 2, "the gate accepts v2 tokens only");
    assert_eq!(app["scope"]["value"], "access_as_user");
    let roles: Vec<&str> = app["appRoles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect();
    assert_eq!(roles, [groupmgr::auth::ADMIN_ROLE]);

    // Each requested permission appears in the README's permission table with a reason.
    let readme = read("README.md");
    let table: Vec<&str> = readme
        .split("## Permissions")
        .nth(1)
        .expect("a Permissions section")
        .lines()
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with('|'))
        .collect();
    for (resource, spec) in app["permissions"].as_object().unwrap() {
        for (kind, label) in [("delegated", "delegated"), ("application", "application")] {
            for perm in spec[kind].as_array().unwrap() {
                let perm = perm.as_str().unwrap();
                let row = table
                    .iter()
                    .find(|l| l.contains(&format!("`{perm}`")) && l.contains(label))
                    .unwrap_or_else(|| panic!("README lists {resource} {perm} ({label})"));
                let reason = row.rsplit('|').nth(1).unwrap_or("").trim();
                assert!(reason.len() > 20, "{perm}: a reason, not {reason:?}");
            }
        }
    }
}

#[test]
fn every_bicep_module_is_deployed_and_every_environment_has_parameters() {
    let main = read("infra/main.bicep");
    for entry in std::fs::read_dir(root().join("infra/modules")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(main.contains(&format!("'modules/{name}'")), "main.bicep uses {name}");
    }
    for env in ["dev", "prod"] {
        let params = read(&format!("infra/{env}.bicepparam"));
        assert!(params.contains("using 'main.bicep'"), "{env}");
        assert!(params.contains(&format!("param environmentName = '{env}'")), "{env}");
    }
}
