//! The shape ARCHITECTURE.md §1 draws, checked on the sources so it stays true: data flows
//! host → api/jobs → domain → clients, so the lower layers never import the upper ones; and
//! Graph's URLs and request shapes are built only in `src/microsoft/`.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, with its path relative to `src/`.
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root().join("src")).unwrap().display().to_string();
                out.push((rel, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    assert!(!out.is_empty(), "no sources under {}", dir.display());
    out
}

/// The code of a file without comment lines (doc comments may name Graph paths and layers)
/// and without its unit tests (which quote URLs as data).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let code = text.split("#[cfg(test)]").next().unwrap_or_default();
    code.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l))
}

/// The modules above the clients, store, crypto and domain in the data flow.
const UPPER: &[&str] = &["api", "host", "jobs", "app", "startup", "cli", "dev"];

/// The crate modules a file names: `crate::m…`, each `m` of a grouped `use crate::{m, …}`, and
/// `super::super::m` (a climb out of the layer). Comments are left out.
fn named_modules(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let code: Vec<(usize, &str)> = code_lines(text).collect();
    let joined: String = code.iter().map(|(_, l)| format!("{l}\n")).collect();
    let line_of = |offset: usize| code[joined[..offset].matches('\n').count()].0;
    for prefix in ["crate::", "super::super::"] {
        for (i, _) in joined.match_indices(prefix) {
            let rest = &joined[i + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `crate::{a, b::c, d}`: every first segment in the group.
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name: String = item
                        .trim()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    out.push((line_of(i), name));
                }
            } else {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                out.push((line_of(i), name));
            }
        }
    }
    out
}

#[test]
fn lower_layers_never_import_the_upper_ones() {
    let mut found = Vec::new();
    for layer in ["microsoft", "store", "crypto", "domain"] {
        for (file, text) in sources(&root().join("src").join(layer)) {
            for (n, module) in named_modules(&text) {
                if UPPER.contains(&module.as_str()) {
                    found.push(format!("src/{file}:{n}: crate::{module}"));
                }
            }
        }
    }
    assert!(found.is_empty(), "imports against the data flow:\n{}", found.join("\n"));
}

#[test]
fn the_layer_check_sees_every_form_of_import() {
    let text = "use crate::api::X;\nuse crate::{domain::A, jobs::B};\n// use crate::host::Y;\nfn f() { super::super::startup::g() }";
    let names: Vec<String> = named_modules(text).into_iter().map(|(_, m)| m).collect();
    assert_eq!(names, ["api", "domain", "jobs", "startup"]);
}

/// Pieces of a Graph request that only a Graph client writes: the version root, OData query
/// options, `$batch`, binding annotations and resource paths. (SharePoint's own site URLs,
/// `https://host/sites/name`, are data, not Graph paths: Graph's are `/sites/{id}`.)
const GRAPH_SHAPES: &[&str] = &[
    "/v1.0",
    "/beta/",
    "$batch",
    "$filter",
    "$select",
    "$expand",
    "$count",
    "$search",
    "$top",
    "$ref",
    "@odata.bind",
    "@odata.id",
    "/directoryObjects",
    "/sites/{",
    "/sites/root",
    "/teams/",
    "/lists/",
    "/items/",
    "/groupSettings",
    "/reports/",
    "deletedItems",
];

#[test]
fn only_the_graph_client_formats_graph_requests() {
    let mut found = Vec::new();
    for (file, text) in sources(&root().join("src")) {
        if file.starts_with("microsoft/") {
            continue;
        }
        for (n, line) in code_lines(&text) {
            let graph_group_path = line
                .match_indices("/groups/")
                .any(|(i, _)| !line[..i].ends_with("/api"));
            if graph_group_path || GRAPH_SHAPES.iter().any(|s| line.contains(s)) {
                found.push(format!("src/{file}:{n}: {}", line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "Graph request shapes outside src/microsoft/:\n{}",
        found.join("\n")
    );
}

#[test]
fn main_only_parses_and_dispatches() {
    let main = std::fs::read_to_string(root().join("src/main.rs")).unwrap();
    assert!(
        main.lines().count() <= 80,
        "src/main.rs has {} lines",
        main.lines().count()
    );
}
