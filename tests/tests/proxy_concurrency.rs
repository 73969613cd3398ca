//! Many sessions at once through one gateway: every answer and every notification reaches the
//! client it belongs to, although every client numbers its requests and progress tokens alike.

use std::collections::HashSet;

use futures::future::join_all;
use serde_json::json;
use tollgate_tests::backend::Backend;
use tollgate_tests::client::Client;
use tollgate_tests::gateway::Gateway;

const CLIENTS: usize = 120;
const CALLS: usize = 3;
const STEPS: u32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hundred_and_twenty_sessions_get_only_their_own_answers_and_progress() {
    let backend = Backend::rmcp().start().await;
    let gateway = Gateway::new().server("many", backend.url()).start().await;
    let url = gateway.mcp_url("many");

    let clients = tollgate_tests::within(90, "all clients connect", join_all((0..CLIENTS).map(|_| Client::connect(&url)))).await;
    let sessions: HashSet<String> = clients.iter().map(Client::session_id).collect();
    assert_eq!(sessions.len(), CLIENTS, "every client has a session of its own");

    let work = clients.iter().enumerate().map(|(i, client)| async move {
        for call in 0..CALLS {
            let text = format!("client {i} call {call}");
            assert_eq!(client.echo(&text).await, text, "client {i} got someone else's answer");
        }
        let label = format!("client-{i}");
        let answer = client.call_tool("progress", json!({ "steps": STEPS, "label": label })).await.expect("progress");
        assert_eq!(answer, format!("{label}: {STEPS} steps"));
    });
    tollgate_tests::within(90, "all clients finish", join_all(work)).await;

    for (i, client) in clients.iter().enumerate() {
        let messages = client.progress_messages(STEPS as usize).await;
        let expected: Vec<String> = (1..=STEPS).map(|s| format!("client-{i} {s}")).collect();
        assert_eq!(messages, expected, "client {i} saw progress that is not exactly its own");
    }
    join_all(clients.into_iter().map(Client::close)).await;
}
