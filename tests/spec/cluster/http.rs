//! The HTTP API on any node is the cluster's: a publish reaches members on every node
//! (and a retry with its `Idempotency-Key`, on any node, publishes nothing), the room
//! listings show every node's members, and a kick on one node removes a member held by
//! another.

use serde_json::{json, Value};

use super::{by_id, entry_of, join_on, Cluster};
use crate::helpers::TestApp;

/// `POST /api/rooms/{room}/messages` on `node` with `Idempotency-Key: key`.
async fn publish(node: &TestApp, room: &str, key: &str, text: &str) -> (u16, Value) {
    let response = tokio::time::timeout(
        crate::helpers::DEADLINE,
        node.http
            .post(node.url(&format!("/api/rooms/{room}/messages")))
            .header("Idempotency-Key", key)
            .body(json!({"text": text}).to_string())
            .send(),
    )
    .await
    .expect("HTTP response in time")
    .expect("HTTP request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[actix_web::test]
async fn a_publish_on_one_node_reaches_every_node_and_a_retry_on_another_publishes_nothing() {
    let Some(cluster) = Cluster::start("a_publish_on_one_node_reaches_every_node").await else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let (mut ann, _) = join_on(&a, "ann", "lobby").await;
    let (mut bob, _) = join_on(&b, "bob", "lobby").await;
    ann.expect("member_joined").await;

    let (status, first) = publish(&b, "lobby", "deploy-42", "deploy done").await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["room"], "lobby");
    assert_eq!(first["seq"], 1, "{first}");
    for client in [&mut ann, &mut bob] {
        let message = client.expect("message").await;
        assert_eq!(
            (
                &message["from"],
                &message["text"],
                &message["seq"],
                &message["at"]
            ),
            (
                &json!({"id": "server", "name": "server"}),
                &json!("deploy done"),
                &first["seq"],
                &first["at"]
            ),
            "{message}"
        );
    }

    // The retry goes to the other node (a load balancer's choice): same answer.
    let (status, retry) = publish(&a, "lobby", "deploy-42", "deploy done").await;
    assert_eq!(status, 202, "{retry}");
    assert_eq!((&retry["seq"], &retry["at"]), (&first["seq"], &first["at"]));
    // Nothing was published: the next message is the very next seq, with nothing before.
    ann.send(json!({"type": "say", "room": "lobby", "text": "after"}))
        .await;
    let next = first["seq"].as_u64().unwrap() + 1;
    for client in [&mut ann, &mut bob] {
        let message = client.expect("message").await;
        assert_eq!(
            (&message["text"], &message["seq"]),
            (&json!("after"), &json!(next))
        );
    }
}

/// Every page of `/api/rooms/{room}` on `node`, two members a page: the members in page
/// order.
async fn paged_members(node: &TestApp, room: &str) -> Vec<Value> {
    let mut members = Vec::new();
    let mut path = format!("/api/rooms/{room}?limit=2");
    for _ in 0..10 {
        let (status, page) = node.get(&path).await;
        assert_eq!(status, 200, "{path}: {page}");
        let listed = page["members"].as_array().expect("members is an array");
        assert!(listed.len() <= 2, "limit 2: {page}");
        members.extend(listed.iter().cloned());
        match page["next"].as_str() {
            Some(next) => path = format!("/api/rooms/{room}?limit=2&after={next}"),
            None => return members,
        }
    }
    panic!("{room}: more pages than members");
}

#[actix_web::test]
async fn the_room_listings_on_any_node_show_every_member_of_the_cluster() {
    let Some(cluster) = Cluster::start("the_room_listings_on_any_node").await else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let (mut ann, ann_joined) = join_on(&a, "ann", "lobby").await;
    let (amy, amy_joined) = join_on(&a, "amy", "lobby").await;
    ann.expect("member_joined").await;
    let (bob, bob_joined) = join_on(&b, "bob", "lobby").await;
    ann.expect("member_joined").await;
    let (cid, cid_joined) = join_on(&b, "cid", "dev").await;
    let lobby = by_id(&json!([
        entry_of(&ann_joined, &ann.id),
        entry_of(&amy_joined, &amy.id),
        entry_of(&bob_joined, &bob.id),
    ]));
    let dev = vec![entry_of(&cid_joined, &cid.id)];

    let mut orders = Vec::new();
    for node in [&a, &b] {
        let (status, body) = node.get("/api/rooms").await;
        assert_eq!(status, 200, "{body}");
        let mut rooms = body["rooms"].as_array().expect("rooms is an array").clone();
        rooms.sort_by(|x, y| x["name"].as_str().cmp(&y["name"].as_str()));
        assert_eq!(rooms.len(), 2, "{body}");
        assert_eq!(
            (&rooms[0]["name"], &rooms[0]["member_count"]),
            (&json!("dev"), &json!(1))
        );
        assert_eq!(by_id(&rooms[0]["members"]), dev, "{body}");
        assert_eq!(
            (&rooms[1]["name"], &rooms[1]["member_count"]),
            (&json!("lobby"), &json!(3))
        );
        assert_eq!(by_id(&rooms[1]["members"]), lobby, "{body}");

        // Paged, one room at a time.
        let (_, first) = node.get("/api/rooms?limit=1").await;
        let after = first["next"].as_str().expect("a next page").to_owned();
        let (_, second) = node.get(&format!("/api/rooms?after={after}")).await;
        let mut names = vec![&first["rooms"][0]["name"], &second["rooms"][0]["name"]];
        names.sort_by_key(|name| name.as_str());
        assert_eq!(names, [&json!("dev"), &json!("lobby")], "{first} {second}");
        assert!(second["next"].is_null(), "{second}");

        let (status, room) = node.get("/api/rooms/lobby").await;
        assert_eq!(status, 200, "{room}");
        assert_eq!(room["member_count"], 3);
        assert_eq!(by_id(&room["members"]), lobby, "{room}");
        let (_, room) = node.get("/api/rooms/dev").await;
        assert_eq!(by_id(&room["members"]), dev, "{room}");

        // Paged two members at a time: every member once, in one stable order.
        let paged = paged_members(node, "lobby").await;
        assert_eq!(by_id(&json!(paged)), lobby, "paged: {paged:?}");
        orders.push(paged);
    }
    assert_eq!(orders[0], orders[1], "both nodes page in the same order");
}

#[actix_web::test]
async fn a_kick_on_one_node_removes_a_member_held_by_another() {
    let Some(cluster) = Cluster::start("a_kick_on_one_node_removes_a_member").await else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let (mut ann, _) = join_on(&a, "ann", "lobby").await;
    let (mut bob, _) = join_on(&b, "bob", "lobby").await;
    ann.expect("member_joined").await;
    let (mut amy, _) = join_on(&a, "amy", "lobby").await;
    ann.expect("member_joined").await;
    bob.expect("member_joined").await;

    let (status, body) = b
        .delete(&format!("/api/rooms/lobby/members/{}", ann.id))
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        ann.expect("left").await,
        json!({"type": "left", "room": "lobby", "reason": "kicked"})
    );
    for other in [&mut bob, &mut amy] {
        let gone = other.expect("member_left").await;
        assert_eq!(
            (&gone["member"]["id"], &gone["reason"]),
            (&json!(ann.id), &json!("kicked")),
            "{gone}"
        );
    }
    // Kicked once: on either node she is no longer there.
    let (status, body) = a
        .delete(&format!("/api/rooms/lobby/members/{}", ann.id))
        .await;
    assert_eq!(status, 404, "{body}");
    ann.sync().await;
}
