//! A node that goes away: killed outright (SIGKILL), it can tell nobody, so the nodes
//! that live on notice its silence and remove its members with reason `node_lost`,
//! within `NODE_TIMEOUT_MS` and a second, exactly once, the same on every node; stopped
//! (SIGTERM), it closes its clients with 1001 and its members leave with `disconnect`.
//!
//! The node that goes is the real binary, a process of its own; the others are
//! in-process servers, as in the other cluster tests.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::{
    by_id, entry_of,
    nodes::{binary_node, connect_to, join, next_event_by, quiet},
    who, Cluster, NODE_TIMEOUT,
};
use crate::helpers::{Client, DEADLINE};

/// The `member_left` events `client` receives until it has `expected` of them (anything
/// else panics), each with how long after `since` it came; gives up at `deadline` (the
/// caller checks the timing, so a late reaper shows how late it was).
async fn departures(
    client: &mut Client,
    expected: usize,
    since: Instant,
    deadline: Instant,
) -> Vec<(Value, std::time::Duration)> {
    let mut seen = Vec::new();
    while seen.len() < expected {
        let Some(event) = next_event_by(client, deadline).await else {
            panic!(
                "{}: {} of {expected} member_left after {:?}: {seen:?}",
                client.name,
                seen.len(),
                since.elapsed()
            );
        };
        assert_eq!(event["type"], "member_left", "{}: {event}", client.name);
        seen.push((event, since.elapsed()));
    }
    seen
}

/// Departures per room, in the order they came: `room -> [(member, reason, last)]`.
fn per_room(departures: &[(Value, std::time::Duration)]) -> BTreeMap<String, Vec<Value>> {
    let mut rooms: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (event, _) in departures {
        rooms
            .entry(event["room"].as_str().expect("a room").into())
            .or_default()
            .push(json!([event["member"], event["reason"], event["last"]]));
    }
    rooms
}

#[actix_web::test]
async fn a_killed_nodes_members_leave_every_room_as_node_lost_once_and_alike_everywhere() {
    let Some(cluster) = Cluster::start("a_killed_nodes_members_leave").await else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let mut doomed = binary_node(&cluster).await;

    // ann (on A) and bob (on B) are in both rooms; cid (on the doomed node) too, dee
    // (there as well) in one of them.
    let mut ann = a.connect("?name=ann").await;
    let mut bob = b.connect("?name=bob").await;
    let mut cid = connect_to(&doomed, "cid").await;
    let mut dee = connect_to(&doomed, "dee").await;
    assert_ne!(cid.welcome["node"], ann.welcome["node"], "{}", cid.welcome);
    assert_ne!(cid.welcome["node"], bob.welcome["node"], "{}", cid.welcome);
    for room in ["north", "south"] {
        join(&mut ann, room, &mut []).await;
        join(&mut bob, room, &mut [&mut ann]).await;
    }
    let cid_north = join(&mut cid, "north", &mut [&mut ann, &mut bob]).await;
    let cid_south = join(&mut cid, "south", &mut [&mut ann, &mut bob]).await;
    let dee_north = join(&mut dee, "north", &mut [&mut ann, &mut bob, &mut cid]).await;
    let lost = [
        ("north", entry_of(&cid_north, &cid.id)),
        ("south", entry_of(&cid_south, &cid.id)),
        ("north", entry_of(&dee_north, &dee.id)),
    ];

    doomed.signal("KILL");
    let killed = Instant::now();
    let status = doomed.exit_status().await;
    assert_eq!(status.code(), None, "killed by a signal: {status:?}");

    // Both survivors hear of every lost member, each in every room it was in.
    let deadline = killed + DEADLINE;
    let (ann_saw, bob_saw) = tokio::join!(
        departures(&mut ann, lost.len(), killed, deadline),
        departures(&mut bob, lost.len(), killed, deadline),
    );
    // The lost node was reaped, and a survivor counted it.
    let mut reaped = 0.0;
    for node in [&a, &b] {
        reaped += crate::metrics::scrape(node)
            .await
            .value("hubbub_cluster_nodes_reaped_total");
    }
    assert!(
        reaped >= 1.0,
        "hubbub_cluster_nodes_reaped_total on the survivors"
    );
    for (name, saw) in [("ann", &ann_saw), ("bob", &bob_saw)] {
        for (event, after) in saw.iter() {
            eprintln!(
                "node_lost: {name} saw {} leave {} {after:?} after the SIGKILL",
                event["member"]["name"], event["room"]
            );
        }
    }
    for (name, saw) in [("ann", &ann_saw), ("bob", &bob_saw)] {
        for (room, member) in &lost {
            let matching: Vec<&Value> = saw
                .iter()
                .map(|(event, _)| event)
                .filter(|event| event["room"] == *room && event["member"]["id"] == member["id"])
                .collect();
            assert_eq!(
                matching.len(),
                1,
                "{name}: {} must leave {room} exactly once: {saw:?}",
                member["name"]
            );
            assert_eq!(
                (
                    &matching[0]["member"],
                    &matching[0]["reason"],
                    &matching[0]["last"]
                ),
                (member, &json!("node_lost"), &json!(true)),
                "{name}: {}",
                matching[0]
            );
        }
        let slowest = saw.iter().map(|(_, after)| *after).max().expect("some");
        let bound = NODE_TIMEOUT + std::time::Duration::from_secs(1);
        assert!(
            slowest <= bound,
            "{name}: the last member_left came {slowest:?} after the kill, over {bound:?}"
        );
    }
    assert_eq!(
        per_room(&ann_saw),
        per_room(&bob_saw),
        "both nodes must see the departures alike, in one order per room"
    );

    // Exactly once: two more node timeouts bring nothing (no second reaper, no repeat).
    quiet(
        &mut [&mut ann, &mut bob],
        2 * NODE_TIMEOUT,
        "after the lost node's members left",
    )
    .await;
    for room in ["north", "south"] {
        let from_a = who(&mut ann, room).await;
        let from_b = who(&mut bob, room).await;
        let ids: Vec<Value> = by_id(&from_a["members"])
            .iter()
            .map(|member| member["id"].clone())
            .collect();
        assert_eq!(ids, [json!(ann.id), json!(bob.id)], "{room}: {from_a}");
        assert_eq!(by_id(&from_a["members"]), by_id(&from_b["members"]));
        for node in [&a, &b] {
            let (status, body) = node.get(&format!("/api/rooms/{room}")).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(by_id(&body["members"]), by_id(&from_a["members"]), "{body}");
        }
    }
}

