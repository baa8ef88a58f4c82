//! Big rooms: presence must not cost the square of a room's size. `joined` lists at most
//! `JOINED_MEMBERS_MAX` members (the joiner among them) with `member_count`; `who` and the
//! HTTP API page through every member in a stable order; past `PRESENCE_EVENTS_MAX`
//! members a room sends `member_count`, at most once per `MEMBER_COUNT_INTERVAL_MS` and
//! only when it changed, instead of `member_joined` and `member_left`.

use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Client, TestApp};

const LISTED: usize = 3;
const EVENTS_UP_TO: usize = 4;
const INTERVAL: Duration = Duration::from_millis(200);

async fn spawn_small_thresholds() -> TestApp {
    spawn_app_with(|config| {
        // Members that never read never answer a ping: no timeouts while a test runs.
        config.heartbeat_interval = Duration::from_secs(30);
        config.client_timeout = Duration::from_secs(120);
        config.joined_members_max = LISTED;
        config.presence_events_max = EVENTS_UP_TO;
        config.member_count_interval = INTERVAL;
    })
    .await
}

fn ids(members: &Value) -> Vec<String> {
    members
        .as_array()
        .expect("a member list")
        .iter()
        .map(|m| m["id"].as_str().expect("an id").to_owned())
        .collect()
}

/// `who` with `limit`, page by page: the ids in order, and the counts each page gave.
async fn who_all(client: &mut Client, room: &str, limit: usize) -> (Vec<String>, Vec<u64>) {
    let (mut all, mut counts) = (Vec::new(), Vec::new());
    let mut after = Value::Null;
    loop {
        let mut request = json!({"type": "who", "room": room, "limit": limit});
        if !after.is_null() {
            request["after"] = after.clone();
        }
        client.send(request).await;
        // Presence events of the joins before may still be on their way.
        let page = client.wait_for("presence").await;
        let page_ids = ids(&page["members"]);
        assert!(page_ids.len() <= limit, "{page}");
        all.extend(page_ids);
        counts.push(page["member_count"].as_u64().unwrap());
        if page["next"].is_null() {
            return (all, counts);
        }
        after = page["next"].clone();
    }
}

#[actix_web::test]
async fn joined_lists_the_first_members_with_the_joiner_and_the_whole_count() {
    let app = spawn_small_thresholds().await;
    let mut members = Vec::new();
    for i in 0..5 {
        members.push(app.connect(&format!("?name=m{i}")).await);
    }
    // Joined in reverse connection order, so the last joiner has the smallest id and
    // the first one the largest.
    let mut joined = Vec::new();
    for member in members.iter_mut().rev() {
        member.send(json!({"type": "join", "room": "hall"})).await;
        joined.push(member.wait_for("joined").await);
    }
    let first_joiner = &members[4];
    let last = joined.last().unwrap();
    assert_eq!(last["member_count"], 5);
    let listed = ids(&last["members"]);
    assert_eq!(listed.len(), LISTED);
    assert!(listed.contains(&members[0].id), "the joiner is listed");
    // The first members by id.
    let mut sorted = listed.clone();
    sorted.sort_by_key(|id| id.parse::<u64>().unwrap());
    assert_eq!(listed, sorted);
    assert_eq!(listed[0], members[0].id);
    // The first joiner, with the largest id, is listed only when it is the joiner.
    let first = &joined[0];
    assert_eq!(first["member_count"], 1);
    assert_eq!(ids(&first["members"]), vec![first_joiner.id.clone()]);
    let fifth = &joined[1];
    assert_eq!(fifth["member_count"], 2);
}

#[actix_web::test]
async fn past_the_threshold_members_hear_member_count_instead_of_member_joined() {
    let app = spawn_small_thresholds().await;
    let mut watcher = app.member("watcher", "hall").await;
    let mut others = Vec::new();
    for i in 1..EVENTS_UP_TO {
        others.push(app.member(&format!("m{i}"), "hall").await);
        // At or under the threshold, every join is announced.
        let joined = watcher.expect("member_joined").await;
        assert_eq!(joined["member"]["id"], others.last().unwrap().id.as_str());
    }
    // The fifth member makes the room big: counted, not announced.
    others.push(app.member("fifth", "hall").await);
    let started = Instant::now();
    let count = watcher.expect("member_count").await;
    assert_eq!(count["room"], "hall");
    assert_eq!(count["count"], 5);
    assert!(
        started.elapsed() < INTERVAL * 10,
        "told within a few intervals"
    );
    // Nothing else came, and no second count while nothing changed.
    watcher.sync().await;
    tokio::time::sleep(INTERVAL * 3).await;
    watcher.sync().await;
    // A message still reaches everyone.
    watcher
        .send(json!({"type": "say", "room": "hall", "text": "hi"}))
        .await;
    assert_eq!(watcher.expect("message").await["text"], "hi");
    for other in &mut others {
        assert_eq!(other.wait_for("message").await["text"], "hi");
    }
}

