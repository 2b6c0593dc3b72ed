//! The config file's JSON Schema in `schema/` is generated from the Rust types; this test
//! keeps it in step (run with UPDATE_SCHEMA=1 to rewrite it), and checks the shipped
//! example configuration against the types.

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
fn the_example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/casebridge.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let config = Config::parse(&text, "casebridge.yaml", &[]).unwrap_or_else(|e| panic!("{e}"));
    let base = path.parent().unwrap();
    config.credentials(base).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.agent_user, "fin@acme.example");
}
