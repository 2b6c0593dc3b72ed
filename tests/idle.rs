//! Work the daemon does for nothing: after a burst, idle polls must cost one API call and
//! constant work, whatever came before (the overlap is anchored at the poll's time, not at
//! the newest row), and our own replies' echo is not decided or stored again.

mod common;

use std::time::Duration;

use casebridge::daemon::DaemonSettings;
use casebridge::sim::SimOptions;
use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_cycles_after_a_burst_cost_one_call_and_read_no_rows() {
    // Small pages, so that re-reading the burst would show as extra calls.
    let w = World::with_options(SimOptions { batch_size: 25, ..Default::default() }).await;
    for i in 0..120 {
        let body = json!({ "Subject": format!("Burst {i}"), "Description": "How do I recalibrate the gripper?", "Origin": "Web" });
        w.case_for_agent(body).await;
    }
    let settings = DaemonSettings {
        overlap: Duration::from_millis(300),
        initial_lookback: Duration::from_secs(3600),
        ..test_settings(None)
    };
    let mut daemon = w.daemon_with_settings(settings).await;

    let burst = daemon.cycle().await.unwrap();
    assert_eq!(burst.events.len(), 120, "every case of the burst is answered");
    let conversations = daemon.store().conversation_count();
    // The next poll sees our 120 replies' echo (the cases' stamps moved): read, not decided.
    let echo = daemon.cycle().await.unwrap();
    assert!(echo.events.is_empty(), "{:?}", echo.events);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    daemon.cycle().await.unwrap();
    for _ in 0..3 {
        let idle = daemon.cycle().await.unwrap();
        assert_eq!((idle.api_calls, idle.rows), (1, 0), "an idle cycle is one call and reads nothing");
    }
    assert_eq!(daemon.store().conversation_count(), conversations);
}

/// A restart right after a burst re-reads the overlap as the cycle it interrupted would,
/// at the same API calls, and builds none of the burst's cases again: the echoes of our
/// own replies are kept in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_after_a_burst_costs_what_the_interrupted_cycle_would() {
    let w = World::with_options(SimOptions { batch_size: 25, ..Default::default() }).await;
    for i in 0..60 {
        let body = json!({ "Subject": format!("Burst {i}"), "Description": "How do I recalibrate the gripper?", "Origin": "Web" });
        w.case_for_agent(body).await;
    }
    let settings = || DaemonSettings {
        overlap: Duration::from_secs(600),
        initial_lookback: Duration::from_secs(3600),
        ..test_settings(None)
    };
    let mut daemon = w.daemon_with_settings(settings()).await;
    assert_eq!(daemon.cycle().await.unwrap().events.len(), 60);
    // The next poll sees our replies' echo; the one after re-reads the overlap.
    daemon.cycle().await.unwrap();
    let reads = daemon.store().conversations_read();
    let interrupted = daemon.cycle().await.unwrap();
    assert_eq!(daemon.store().conversations_read(), reads, "an echo is skipped before its conversation is read");
    drop(daemon);

    let mut restarted = w.daemon_with_settings(settings()).await;
    let first = restarted.cycle().await.unwrap();
    assert!(first.events.is_empty(), "{:?}", first.events);
    assert_eq!((first.api_calls, first.rows), (interrupted.api_calls, interrupted.rows));
    // The cases still the agent user's (answered, not handed over) are re-read.
    assert!(interrupted.rows >= 5, "the overlap re-reads the burst ({} rows)", interrupted.rows);
    assert_eq!(restarted.store().conversations_read(), 0, "no case of the burst is built again");
}