#[actix_web::test]
async fn a_room_shrinking_back_under_the_threshold_announces_again() {
    let app = spawn_small_thresholds().await;
    let mut watcher = app.member("watcher", "hall").await;
    let mut others = Vec::new();
    for i in 1..=EVENTS_UP_TO {
        others.push(app.member(&format!("m{i}"), "hall").await);
    }
    // Four member_joined (up to four members), then a count of five.
    for _ in 1..EVENTS_UP_TO {
        watcher.expect("member_joined").await;
    }
    assert_eq!(watcher.expect("member_count").await["count"], 5);

    // Five to four: the room was big, so the change is counted.
    let leaver = others.pop().unwrap();
    leaver.close().await;
    assert_eq!(watcher.expect("member_count").await["count"], 4);
    // Four to three: a room at the threshold announces again.
    let leaver = others.pop().unwrap();
    let leaver_id = leaver.id.clone();
    leaver.close().await;
    let left = watcher.expect("member_left").await;
    assert_eq!(left["member"]["id"], leaver_id.as_str());
    assert_eq!(left["reason"], "disconnect");
    // Told four, then one left: the watcher's three is right, no count is due.
    tokio::time::sleep(INTERVAL * 3).await;
    watcher.sync().await;
    let (listed, counts) = who_all(&mut watcher, "hall", 1000).await;
    assert_eq!((listed.len(), counts), (3, vec![3]));
}

#[actix_web::test]
async fn a_room_oscillating_around_the_threshold_hears_at_most_one_count_per_interval() {
    let app = spawn_small_thresholds().await;
    let mut watcher = app.member("watcher", "hall").await;
    let mut others = Vec::new();
    for i in 1..EVENTS_UP_TO {
        others.push(app.member(&format!("m{i}"), "hall").await);
        watcher.expect("member_joined").await;
    }
    // The room is at the threshold; one member comes and goes, over and over.
    let mut guest = app.connect("?name=guest").await;
    let started = Instant::now();
    for _ in 0..10 {
        guest.send(json!({"type": "join", "room": "hall"})).await;
        guest.expect("joined").await;
        guest.send(json!({"type": "leave", "room": "hall"})).await;
        guest.expect("left").await;
    }
    // The last word is a true count, and counts come at most once per interval.
    tokio::time::sleep(INTERVAL * 3).await;
    let mut told = Vec::new();
    watcher.send(json!({"type": "rooms", "ref": "end"})).await;
    loop {
        let event = watcher.next_event().await;
        if event["ref"] == "end" {
            break;
        }
        match event["type"].as_str() {
            Some("member_count") => told.push(event["count"].as_u64()),
            // Leaving a big room (five to four) is counted; the guest's joins at four
            // are counted too; no other presence event reaches the watcher.
            other => panic!("unexpected {other:?}: {event}"),
        }
    }
    let (listed, _) = who_all(&mut watcher, "hall", 1000).await;
    assert_eq!(listed.len(), EVENTS_UP_TO);
    if let Some(last) = told.last() {
        assert_eq!(*last, Some(EVENTS_UP_TO as u64), "{told:?}");
    }
    let intervals = started.elapsed().as_millis() / INTERVAL.as_millis() + 1;
    assert!(
        told.len() as u128 <= intervals,
        "at most one count per interval: {} in {intervals} intervals",
        told.len()
    );
}

