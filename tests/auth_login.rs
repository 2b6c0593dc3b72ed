//! `casebridge auth login` end to end: the OAuth web-server flow against the simulator (this
//! test plays the browser), the refresh token and app secret stored sealed — never in plain
//! text in the store's files — and the daemon running on the stored credentials.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use casebridge::sim::value::Value;
use casebridge::vault::Vault;

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(files_under(&p)) } else { out.push(p) }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_stores_sealed_credentials_that_the_daemon_runs_on() {
    let seed = casebridge::sim::seed::load(casebridge::sim::DEMO_ORG, "demo").unwrap();
    let sim =
        casebridge::sim::Simulator::start("127.0.0.1:0".parse().unwrap(), seed, Default::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::write(dir.path().join("secret"), "demo-secret").unwrap();
    std::fs::write(dir.path().join("key"), Vault::generate_key()).unwrap();
    let config = dir.path().join("casebridge.yaml");
    std::fs::write(
        &config,
        format!(
            "org:\n  login_url: {}\n  auth: {{grant: stored, client_id: casebridge-demo, client_secret: {{file: secret}}}}\n\
             credentials_key: {{file: key}}\nagent_user: fin@acme.example\nhandover: {{default_target: Tier 2 Support}}\n\
             poll: {{interval: 100ms}}\nagent: {{backend: knowledge_base, dir: {}}}\nrules_dir: {}\nstore_path: store\n",
            sim.url(),
            root.join("examples/demo/help-center").display(),
            root.join("tests/fixtures/rules").display()
        ),
    )
    .unwrap();

    let mut login = Command::new(env!("CARGO_BIN_EXE_casebridge"))
        .args(["auth", "login", "--callback", "127.0.0.1:0", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(login.stdout.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().expect("the login prints an address").unwrap();
        if line.starts_with("http") {
            break line;
        }
    };
    assert!(address.starts_with(&format!("{}/services/oauth2/authorize?", sim.url())), "{address}");

    // The browser: the sign-in page, then the form, following the redirect to casebridge.
    let browser = reqwest::Client::new();
    let page = browser.get(&address).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Log In and Allow"));
    let mut form: Vec<(String, String)> = url::Url::parse(&address).unwrap().query_pairs().into_owned().collect();
    form.push(("username".into(), "fin@acme.example".into()));
    form.push(("password".into(), "demo-password".into()));
    let done = browser.post(format!("{}/services/oauth2/authorize", sim.url())).form(&form).send().await.unwrap();
    let text = done.text().await.unwrap();
    assert!(text.contains("casebridge is now connected"), "{text}");

    let status = tokio::task::block_in_place(|| login.wait()).unwrap();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(status.success(), "{rest:?}");
    assert!(rest.iter().any(|l| l.starts_with("Signed in as 005")), "{rest:?}");

    // Nothing secret in plain text anywhere in the store.
    let issued: Vec<String> = sim.refresh_tokens().into_iter().filter(|t| t != "demo-refresh-token").collect();
    assert_eq!(issued.len(), 1, "the flow issued one refresh token");
    for file in files_under(&dir.path().join("store")) {
        let bytes = std::fs::read(&file).unwrap();
        for secret in [issued[0].as_bytes(), b"demo-secret".as_slice()] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret),
                "{} holds a secret in plain text",
                file.display()
            );
        }
    }

    // A wrong key cannot use them.
    let good_key = std::fs::read_to_string(dir.path().join("key")).unwrap();
    std::fs::write(dir.path().join("key"), Vault::generate_key()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_casebridge"))
        .args(["setup", "check", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be opened"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(dir.path().join("key"), good_key).unwrap();

    // The daemon signs in with them and answers.
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_casebridge"))
        .args(["run", "--config"])
        .arg(&config)
        .env("CASEBRIDGE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let fin = sim.id_of("fin").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let replies = sim.with_org(|org| {
            org.all("CaseComment")
                .filter(|c| c.str("CreatedById") == Some(fin.as_str()) && c.get("IsPublished") == &Value::Bool(true))
                .count()
        });
        if replies >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the daemon answered on the stored credentials");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
}
