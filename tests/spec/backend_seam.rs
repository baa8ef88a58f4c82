//! The backend seam: room state behind a backend that answers late, as a cluster's
//! store does, changes nothing a client sees. Each answer here arrives after its own
//! random delay (so later questions are often answered first), and still every
//! connection's commands take effect in the order it sent them, every member sees one
//! `seq` order, and what a member says before it leaves reaches the room before its
//! departure.

use std::{cell::Cell, sync::Arc, time::Duration};

use hubbub::{
    hub::{
        backend::{InMemory, RoomBackend, Stored},
        sequencer::Answer,
    },
    protocol::{
        ChatMessage, DisplayName, LeaveReason, MemberId, PageLimit, Ref, RoomName, RoomView,
        RoomsView,
    },
};
use hubbub_core::{Access, Command, Counts, Effects, NotAMember, PublishRefused, RoomGrant};
use serde_json::json;

use crate::{
    concurrency::clients_saying_at_once_all_see_one_seq_order,
    helpers::{spawn_app_with_backend, TestApp},
    rooms::last_words_arrive_before_the_departure,
};

/// The in-memory backend, answering each call after 0 to 3 ms, picked pseudo-randomly.
struct Late {
    inner: InMemory,
    seed: Cell<u64>,
}

impl Late {
    fn boxed(inner: InMemory) -> Box<dyn RoomBackend> {
        Box::new(Self {
            inner,
            seed: Cell::new(0x9e37_79b9_7f4a_7c15),
        })
    }

    /// The inner answer (the work is done now, as a store's request is sent now),
    /// handed over after a delay.
    fn later<T: 'static>(&self, answer: Answer<T>) -> Answer<T> {
        let seed = self
            .seed
            .get()
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.seed.set(seed);
        let delay = Duration::from_micros((seed >> 33) % 3000);
        Answer::Later(Box::pin(async move {
            tokio::time::sleep(delay).await;
            match answer {
                Answer::Now(value) => value,
                Answer::Later(future) => future.await,
            }
        }))
    }
}

impl RoomBackend for Late {
    fn connect(&mut self, id: MemberId, name: DisplayName, access: Access) -> Answer<Effects> {
        let answer = self.inner.connect(id, name, access);
        self.later(answer)
    }

    fn reauthorize(
        &mut self,
        id: MemberId,
        reference: Option<&Ref>,
        name: Option<DisplayName>,
        rooms: RoomGrant,
    ) -> Answer<Effects> {
        let answer = self.inner.reauthorize(id, reference, name, rooms);
        self.later(answer)
    }

    fn apply(
        &mut self,
        from: MemberId,
        reference: Option<&Ref>,
        command: Command,
    ) -> Answer<Effects> {
        let answer = self.inner.apply(from, reference, command);
        self.later(answer)
    }

    fn disconnect(&mut self, id: MemberId, reason: LeaveReason) -> Answer<Effects> {
        let answer = self.inner.disconnect(id, reason);
        self.later(answer)
    }

    fn publish(
        &mut self,
        room: RoomName,
        text: String,
        idempotency_key: Option<String>,
    ) -> Stored<Result<(Arc<ChatMessage>, Effects), PublishRefused>> {
        let answer = self.inner.publish(room, text, idempotency_key);
        self.later(answer)
    }

    fn expire_rooms(&mut self) -> Answer<()> {
        let answer = self.inner.expire_rooms();
        self.later(answer)
    }

    fn kick(&mut self, room: RoomName, id: MemberId) -> Stored<Result<Effects, NotAMember>> {
        let answer = self.inner.kick(room, id);
        self.later(answer)
    }

    fn member_counts(&mut self) -> Answer<Effects> {
        let answer = self.inner.member_counts();
        self.later(answer)
    }

    fn rooms_view(&mut self, after: Option<RoomName>, limit: PageLimit) -> Stored<RoomsView> {
        let answer = self.inner.rooms_view(after, limit);
        self.later(answer)
    }

    fn room_view(
        &mut self,
        room: RoomName,
        after: Option<MemberId>,
        limit: PageLimit,
    ) -> Stored<Option<RoomView>> {
        let answer = self.inner.room_view(room, after, limit);
        self.later(answer)
    }

    fn counts(&mut self) -> Answer<Counts> {
        let answer = self.inner.counts();
        self.later(answer)
    }
}

async fn spawn_late_app() -> TestApp {
    spawn_app_with_backend(|config| Late::boxed(InMemory::new(config.room_rules()))).await
}

#[actix_web::test]
async fn with_a_late_backend_last_words_still_arrive_before_the_departure() {
    last_words_arrive_before_the_departure(&spawn_late_app().await).await;
}

#[actix_web::test]
async fn with_a_late_backend_every_member_sees_one_seq_order_and_each_senders_order() {
    let app = spawn_late_app().await;
    clients_saying_at_once_all_see_one_seq_order(&app, 5, 40).await;
}

#[actix_web::test]
async fn with_a_late_backend_the_http_api_works_the_same() {
    let app = spawn_late_app().await;
    let mut ann = app.member("ann", "lobby").await;
    for i in 0..5 {
        let body = json!({"text": format!("m{i}")}).to_string();
        let (status, body) = app.post("/api/rooms/lobby/messages", body).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["seq"], i + 1);
    }
    for i in 0..5 {
        assert_eq!(ann.expect("message").await["text"], format!("m{i}"));
    }
    let (status, room) = app.get("/api/rooms/lobby").await;
    assert_eq!(status, 200);
    assert_eq!(room["history"].as_array().unwrap().len(), 5);
}

#[actix_web::test]
async fn with_a_late_backend_a_kick_lands_after_what_came_before_it() {
    let app = spawn_late_app().await;
    let mut ann = app.member("ann", "lobby").await;
    let mut bob = app.member("bob", "lobby").await;
    ann.expect("member_joined").await;
    bob.send(json!({"type": "say", "room": "lobby", "text": "before the kick"}))
        .await;
    assert_eq!(bob.expect("message").await["text"], "before the kick");
    let (status, body) = app
        .delete(&format!("/api/rooms/lobby/members/{}", bob.id))
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(bob.expect("left").await["reason"], "kicked");
    assert_eq!(ann.expect("message").await["text"], "before the kick");
    assert_eq!(ann.expect("member_left").await["reason"], "kicked");
    let (status, _) = app
        .delete(&format!("/api/rooms/lobby/members/{}", bob.id))
        .await;
    assert_eq!(status, 404, "kicked once");
}
