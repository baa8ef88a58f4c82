//! One server, seen from anywhere: what happens on one node is seen on the others in
//! well under a second (measured here, on one machine).

use std::time::{Duration, Instant};

use serde_json::json;

use super::{join_on, Cluster};

/// On one machine a cross-node hop is a Redis round trip and a pub/sub delivery: a few
/// milliseconds. Half a second leaves room for a loaded 2-core CI machine and still says
/// "well under a second".
const CROSS_NODE_MAX: Duration = Duration::from_millis(500);

#[actix_web::test]
async fn a_say_on_one_node_reaches_a_member_on_another_in_well_under_a_second() {
    let Some(cluster) = Cluster::start("a_say_on_one_node_reaches_a_member_on_another").await
    else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let (mut ann, _) = join_on(&a, "ann", "lobby").await;
    let (mut bob, _) = join_on(&b, "bob", "lobby").await;
    assert_eq!(
        ann.expect("member_joined").await["member"]["id"],
        bob.id.as_str()
    );

    let mut latencies = Vec::new();
    for i in 1..=50 {
        let text = format!("hop {i}");
        let sent = Instant::now();
        ann.send(json!({"type": "say", "room": "lobby", "text": text}))
            .await;
        let message = bob.expect("message").await;
        latencies.push(sent.elapsed());
        assert_eq!(message["text"], text);
        assert_eq!(message["seq"], i);
        assert_eq!(message["from"]["id"], ann.id.as_str());
        assert_eq!(ann.expect("message").await, message, "the sender's copy");
    }
    latencies.sort_unstable();
    let (p50, max) = (
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
    );
    eprintln!("cross-node say, A send -> B receive over 50: p50 {p50:?}, max {max:?}");
    assert!(
        max < CROSS_NODE_MAX,
        "a say took {max:?} to cross nodes (p50 {p50:?})"
    );
}
