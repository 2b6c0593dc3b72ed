//! Signed in for good under refresh-token rotation: the simulator's `rotating-app` (the test
//! org) answers every refresh with a new refresh token and voids the old one, as Salesforce
//! does with rotation on. casebridge keeps the newest, sealed, before using the access token
//! it came with: through many refreshes, across restarts, a SIGKILL included, and when
//! another process sharing the grant rotated it meanwhile.

mod common;

use std::process::Stdio;
use std::time::Duration;

use casebridge::auth::rotation::RotatedTokens;
use casebridge::model::Secret;
use casebridge::salesforce::auth::RefreshTokenStore;
use casebridge::salesforce::{Client, ClientConfig, Credentials};
use common::*;
use serde_json::json;

const ROTATING: &str = "rotating-refresh-token";

fn rotating_client(w: &World, store: Option<RotatedTokens>) -> Client {
    let credentials = Credentials::RefreshToken {
        client_id: "rotating-app".into(),
        client_secret: Some(Secret::new("rotating-secret")),
        refresh_token: Secret::new(ROTATING),
    };
    let mut config = ClientConfig::new(w.sim.url(), credentials);
    config.retry = fast_retry();
    config.refresh_tokens = store.map(|s| std::sync::Arc::new(s) as std::sync::Arc<dyn RefreshTokenStore>);
    Client::new(config).unwrap()
}

/// `casebridge run` with `config`, quiet.
fn run(config: &std::path::Path) -> std::process::Child {
    bin()
        .args(["run", "--config"])
        .arg(config)
        .env("CASEBRIDGE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn kept(w: &World) -> RotatedTokens {
    RotatedTokens::Configured { store: w.path().join("store"), configured: Secret::new(ROTATING) }
}

#[tokio::test]
async fn many_refreshes_and_a_restart_stay_signed_in() {
    let w = World::new().await;
    // Every second call finds its session expired: each one after signs in again.
    set_faults(&w.sim, json!({ "expire_sessions_every": 2 })).await;
    let client = rotating_client(&w, Some(kept(&w)));
    for _ in 0..40 {
        client.limits().await.expect("still signed in");
    }
    let issued = w.sim.refresh_tokens();
    let current = kept(&w).load().expect("the newest token is kept");
    assert!(issued.contains(&current.expose().to_string()), "the kept token is the org's live one");
    assert!(!issued.contains(&ROTATING.to_string()), "the configured token was voided by the first refresh");
    let file = std::fs::read_to_string(w.path().join("store.refresh-token.json")).unwrap();
    assert!(!file.contains(current.expose()), "kept sealed: {file}");

    // A restart (a new process) with the same configuration reads the kept token.
    let restarted = rotating_client(&w, Some(kept(&w)));
    restarted.limits().await.expect("signed in after a restart");

    // Without a place to keep it, a restart is locked out: what the store prevents.
    let forgetful = rotating_client(&w, None);
    let e = forgetful.limits().await.unwrap_err();
    assert_eq!(e.error_code(), "invalid_grant", "{e}");
}

/// Two processes on one grant (the daemon, and `casebridge setup check` beside it): the one
/// whose token the other rotated reads the newer one back and carries on.
#[tokio::test]
async fn a_token_another_process_rotated_is_read_back() {
    let w = World::new().await;
    let daemon = rotating_client(&w, Some(kept(&w)));
    daemon.limits().await.unwrap();
    let beside = rotating_client(&w, Some(kept(&w)));
    beside.limits().await.unwrap();
    // The daemon's session expires; its own token was voided by the other's refresh. The
    // simulator revokes the whole grant if a voided token is ever sent (a stolen token).
    set_faults(&w.sim, json!({ "expire_sessions_every": 1 })).await;
    daemon.limits().await.expect("the daemon reads the rotated token back");
    beside.limits().await.expect("and so does the other");
    // Both refreshing at once: one waits for the other's new token.
    for _ in 0..5 {
        let (a, b) = tokio::join!(daemon.limits(), beside.limits());
        a.expect("still signed in");
        b.expect("still signed in");
    }
}

/// `casebridge run` on the rotating grant, sessions expiring every few calls, killed with
/// SIGKILL right after a rotation and started again: it still signs in and answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_survives_a_kill_after_a_rotation() {
    let w = World::new().await;
    let config = w.config("50ms", "");
    let text = std::fs::read_to_string(&config).unwrap().replace("client_id: test-app", "client_id: rotating-app");
    std::fs::write(&config, text).unwrap();
    std::fs::write(w.path().join("secret"), "rotating-secret").unwrap();
    std::fs::write(w.path().join("refresh"), ROTATING).unwrap();
    set_faults(&w.sim, json!({ "expire_sessions_every": 5 })).await;
    for round in 0..3 {
        let mut child = run(&config);
        let rotated = w.sim.refresh_tokens();
        let seen = rotated.clone();
        wait_within(Duration::from_secs(20), "a rotation", || w.sim.refresh_tokens() != seen);
        // Let the rotation land, hold the sessions still, then kill it without warning.
        set_faults(&w.sim, json!({ "expire_sessions_every": 0 })).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        set_faults(&w.sim, json!({ "expire_sessions_every": 5 })).await;
        assert_ne!(rotated, w.sim.refresh_tokens(), "round {round} rotated");
    }
    let case_id = w
        .new_case(json!({ "Subject": "Gripper drifts", "Description": "How do I recalibrate the gripper?", "OwnerId": w.id("agent") }))
        .await;
    let mut child = run(&config);
    let sim = &w.sim;
    let agent = w.id("agent");
    wait_within(Duration::from_secs(30), "a reply after the restarts", || {
        sim.with_org(|org| {
            org.all("CaseComment")
                .any(|c| c.str("ParentId") == Some(case_id.as_str()) && c.str("CreatedById") == Some(agent.as_str()))
        })
    });
    child.kill().unwrap();
    child.wait().unwrap();
}
