//! The `casebridge` command line, run as a user would run it.

use std::process::Command;

fn casebridge(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_casebridge")).args(args).output().expect("casebridge runs")
}

#[test]
fn a_broken_org_seed_is_refused_with_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("casebridge-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.yaml");
    std::fs::write(&path, "users:\n  - key: a\n    username: [unclosed\n").unwrap();
    let out = casebridge(&["sim", "--org", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("{}:", path.display())), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");

    std::fs::write(
        &path,
        "users: [{key: a, username: a@x.example, last_name: A}]\nrecords:\n  Case: [{Status: Bogus}]\n",
    )
    .unwrap();
    let out = casebridge(&["sim", "--org", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("records.Case[0]: INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_missing_org_seed_says_what_to_do() {
    let out = casebridge(&["sim", "--org", "/nonexistent/org.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read /nonexistent/org.yaml"), "{stderr}");
}

#[test]
fn help_describes_the_simulator_with_an_example() {
    let out = casebridge(&["sim", "--help"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Example: casebridge sim"), "{stdout}");
    assert!(stdout.contains("--batch-size"), "{stdout}");
}

#[test]
fn the_shipped_demo_org_loads() {
    let seed = casebridge::sim::seed::load_file(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/demo/org.yaml"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(seed.keys.contains_key("fin") && seed.keys.contains_key("tier2"));
}

#[test]
fn the_demo_plays_its_scenario_and_finishes() {
    let started = std::time::Instant::now();
    let out = casebridge(&["demo"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("replied"), "{stdout}");
    assert!(stdout.contains("handed over  to Tier 2 Support by rule customer_asks_for_a_human"), "{stdout}");
    assert!(stdout.contains("handed over  to Tier 2 Support by rule agent_cannot_help"), "{stdout}");
    assert!(stdout.contains("emails sent              1"), "{stdout}");
    assert!(stdout.contains("In-Reply-To: <e42-report@initech.example>"), "{stdout}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}
