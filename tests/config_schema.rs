//! The JSON Schemas in `schema/` (the config file, and each kind of rule file) are
//! generated from the Rust types; these tests keep them in step (run with UPDATE_SCHEMA=1
//! to rewrite them), and check the shipped example configuration against the types.

use std::path::Path;

use casebridge::config::Config;

#[test]
fn the_config_schema_in_schema_dir_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/config.schema.json");
    let generated = serde_json::to_string_pretty(&Config::json_schema()).unwrap() + "\n";
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "schema/config.schema.json is stale: run UPDATE_SCHEMA=1 cargo test --test config_schema"
    );
}

#[test]
fn the_rule_file_schemas_in_schema_dir_are_current() {
    use casebridge::rules::files::{Kind, json_schema};
    let mut stale = Vec::new();
    for kind in Kind::ALL {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("schema/rules-{}.schema.json", kind.name()));
        let generated = serde_json::to_string_pretty(&json_schema(kind)).unwrap() + "\n";
        if std::env::var_os("UPDATE_SCHEMA").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        if std::fs::read_to_string(&path).unwrap_or_default() != generated {
            stale.push(path.display().to_string());
        }
    }
    assert!(stale.is_empty(), "stale schemas {stale:?}: run UPDATE_SCHEMA=1 cargo test --test config_schema");
}

#[test]
fn the_example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/casebridge.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = Config::parse(&text, "casebridge.yaml", &[]).unwrap_or_else(|e| panic!("{e}"));
    let base = path.parent().unwrap();
    config.credentials(base).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.agent_user, "fin@acme.example");
}
