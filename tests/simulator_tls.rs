//! The simulator over HTTPS (`SimOptions::tls`, `casebridge sim --tls`): a client that
//! trusts only the authority the simulator writes out reaches it under every local name,
//! signs in, and is handed `https://` instance URLs; the certificate file goes away with
//! the simulator.

mod common;

use casebridge::sim::{SimOptions, Simulator, seed};
use common::*;
use serde_json::{Value, json};

fn trusting(ca_pem: &str) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    reqwest::Client::builder().add_root_certificate(ca).build().unwrap()
}

#[tokio::test]
async fn https_with_a_certificate_for_every_local_name() {
    let sim = start_sim(SimOptions { tls: true, ..Default::default() }).await;
    let port = sim.url().rsplit(':').next().unwrap().to_string();
    assert_eq!(sim.url(), format!("https://127.0.0.1:{port}"));
    let pem = sim.ca_pem().unwrap().to_string();
    let file = sim.ca_file().unwrap().to_path_buf();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), pem);

    let http = trusting(&pem);
    let signed_in = password_token(&http, sim.url()).await;
    assert_eq!(signed_in["instance_url"], json!(sim.url()), "instance URLs use https");
    assert!(signed_in["id"].as_str().unwrap().starts_with(&format!("{}/id/", sim.url())));
    let rows: Value = http
        .get(format!("https://localhost:{port}/services/data/v59.0/query?q=SELECT+Id+FROM+Case"))
        .bearer_auth(signed_in["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = rows["records"][0]["attributes"]["url"].as_str().unwrap();
    assert!(url.starts_with("/services/data/v59.0/sobjects/Case/"), "record URLs stay relative: {url}");

    // A client that does not trust the authority is refused; plain HTTP gets no answer.
    assert!(reqwest::Client::new().get(format!("{}/services/data", sim.url())).send().await.is_err());
    let plain = reqwest::Client::new().get(format!("http://127.0.0.1:{port}/services/data")).send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    drop(sim);
    assert!(!file.exists(), "the certificate file is removed when the simulator stops");
}

#[tokio::test]
async fn https_on_ipv6_loopback() {
    let seed = seed::load_file(&fixture("org.yaml")).unwrap();
    let options = SimOptions { tls: true, ..Default::default() };
    let Ok(sim) = Simulator::start("[::1]:0".parse().unwrap(), seed, options).await else {
        eprintln!("skipped: no IPv6 loopback on this machine");
        return;
    };
    assert!(sim.url().starts_with("https://[::1]:"), "{}", sim.url());
    let signed_in = password_token(&trusting(sim.ca_pem().unwrap()), sim.url()).await;
    assert_eq!(signed_in["instance_url"], json!(sim.url()));
}
