//! Workflow time from a `ManualClock`: timers and timeouts fire when the clock is moved, not
//! when wall time passes, so a month-long timer takes no time at all. Also runs that leave
//! memory (a run cache of two) and come back from the store at their next transition.

use std::sync::Arc;

use temporalio_protos::temporal::api::command::v1 as command_pb;
use temporalio_protos::temporal::api::enums::v1 as enums_pb;
use uhrwerk_server::clock::{Clock, ManualClock};

use crate::common::{self, TestServer, event_types, secs, unique};

use enums_pb::EventType as E;

const DAY_MS: i64 = 24 * 3600 * 1000;

fn start_timer(timer_id: &str, seconds: i64) -> command_pb::Command {
    command_pb::Command {
        command_type: enums_pb::CommandType::StartTimer as i32,
        attributes: Some(command_pb::command::Attributes::StartTimerCommandAttributes(
            command_pb::StartTimerCommandAttributes {
                timer_id: timer_id.into(),
                start_to_fire_timeout: Some(secs(seconds)),
            },
        )),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_month_long_timer_fires_when_the_clock_gets_there() {
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let server = TestServer::with_clock(clock.clone(), &[]).await;
    let queue = unique("tq");
    let workflow_id = unique("wf");
    let run_id = common::start_workflow(&server.client, &workflow_id, "Sleeper", &queue).await;
    let poller = server.poller(&queue);
    let task = poller.expect_workflow_task().await;
    poller.complete_workflow_task(&task.task_token, vec![start_timer("month", 30 * 24 * 3600)]).await.expect("timer");

    // One day short of the timer: no task.
    clock.advance(29 * DAY_MS);
    let early = poller.poll_workflow_task(std::time::Duration::from_millis(300)).await.expect("poll");
    assert!(early.task_token.is_empty(), "the timer is not due yet");

    clock.advance(DAY_MS);
    let fired = poller.expect_workflow_task().await;
    let types = event_types(&fired.history.clone().expect("history").events);
    assert_eq!(types.last(), Some(&E::WorkflowTaskStarted));
    assert!(types.contains(&E::TimerFired), "{types:?}");
    let history = common::full_history(&server.client, &workflow_id, &run_id).await;
    let fired_at =
        history.iter().find(|e| e.event_type == E::TimerFired as i32).and_then(|e| e.event_time).expect("time");
    assert_eq!(fired_at.seconds * 1000, clock.now_ms(), "the event carries workflow time");
    server.stop().await;
}

#[tokio::test]
async fn a_workflow_task_times_out_in_workflow_time() {
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let server = TestServer::with_clock(clock.clone(), &[]).await;
    let queue = unique("tq");
    let workflow_id = unique("wf");
    common::start_workflow(&server.client, &workflow_id, "Stuck", &queue).await;
    let poller = server.poller(&queue);
    let first = poller.expect_workflow_task().await;
    // The worker never answers; ten seconds of workflow time later the task is offered again.
    clock.advance(10_000);
    let retry = poller.expect_workflow_task().await;
    assert_eq!(retry.attempt, 2);
    assert_ne!(retry.task_token, first.task_token);
    server.stop().await;
}

#[tokio::test]
async fn runs_evicted_from_memory_come_back_from_the_store() {
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let server = TestServer::with_clock(clock.clone(), &["history.cacheMaxSize=2"]).await;
    let queue = unique("tq");
    let poller = server.poller(&queue);
    let ids: Vec<String> = (0..5).map(|i| unique(&format!("wf{i}"))).collect();
    for id in &ids {
        common::start_workflow(&server.client, id, "Sleeper", &queue).await;
        let task = poller.expect_workflow_task().await;
        poller.complete_workflow_task(&task.task_token, vec![start_timer("t", 60)]).await.expect("timer");
    }
    assert!(runs_in_memory(&server).await <= 2, "the run cache holds at most two runs");
    // Five runs, room for two: the timers of all five fire and each run continues.
    clock.advance(60_000);
    let mut finished = Vec::new();
    for _ in &ids {
        let task = poller.expect_workflow_task().await;
        let id = task.workflow_execution.as_ref().map(|e| e.workflow_id.clone()).expect("execution");
        poller.complete_workflow_task(&task.task_token, vec![common::complete_workflow(b"done")]).await.expect("done");
        finished.push(id);
    }
    finished.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(finished, expected);
    for id in &ids {
        assert_eq!(common::status(&server, id).await, enums_pb::WorkflowExecutionStatus::Completed as i32);
    }
    assert_eq!(runs_in_memory(&server).await, 0, "closed runs leave memory");
    server.stop().await;
}

/// The `uhrwerk_runs_in_memory` gauge, read from the metrics endpoint.
async fn runs_in_memory(server: &TestServer) -> i64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.running.metrics_addr.expect("metrics endpoint");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect to metrics");
    stream.write_all(b"GET /metrics HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").await.expect("send");
    let mut body = String::new();
    stream.read_to_string(&mut body).await.expect("read metrics");
    body.lines()
        .find_map(|line| line.strip_prefix("uhrwerk_runs_in_memory "))
        .and_then(|value| value.trim().parse().ok())
        .expect("the gauge is exported")
}
