//! ARCHITECTURE.md's first invariant, checked: data flows one way, so no top-level module of
//! `src/` reaches another that reaches it back (directly or around a longer circle). The
//! graph is read from the source: every `crate::module` a module's non-test code names.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level modules and the others each names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules: BTreeMap<String, Vec<std::path::PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        // The binary's command line and the crate root know every module by design.
        if ["main", "lib", "cli"].contains(&name.as_str()) {
            continue;
        }
        let mut files = Vec::new();
        collect(&path, &mut files);
        modules.entry(name).or_default().extend(files);
    }
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let mut graph = BTreeMap::new();
    for (name, files) in &modules {
        let mut uses = BTreeSet::new();
        for file in files {
            // Tests may reach anywhere (a module's `tests.rs` is its tests); the code may not.
            if file.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(file).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + "crate::".len()..];
                let used: String = rest.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                if used != *name && names.contains(&used) {
                    uses.insert(used);
                }
            }
        }
        graph.insert(name.clone(), uses);
    }
    graph
}

fn collect(path: &Path, files: &mut Vec<std::path::PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            collect(&entry.unwrap().path(), files);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        files.push(path.to_path_buf());
    }
}

/// A circle through `start`, if there is one.
fn circle(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(at).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, start, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    walk(graph, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn no_top_level_module_reaches_back_to_itself() {
    let graph = graph();
    assert!(graph.len() > 15, "the modules were found: {graph:?}");
    let circles: Vec<String> = graph.keys().filter_map(|m| circle(&graph, m)).map(|c| c.join(" → ")).collect();
    assert!(circles.is_empty(), "module circles (a change to the model or a move is due):\n{}", circles.join("\n"));
}

#[test]
fn the_model_and_the_salesforce_client_stand_alone() {
    let graph = graph();
    assert!(graph["model"].is_empty(), "model imports {:?}", graph["model"]);
    assert_eq!(graph["salesforce"], BTreeSet::from(["model".to_string()]), "salesforce imports only model");
    let decide_stage = ["decide", "rules", "agent", "knowledge", "script"];
    for m in decide_stage {
        for forbidden in ["act", "store", "report", "daemon"] {
            assert!(!graph[m].contains(forbidden), "{m} imports {forbidden}");
        }
    }
}
