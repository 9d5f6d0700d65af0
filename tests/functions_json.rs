//! `host.json` and every `functions/*/function.json` validate against the schemas in
//! `../shared/reference/schemas/` (SchemaStore copies), and agree with the handler's route
//! table: every HTTP function's route and methods are served, every other function has an
//! invocation handler, and nothing is served that the host would not forward.

mod common;

use common::skip::{OnCi, skip};

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use groupmgr::host::router::{self, HTTP_FUNCTIONS, INVOCATION_FUNCTIONS, Resolved};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schema(name: &str) -> Value {
    // The reference schemas live beside the repository; a copy is kept in-tree so that CI on
    // a fresh clone has them too.
    let in_tree = root().join("tests/schemas").join(name);
    serde_json::from_str(&std::fs::read_to_string(&in_tree).unwrap_or_else(|e| panic!("{}: {e}", in_tree.display())))
        .unwrap()
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The function.json schema declares draft-04 but uses `const` (a draft-06 keyword) inside
/// its `sqlBinding`/`mySqlBinding` branches; read as strict draft-04 those branches match any
/// binding and every `oneOf` becomes ambiguous, so even Microsoft's documented example fails
/// (see `the_reference_function_schema_needs_draft6_semantics`). It is therefore evaluated
/// with draft-06 semantics, which is what its authors' validator does.
fn validate(schema: &Value, doc: &Value, what: &str) {
    let validator = if schema["$schema"].as_str().is_some_and(|s| s.contains("draft-04")) {
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft6)
            .build(schema)
    } else {
        jsonschema::validator_for(schema)
    }
    .expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what} does not validate:\n{}", errors.join("\n"));
}

