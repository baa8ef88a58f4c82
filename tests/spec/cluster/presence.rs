//! Presence across nodes: members on node A and node B of one room see each other in
//! `joined`, `who`, `member_joined`/`member_left` and `member_renamed`, exactly as on one
//! server; `rooms` counts every node's members.

use serde_json::{json, Value};

use super::{by_id, entry_of, join_on, who, Cluster};
use crate::helpers::Client;

#[actix_web::test]
async fn members_on_two_nodes_see_each_other_join_and_leave() {
    let Some(cluster) = Cluster::start("members_on_two_nodes_see_each_other").await else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let (mut ann, ann_joined) = join_on(&a, "ann", "lobby").await;
    let ann_entry = entry_of(&ann_joined, &ann.id);

    // Bob, on B, finds ann (on A) in his joined, exactly as A lists her.
    let (mut bob, bob_joined) = join_on(&b, "bob", "lobby").await;
    let bob_entry = entry_of(&bob_joined, &bob.id);
    assert_eq!(bob_joined["member_count"], 2, "{bob_joined}");
    assert_eq!(
        by_id(&bob_joined["members"]),
        by_id(&json!([ann_entry, bob_entry])),
        "{bob_joined}"
    );
    let arrived = ann.expect("member_joined").await;
    assert_eq!(
        (&arrived["room"], &arrived["member"], &arrived["first"]),
        (&json!("lobby"), &bob_entry, &json!(true)),
        "{arrived}"
    );

    // `who` answers the same on both nodes.
    for client in [&mut ann, &mut bob] {
        let presence = who(client, "lobby").await;
        assert_eq!(
            by_id(&presence["members"]),
            by_id(&json!([ann_entry, bob_entry])),
            "{presence}"
        );
        assert_eq!(presence["member_count"], 2);
        assert!(presence["next"].is_null());
    }

    // A third member on B; then bob leaves and cid's connection closes: A hears both.
    let (cid, cid_joined) = join_on(&b, "cid", "lobby").await;
    let cid_entry = entry_of(&cid_joined, &cid.id);
    assert_eq!(cid_joined["member_count"], 3);
    assert_eq!(ann.expect("member_joined").await["member"], cid_entry);
    assert_eq!(bob.expect("member_joined").await["member"], cid_entry);

    bob.send(json!({"type": "leave", "room": "lobby", "ref": "bye"}))
        .await;
    assert_eq!(
        bob.expect("left").await,
        json!({"type": "left", "room": "lobby", "ref": "bye"})
    );
    let gone = ann.expect("member_left").await;
    assert_eq!(
        (&gone["member"], &gone["reason"], &gone["last"]),
        (&bob_entry, &json!("leave"), &json!(true)),
        "{gone}"
    );
    cid.close().await;
    let gone = ann.expect("member_left").await;
    assert_eq!(
        (&gone["member"], &gone["reason"], &gone["last"]),
        (&cid_entry, &json!("disconnect"), &json!(true)),
        "{gone}"
    );
    let presence = who(&mut ann, "lobby").await;
    assert_eq!(by_id(&presence["members"]), [ann_entry]);
    // Bob, on B, no longer in the room, sees it as ann does.
    let from_b = who(&mut bob, "lobby").await;
    assert_eq!(from_b["members"], presence["members"]);
    ann.sync().await;
}

/// The `rooms` pages `client` gets, all of them (limit 1 per page), sorted by name.
async fn all_room_counts(client: &mut Client) -> Vec<Value> {
    let mut rooms = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10 {
        let mut request = json!({"type": "rooms", "limit": 1, "ref": "rooms"});
        if let Some(after) = &after {
            request["after"] = json!(after);
        }
        client.send(request).await;
        let page = client.expect("rooms").await;
        assert_eq!(page["ref"], "rooms");
        let listed = page["rooms"].as_array().expect("rooms is an array");
        assert!(listed.len() <= 1, "limit 1: {page}");
        rooms.extend(listed.iter().cloned());
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    rooms.sort_by(|x, y| x["name"].as_str().cmp(&y["name"].as_str()));
    rooms
}

#[actix_web::test]
async fn rooms_counts_the_members_of_every_node() {
    let Some(cluster) = Cluster::start("rooms_counts_the_members_of_every_node").await else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let (mut ann, _) = join_on(&a, "ann", "lobby").await;
    let (mut amy, _) = join_on(&a, "amy", "lobby").await;
    ann.expect("member_joined").await;
    let (mut bob, _) = join_on(&b, "bob", "lobby").await;
    ann.expect("member_joined").await;
    amy.expect("member_joined").await;
    // A room whose only member is on B: A has nobody in it.
    let (_cid, _) = join_on(&b, "cid", "dev").await;

    let expected = [
        json!({"name": "dev", "members": 1}),
        json!({"name": "lobby", "members": 3}),
    ];
    for client in [&mut ann, &mut bob] {
        client.send(json!({"type": "rooms", "ref": "all"})).await;
        let reply = client.expect("rooms").await;
        let mut rooms = reply["rooms"].as_array().expect("rooms").clone();
        rooms.sort_by(|x, y| x["name"].as_str().cmp(&y["name"].as_str()));
        assert_eq!(rooms, expected, "{reply}");
        assert!(reply["next"].is_null(), "{reply}");
        assert_eq!(all_room_counts(client).await, expected, "paged");
    }
}

#[actix_web::test]
async fn a_rename_on_one_node_is_seen_on_another() {
    let Some(cluster) = Cluster::start("a_rename_on_one_node_is_seen_on_another").await else {
        return;
    };
    let a = cluster.node().await;
    let b = cluster.node().await;
    let (mut ann, _) = join_on(&a, "ann", "lobby").await;
    let (mut bob, _) = join_on(&b, "bob", "lobby").await;
    ann.expect("member_joined").await;

    ann.send(json!({"type": "rename", "name": "anna", "ref": "n1"}))
        .await;
    let mut own_copy = ann.expect("member_renamed").await;
    assert_eq!(own_copy["ref"], "n1");
    own_copy.as_object_mut().unwrap().remove("ref");
    let seen_on_b = bob.expect("member_renamed").await;
    assert_eq!(seen_on_b, own_copy, "B hears what A says");
    assert_eq!(
        (&seen_on_b["room"], &seen_on_b["old_name"]),
        (&json!("lobby"), &json!("ann"))
    );
    assert_eq!(seen_on_b["member"]["id"], ann.id.as_str());
    assert_eq!(seen_on_b["member"]["name"], "anna");
    // B lists her under her new name.
    let presence = who(&mut bob, "lobby").await;
    assert_eq!(entry_of(&presence, &ann.id)["name"], "anna");
    bob.sync().await;
}
