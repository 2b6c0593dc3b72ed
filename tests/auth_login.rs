//! `casebridge auth login` end to end: the OAuth web-server flow with PKCE against the
//! simulator (this test plays the browser), the refresh token and app secret stored sealed —
//! never in plain text in the store's files — and the daemon running on the stored
//! credentials. And the simulator's side of PKCE on the wire: a challenge required when the
//! app requires it, and a verifier always checked when a challenge was sent.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use casebridge::auth::vault::Vault;
use casebridge::sim::value::Value;

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
    let mut seed = casebridge::sim::seed::load(casebridge::sim::DEMO_ORG, "demo").unwrap();
    // Like an External Client App, the app requires PKCE: a login without it cannot pass.
    seed.apps.iter_mut().for_each(|a| a.require_pkce = true);
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
    let sent: std::collections::HashMap<String, String> =
        url::Url::parse(&address).unwrap().query_pairs().into_owned().collect();
    assert_eq!(sent["code_challenge_method"], "S256");
    assert_eq!(sent["code_challenge"].len(), 43, "BASE64URL(SHA256(verifier))");

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

/// Plays the browser: signs in on the authorization page and returns the redirect's `code`,
/// or the refusal's status and body.
async fn authorize(sim: &casebridge::sim::Simulator, challenge: Option<&str>) -> Result<String, (u16, String)> {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut form = vec![
        ("response_type", "code"),
        ("client_id", "test-app"),
        ("redirect_uri", "http://127.0.0.1:9/callback"),
        ("state", "s1"),
        ("username", "agent@test.example"),
        ("password", "agent-pw"),
    ];
    if let Some(c) = challenge {
        form.extend([("code_challenge", c), ("code_challenge_method", "S256")]);
    }
    let page = http.get(format!("{}/services/oauth2/authorize", sim.url())).query(&form[..4]).query(&form[6..]);
    let page = page.send().await.unwrap();
    if page.status() != 200 {
        return Err((page.status().as_u16(), page.text().await.unwrap()));
    }
    let answer = http.post(format!("{}/services/oauth2/authorize", sim.url())).form(&form).send().await.unwrap();
    let status = answer.status().as_u16();
    let Some(location) = answer.headers().get("location").map(|l| l.to_str().unwrap().to_string()) else {
        return Err((status, answer.text().await.unwrap()));
    };
    let url = url::Url::parse(&location).unwrap();
    Ok(url.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned())
}

async fn redeem(sim: &casebridge::sim::Simulator, code: &str, verifier: Option<&str>) -> (u16, serde_json::Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", "test-app"),
        ("client_secret", "test-secret"),
        ("redirect_uri", "http://127.0.0.1:9/callback"),
    ];
    form.extend(verifier.map(|v| ("code_verifier", v)));
    let answer = reqwest::Client::new().post(format!("{}/services/oauth2/token", sim.url())).form(&form).send().await;
    let answer = answer.unwrap();
    (answer.status().as_u16(), answer.json().await.unwrap())
}

#[tokio::test]
async fn pkce_is_required_when_the_app_requires_it_and_always_verified() {
    // RFC 7636 appendix B: this verifier's S256 challenge.
    let (verifier, challenge) =
        ("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    let refused = serde_json::json!({ "error": "invalid_grant", "error_description": "invalid code verifier" });
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for require_pkce in [true, false] {
        let mut seed = casebridge::sim::seed::load_file(&root.join("tests/fixtures/org.yaml")).unwrap();
        seed.apps.iter_mut().for_each(|a| a.require_pkce = require_pkce);
        let sim =
            casebridge::sim::Simulator::start("127.0.0.1:0".parse().unwrap(), seed, Default::default()).await.unwrap();
        if require_pkce {
            let missing = "error=invalid_request&error_description=missing required code challenge";
            assert_eq!(authorize(&sim, None).await, Err((400, missing.to_string())));
        } else {
            let code = authorize(&sim, None).await.unwrap();
            assert_eq!(redeem(&sim, &code, None).await.0, 200, "no challenge, no verifier needed");
        }
        // A challenge sent is always checked: a missing or wrong verifier is refused.
        let code = authorize(&sim, Some(challenge)).await.unwrap();
        assert_eq!(redeem(&sim, &code, None).await, (400, refused.clone()), "require_pkce: {require_pkce}");
        let code = authorize(&sim, Some(challenge)).await.unwrap();
        let wrong = &verifier.replace('d', "e");
        assert_eq!(redeem(&sim, &code, Some(wrong)).await, (400, refused.clone()), "require_pkce: {require_pkce}");
        let code = authorize(&sim, Some(challenge)).await.unwrap();
        let (status, body) = redeem(&sim, &code, Some(verifier)).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["refresh_token"].is_string() && body["access_token"].is_string(), "{body}");
    }
}
