//! A running casebridge as `casebridge run` starts it (`app::Service`): the daemon, the rule
//! watcher and the admin server under one shutdown signal.

use std::time::Duration;

use casebridge::app::{AppError, Service};

mod common;
use common::{demo_config, demo_sim};

/// The demo config with an admin server on a free loopback port and its token in a file.
fn config_with_admin(dir: &std::path::Path, url: &str) -> std::path::PathBuf {
    let path = demo_config(dir, url, "Tier 2 Support");
    std::fs::write(dir.join("admin-token"), "a-long-enough-admin-token").unwrap();
    let text =
        std::fs::read_to_string(&path).unwrap() + "admin: {listen: \"127.0.0.1:0\", token: {file: admin-token}}\n";
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shutdown_stops_the_poll_loop_and_the_admin_server() {
    let sim = demo_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let config = casebridge::config::Config::load(&config_with_admin(dir.path(), sim.url())).unwrap();
    let service = Service::start(&config, dir.path()).await.unwrap();
    let admin = service.admin_addr().expect("the admin server listens");
    let health = reqwest::get(format!("http://{admin}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let status = casebridge::app::status_path(&config, dir.path());
    let shutdown = service.shutdown();
    let running = tokio::spawn(service.run());
    // The poll loop runs: its first cycle writes the status file.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !status.exists() {
        assert!(std::time::Instant::now() < deadline, "no cycle wrote {}", status.display());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.trigger();
    let outcome = tokio::time::timeout(Duration::from_secs(30), running).await.expect("the loop stops").unwrap();
    assert!(outcome.is_ok(), "{outcome:?}");
    // The admin server stopped with it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while reqwest::get(format!("http://{admin}/healthz")).await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "the admin server still answers");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_secret_or_a_taken_admin_port_starts_nothing() {
    let sim = demo_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let path = config_with_admin(dir.path(), sim.url());
    std::fs::remove_file(dir.path().join("admin-token")).unwrap();
    let config = casebridge::config::Config::load(&path).unwrap();
    let Err(e) = Service::start(&config, dir.path()).await else { panic!("started without its admin token") };
    assert!(matches!(e, AppError::Config(_)) && e.to_string().contains("admin.token"), "{e}");
    assert_eq!(e.exit_code(), 2);
    assert!(!dir.path().join("store").exists(), "a refused start opened the store");

    // A port another process holds.
    std::fs::write(dir.path().join("admin-token"), "a-long-enough-admin-token").unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = casebridge::config::Config::load(&path).unwrap();
    config.admin.as_mut().unwrap().listen = taken.local_addr().unwrap();
    let Err(e) = Service::start(&config, dir.path()).await else { panic!("started on a taken port") };
    assert!(matches!(e, AppError::Listen(_)) && e.to_string().contains("cannot listen"), "{e}");
    assert_eq!(e.exit_code(), 1);
    assert!(!dir.path().join("store").exists(), "a refused start opened the store");
}
