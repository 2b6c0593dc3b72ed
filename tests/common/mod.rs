//! Shared set-up for the integration tests: an in-process simulator on a free loopback
//! port, and clients signed in to it.
#![allow(dead_code)]

use std::path::PathBuf;

use casebridge::salesforce::{Client, ClientConfig, Credentials, RetryPolicy, Secret};
use casebridge::sim::{SimOptions, Simulator, seed};

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Starts the simulator on the test org.
pub async fn start_sim(options: SimOptions) -> Simulator {
    let seed = seed::load_file(&fixture("org.yaml")).expect("the test org loads");
    Simulator::start("127.0.0.1:0".parse().unwrap(), seed, options).await.expect("the simulator starts")
}

pub fn password_credentials(username: &str, password: &str) -> Credentials {
    Credentials::Password {
        client_id: "test-app".into(),
        client_secret: Secret::new("test-secret"),
        username: username.into(),
        password: Secret::new(password),
    }
}

/// Retries quick enough for tests.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        base_delay: std::time::Duration::from_millis(5),
        max_delay: std::time::Duration::from_millis(50),
    }
}

/// A client signed in as the agent user through the refresh-token grant.
pub fn agent_client(sim: &Simulator) -> Client {
    let credentials = Credentials::RefreshToken {
        client_id: "test-app".into(),
        client_secret: Some(Secret::new("test-secret")),
        refresh_token: Secret::new("agent-refresh-token"),
    };
    client_with(sim, credentials)
}

pub fn client_with(sim: &Simulator, credentials: Credentials) -> Client {
    let mut config = ClientConfig::new(sim.url(), credentials);
    config.retry = fast_retry();
    Client::new(config).expect("client builds")
}

/// Reads the simulator's request log through its control API.
pub async fn sim_requests(sim: &Simulator) -> serde_json::Value {
    reqwest::get(format!("{}/__sim/requests", sim.url())).await.unwrap().json().await.unwrap()
}

pub async fn set_faults(sim: &Simulator, faults: serde_json::Value) {
    let r = reqwest::Client::new().post(format!("{}/__sim/faults", sim.url())).json(&faults).send().await.unwrap();
    assert_eq!(r.status(), 200, "faults accepted");
}
