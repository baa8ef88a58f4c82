//! Fan-out cost: a broadcast is serialized once and the same bytes go to every member,
//! in one message per worker thread, not one per member; `GET /api/stats` shows the
//! hub's counters.

use serde_json::json;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn a_message_to_fifty_members_is_serialized_once_and_posted_once_per_worker() {
    let app = spawn_app().await;
    let mut members = Vec::new();
    for i in 0..50 {
        members.push(app.member(&format!("m{i}"), "hall").await);
    }
    // Let every member_joined settle: the last member's own round trip through the hub.
    for (i, member) in members.iter_mut().enumerate() {
        for _ in i + 1..50 {
            member.expect("member_joined").await;
        }
    }
    let (_, before) = app.get("/api/stats").await;

    members[0]
        .send(json!({"type": "say", "room": "hall", "text": "once"}))
        .await;
    for member in &mut members {
        assert_eq!(member.expect("message").await["text"], "once");
    }
    let (status, after) = app.get("/api/stats").await;
    assert_eq!(status, 200);
    let delta = |field: &str| after[field].as_u64().unwrap() - before[field].as_u64().unwrap();
    assert_eq!(delta("frames_serialized"), 1, "{before} -> {after}");
    assert_eq!(delta("frames_delivered"), 50, "{before} -> {after}");
    // The test server has two workers: at most one post each, whatever the room's size.
    assert!(delta("posts") <= 2, "{before} -> {after}");
    assert_eq!(after["members"], 50);
    assert_eq!(after["rooms"], 1);
    assert_eq!(after["members_dropped_slow"], 0);
}
