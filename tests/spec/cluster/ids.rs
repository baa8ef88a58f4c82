//! Member ids are unique across every node of a cluster and across restarts, and each
//! connection's `welcome.node` names the node holding it.

use std::collections::HashSet;

use futures_util::future::join_all;

use super::Cluster;
use crate::helpers::{Client, TestApp};

const PER_NODE: usize = 20;

/// `PER_NODE` connections to each of `nodes`, opened all at once.
async fn connect_all(nodes: &[&TestApp]) -> Vec<Vec<Client>> {
    join_all(nodes.iter().map(|node| {
        join_all((0..PER_NODE).map(|i| async move { node.connect(&format!("?name=c{i}")).await }))
    }))
    .await
}

/// The one `welcome.node` of `clients`.
fn node_of(clients: &[Client]) -> String {
    let nodes: HashSet<&str> = clients
        .iter()
        .map(|c| c.welcome["node"].as_str().expect("welcome has a node"))
        .collect();
    assert_eq!(nodes.len(), 1, "one node holds them all: {nodes:?}");
    nodes.into_iter().next().unwrap().to_owned()
}

#[actix_web::test]
async fn member_ids_are_unique_across_nodes_and_restarts() {
    let Some(cluster) = Cluster::start("member_ids_are_unique_across_nodes").await else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let connected = connect_all(&[&a, &b]).await;
    let mut seen = HashSet::new();
    for clients in &connected {
        for client in clients {
            assert!(seen.insert(client.id.clone()), "{} issued twice", client.id);
        }
    }
    let (node_a, node_b) = (node_of(&connected[0]), node_of(&connected[1]));
    assert_ne!(node_a, node_b, "each node has its own id");

    // B restarts: its clients go, it stops, a new B starts on the same Redis.
    let mut connected = connected;
    for client in connected.pop().unwrap() {
        client.close().await;
    }
    b.controller.shutdown().await;
    drop(b);
    let b = cluster.node().await;
    let again = connect_all(&[&a, &b]).await;
    for clients in &again {
        for client in clients {
            assert!(
                seen.insert(client.id.clone()),
                "{} was issued before the restart",
                client.id
            );
        }
    }
    assert_eq!(node_of(&again[0]), node_a);
    let restarted = node_of(&again[1]);
    assert!(
        restarted != node_a && restarted != node_b,
        "a restarted node is a new node: {restarted}"
    );
}