#[actix_web::test]
async fn who_pages_through_every_member_once_in_a_stable_order() {
    let app = spawn_small_thresholds().await;
    let mut members = Vec::new();
    for i in 0..7 {
        members.push(app.member(&format!("m{i}"), "hall").await);
    }
    let asker = &mut members[0];
    let (paged, counts) = who_all(asker, "hall", 3).await;
    assert_eq!(counts, vec![7, 7, 7], "three pages of 3, 3 and 1");
    let mut expected: Vec<String> = Vec::new();
    let (whole, _) = who_all(asker, "hall", 1000).await;
    expected.extend(whole);
    assert_eq!(paged, expected);
    let unique: BTreeSet<&String> = paged.iter().collect();
    assert_eq!(unique.len(), 7);
    // The default page holds everyone here.
    asker.send(json!({"type": "who", "room": "hall"})).await;
    let page = asker.expect("presence").await;
    assert_eq!(ids(&page["members"]), expected);
    assert!(page["next"].is_null());
    // A room nobody is in.
    asker.send(json!({"type": "who", "room": "empty"})).await;
    let page = asker.expect("presence").await;
    assert_eq!(
        (page["member_count"].clone(), page["next"].clone()),
        (json!(0), Value::Null)
    );
}

#[actix_web::test]
async fn a_page_limit_out_of_range_is_bad_json() {
    let app = spawn_small_thresholds().await;
    let mut ann = app.member("ann", "hall").await;
    for limit in [json!(0), json!(1001), json!(-1), json!("ten")] {
        ann.send(json!({"type": "who", "room": "hall", "limit": limit, "ref": "w"}))
            .await;
        let error = ann.expect_error("bad_json").await;
        assert_eq!(error["ref"], "w");
        ann.send(json!({"type": "rooms", "limit": limit})).await;
        ann.expect_error("bad_json").await;
    }
}

#[actix_web::test]
async fn rooms_pages_by_name() {
    let app = spawn_small_thresholds().await;
    let mut ann = app.connect("?name=ann").await;
    for room in ["d", "b", "a", "c", "e"] {
        ann.send(json!({"type": "join", "room": room})).await;
        ann.expect("joined").await;
    }
    let mut names = Vec::new();
    let mut after = Value::Null;
    loop {
        let mut request = json!({"type": "rooms", "limit": 2});
        if !after.is_null() {
            request["after"] = after.clone();
        }
        ann.send(request).await;
        let page = ann.expect("rooms").await;
        for room in page["rooms"].as_array().unwrap() {
            assert_eq!(room["members"], 1);
            names.push(room["name"].as_str().unwrap().to_owned());
        }
        if page["next"].is_null() {
            break;
        }
        after = page["next"].clone();
    }
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
}

#[actix_web::test]
async fn the_http_api_pages_rooms_and_members() {
    let app = spawn_small_thresholds().await;
    let mut members = Vec::new();
    for i in 0..5 {
        members.push(app.member(&format!("m{i}"), "hall").await);
    }
    members[0]
        .send(json!({"type": "join", "room": "side"}))
        .await;
    members[0].wait_for("joined").await;

    let (status, first) = app.get("/api/rooms/hall?limit=2").await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["member_count"], 5);
    assert_eq!(
        ids(&first["members"]),
        [members[0].id.clone(), members[1].id.clone()]
    );
    let after = first["next"].as_str().unwrap().to_owned();
    let (_, rest) = app.get(&format!("/api/rooms/hall?after={after}")).await;
    assert_eq!(ids(&rest["members"]).len(), 3);
    assert!(rest["next"].is_null());
    assert!(rest["history"].is_array());

    let (status, listing) = app.get("/api/rooms?limit=1").await;
    assert_eq!(status, 200);
    assert_eq!(listing["rooms"][0]["name"], "hall");
    assert_eq!(listing["rooms"][0]["member_count"], 5);
    // A room in the listing shows its first members; its `next` pages the rest.
    assert_eq!(ids(&listing["rooms"][0]["members"]).len(), LISTED);
    assert_eq!(listing["next"], "hall");
    let (_, second) = app.get("/api/rooms?after=hall").await;
    assert_eq!(second["rooms"][0]["name"], "side");
    assert!(second["next"].is_null());

    for bad in [
        "/api/rooms?limit=0",
        "/api/rooms?limit=1001",
        "/api/rooms?limit=x",
        "/api/rooms?after=bad%20name",
        "/api/rooms/hall?after=not-an-id",
        "/api/rooms/hall?limit=0",
    ] {
        let (status, body) = app.get(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{bad}"
        );
    }
}