fn function_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("functions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("function.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn in_tree_schemas_are_the_reference_copies() {
    let reference = root().join("../shared/reference/schemas");
    if !reference.is_dir() {
        // The reference folder sits beside a checkout that has it (ARCHITECTURE.md), not
        // necessarily beside CI's clone; the tests below validate against the copies.
        skip(
            "in_tree_schemas_are_the_reference_copies",
            "no ../shared/reference/schemas beside this checkout",
            OnCi::MayLack,
        );
        return;
    }
    for name in ["host.json", "function.json"] {
        let text = std::fs::read_to_string(reference.join(name)).unwrap_or_else(|e| panic!("reference {name}: {e}"));
        let ours = std::fs::read_to_string(root().join("tests/schemas").join(name)).unwrap();
        assert_eq!(text, ours, "tests/schemas/{name} differs from the reference copy");
    }
}

#[test]
fn host_json_validates_and_forwards_http_to_the_binary() {
    let host = read(&root().join("host.json"));
    validate(&schema("host.json"), &host, "host.json");
    assert_eq!(host["version"], "2.0");
    assert_eq!(host["customHandler"]["enableForwardingHttpRequest"], true);
    assert_eq!(
        host["customHandler"]["description"]["defaultExecutablePath"],
        "groupmgr"
    );
    assert_eq!(
        host["extensionBundle"]["id"],
        "Microsoft.Azure.Functions.ExtensionBundle"
    );
    assert_eq!(host["extensionBundle"]["version"], "[4.*, 5.0.0)");
    assert!(host["functionTimeout"].is_string());
    assert!(host["extensions"]["queues"]["maxDequeueCount"].is_u64());
}

#[test]
fn the_reference_function_schema_needs_draft6_semantics() {
    // The documented HTTP example (functions-custom-handler.md §6), verbatim.
    let documented: Value = serde_json::from_str(
        r#"{"bindings":[{"type":"httpTrigger","authLevel":"function","direction":"in","name":"req","methods":["get","post"]},{"type":"http","direction":"out","name":"res"}]}"#,
    )
    .unwrap();
    let s = schema("function.json");
    let strict4 = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .build(&s)
        .unwrap();
    assert!(
        !strict4.is_valid(&documented),
        "if this passes, the schema was fixed: validate as declared"
    );
    validate(&s, &documented, "the documented example");
}

#[test]
fn every_function_json_validates() {
    let s = schema("function.json");
    let dirs = function_dirs();
    assert!(!dirs.is_empty());
    for dir in dirs {
        validate(&s, &read(&dir.join("function.json")), &dir.display().to_string());
    }
}

#[test]
fn function_definitions_and_the_router_agree() {
    let mut http_seen = BTreeSet::new();
    let mut other_seen = BTreeSet::new();
    for dir in function_dirs() {
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        let doc = read(&dir.join("function.json"));
        let bindings = doc["bindings"].as_array().unwrap();
        let trigger = bindings
            .iter()
            .find(|b| b["type"].as_str().unwrap().ends_with("Trigger"))
            .unwrap();
        if trigger["type"] == "httpTrigger" {
            // Forwarding requires HTTP-only functions: the trigger and an http output, nothing else.
            assert_eq!(
                bindings.len(),
                2,
                "{name}: forwarding needs exactly httpTrigger + http out"
            );
            assert!(
                bindings.iter().any(|b| b["type"] == "http" && b["direction"] == "out"),
                "{name}"
            );
            assert_eq!(
                trigger["authLevel"], "anonymous",
                "{name}: the Entra gate is the authentication"
            );
            let route = trigger["route"].as_str().unwrap();
            let mut methods: Vec<String> = trigger["methods"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_str().unwrap().to_ascii_uppercase())
                .collect();
            methods.sort();
            let f = HTTP_FUNCTIONS
                .iter()
                .find(|f| f.name == name)
                .unwrap_or_else(|| panic!("{name} is not in the route table"));
            assert_eq!(f.route, route, "{name}: route differs from the router");
            let mut served: Vec<String> = f.methods.iter().map(|(m, _)| m.to_string()).collect();
            served.sort();
            assert_eq!(methods, served, "{name}: methods differ from the router");
            // And the router resolves a concrete path of this route to this function.
            let path = format!("/api/{}", route.replace("{id}", "a").replace("{userId}", "b"));
            for m in &methods {
                match router::resolve(m, &path) {
                    Resolved::Http { function, .. } => assert_eq!(function, name, "{m} {path}"),
                    other => panic!("{m} {path} resolves to {other:?}"),
                }
            }
            http_seen.insert(name);
        } else {
            assert!(
                INVOCATION_FUNCTIONS.iter().any(|(n, _)| *n == name),
                "{name} has no invocation handler"
            );
            assert!(
                matches!(router::resolve("POST", &format!("/{name}")), Resolved::Invocation(..)),
                "{name}"
            );
            other_seen.insert(name);
        }
    }
    let table_http: BTreeSet<String> = HTTP_FUNCTIONS.iter().map(|f| f.name.to_string()).collect();
    let table_other: BTreeSet<String> = INVOCATION_FUNCTIONS.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(
        http_seen, table_http,
        "router serves HTTP functions without a function.json (or vice versa)"
    );
    assert_eq!(other_seen, table_other);
}

#[test]
fn timer_and_queue_bindings_match_the_contract() {
    let sched = read(&root().join("functions/SyncScheduler/function.json"));
    let b = sched["bindings"].as_array().unwrap();
    let timer = b.iter().find(|x| x["type"] == "timerTrigger").unwrap();
    assert_eq!(
        timer["schedule"], "0 */15 * * * *",
        "every 15 minutes (NCRONTAB, 6 fields)"
    );
    let out = b.iter().find(|x| x["type"] == "queue").unwrap();
    assert_eq!(out["name"], groupmgr::host::functions::TENANT_SYNC_OUTPUT);
    assert_eq!(out["queueName"], "tenant-sync");
    let sync = read(&root().join("functions/TenantSync/function.json"));
    let trig = &sync["bindings"][0];
    assert_eq!(trig["type"], "queueTrigger");
    assert_eq!(trig["queueName"], "tenant-sync");
}