#[actix_web::test]
async fn a_node_stopped_with_sigterm_closes_its_clients_with_1001_and_they_leave_as_disconnect() {
    let Some(cluster) = Cluster::start("a_node_stopped_with_sigterm").await else {
        return;
    };
    let a = cluster.node().await;
    let mut stopping = binary_node(&cluster).await;
    let mut ann = a.connect("?name=ann").await;
    let mut cid = connect_to(&stopping, "cid").await;
    join(&mut ann, "lobby", &mut []).await;
    let cid_joined = join(&mut cid, "lobby", &mut [&mut ann]).await;
    let cid_entry = entry_of(&cid_joined, &cid.id);

    stopping.signal("TERM");
    cid.expect_close(1001).await;
    let gone = ann.expect("member_left").await;
    assert_eq!(
        (
            &gone["room"],
            &gone["member"],
            &gone["reason"],
            &gone["last"]
        ),
        (
            &json!("lobby"),
            &cid_entry,
            &json!("disconnect"),
            &json!(true)
        ),
        "{gone}"
    );
    let status = stopping.exit_status().await;
    assert!(status.success(), "SIGTERM is a clean stop: {status:?}");

    // It left once, as itself: no `node_lost` for it once its heartbeat lapses.
    quiet(
        &mut [&mut ann],
        2 * NODE_TIMEOUT,
        "after the stopped node left",
    )
    .await;
    let presence = who(&mut ann, "lobby").await;
    assert_eq!(by_id(&presence["members"]).len(), 1, "{presence}");
    assert_eq!(by_id(&presence["members"])[0]["id"], ann.id.as_str());
}

#[actix_web::test]
async fn a_node_id_in_use_is_refused_and_a_restart_under_it_reaps_its_previous_start() {
    let Some(cluster) = Cluster::start("a_node_id_in_use").await else {
        return;
    };
    let a = cluster.node().await;
    let url = cluster.redis.url();
    let timeout = NODE_TIMEOUT.as_millis().to_string();
    let vars = [
        ("REDIS_URL", url.as_str()),
        ("REDIS_PREFIX", cluster.prefix.as_str()),
        ("NODE_TIMEOUT_MS", timeout.as_str()),
        ("WORKERS", "2"),
        ("NODE_ID", "fixed"),
    ];
    let mut first = crate::config::Binary::start(&vars).await;
    let mut ann = a.connect("?name=ann").await;
    join(&mut ann, "lobby", &mut []).await;
    let mut cid = connect_to(&first, "cid").await;
    join(&mut cid, "lobby", &mut [&mut ann]).await;

    // While the first process beats its heartbeat, a second one under its NODE_ID
    // would keep its members from ever being reaped: it is refused, naming the id.
    let mut refused_vars = vars.to_vec();
    refused_vars.push(("PORT", "0"));
    let (code, stderr) = crate::config::run_to_exit(&refused_vars).await;
    assert_ne!(
        code,
        Some(0),
        "a second node under NODE_ID fixed started:\n{stderr}"
    );
    assert!(
        stderr.contains("NODE_ID fixed is in use"),
        "the refusal names the NODE_ID:\n{stderr}"
    );

    // Killed, then started again at once under the same NODE_ID (what a supervisor
    // does): the new start waits out the old heartbeat, and the old start's member
    // leaves as node_lost, once.
    first.signal("KILL");
    let _ = first.exit_status().await;
    let second = crate::config::Binary::start(&vars).await;
    let left = ann.wait_for("member_left").await;
    assert_eq!(
        (&left["member"]["id"], &left["reason"]),
        (&json!(cid.id), &json!("node_lost")),
        "{left}"
    );
    let mut dee = connect_to(&second, "dee").await;
    join(&mut dee, "lobby", &mut [&mut ann]).await;
    quiet(
        &mut [&mut ann],
        NODE_TIMEOUT * 2,
        "after the restart: no second departure",
    )
    .await;
}
