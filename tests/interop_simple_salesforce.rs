//! Interoperability: the `casebridge sim --tls` binary driven by simple-salesforce, a widely
//! used third-party Salesforce client (Python), unpatched: it builds `https://` URLs and
//! trusts the simulator's certificate authority through `REQUESTS_CA_BUNDLE`. CI installs
//! it (`.ci/run`); elsewhere the test says how to install it and skips.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Kills the simulator when the test ends, however it ends.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn simple_salesforce_available() -> bool {
    Command::new("python3")
        .args(["-c", "import simple_salesforce"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn simple_salesforce_works_against_the_simulator() {
    if !simple_salesforce_available() {
        assert!(std::env::var_os("CI").is_none(), "CI must install simple-salesforce (see .ci/run)");
        eprintln!("skipped: python3 -m pip install simple-salesforce==1.12.10 to run this test");
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let child = Command::new(env!("CARGO_BIN_EXE_casebridge"))
        .args(["sim", "--tls", "--listen", "127.0.0.1:0", "--batch-size", "200", "--org"])
        .arg(format!("{root}/tests/fixtures/org.yaml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("casebridge sim starts");
    let mut sim = ChildGuard(child);
    let mut stdout = BufReader::new(sim.0.stdout.take().unwrap());
    let mut line = |prefix: &str| {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        line.trim()
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("casebridge sim printed {line:?}, not {prefix:?}..."))
            .to_string()
    };
    let url = line("casebridge sim listening on ");
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let ca_file = line("casebridge sim certificate authority: ");
    assert!(std::fs::read_to_string(&ca_file).unwrap().starts_with("-----BEGIN CERTIFICATE-----"));

    let output = Command::new("python3")
        .arg(format!("{root}/tests/interop/simple_salesforce_check.py"))
        .arg(&url)
        .env("REQUESTS_CA_BUNDLE", &ca_file)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "simple-salesforce checks failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("interop: all checks passed"), "{stdout}");
}
