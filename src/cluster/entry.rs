//! What comes from Redis: the entries the room script publishes (on `P:events`, and
//! the answers it sends one node on `P:node:<id>`), and the records inside them.
//! Scripts write JSON with `cjson`; ids travel as strings (cjson keeps 14 digits of a
//! number, and ids have 16).

use std::sync::Arc;

use serde::Deserialize;

use crate::protocol::{
    ChatMessage, DisplayName, Member, MemberId, RoomName, Sender, Timestamp, UserId,
};

/// One entry or answer. Which fields are set depends on `k`, its kind (see room.lua).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Entry {
    pub k: String,
    /// The room.
    pub r: Option<String>,
    /// The room's epoch, its entry number, and the room's clock.
    pub e: Option<String>,
    pub n: Option<u64>,
    pub ms: Option<i64>,
    /// The node that asked, and its ask (on that node only).
    pub o: Option<String>,
    pub a: Option<String>,
    /// The member the entry is about, and its record.
    pub m: Option<String>,
    pub rec: Option<String>,
    pub why: Option<String>,
    /// A message's seq and text.
    pub s: Option<u64>,
    pub x: Option<String>,
    pub err: Option<String>,
    /// A snapshot: member records and history items, one per line.
    pub members: Option<String>,
    pub hist: Option<String>,
    pub resync: Option<String>,
    /// A log tail: entries, one per line.
    pub entries: Option<String>,
    /// A page of rooms: `name\tcount\trecords` per room, rooms split by `\r`.
    pub list: Option<String>,
    /// A whisper's sender and recipient records.
    pub from: Option<String>,
    pub to: Option<String>,
    pub found: Option<String>,
}

impl Entry {
    pub fn parse(json: &str) -> Option<Entry> {
        match serde_json::from_str(json) {
            Ok(entry) => Some(entry),
            Err(err) => {
                log::error!("cluster: an entry that does not parse ({err}): {json}");
                None
            }
        }
    }

    pub fn room(&self) -> Option<RoomName> {
        RoomName::parse(self.r.as_deref()?).ok()
    }

    pub fn member_id(&self) -> Option<MemberId> {
        self.m.as_deref()?.parse().ok().map(MemberId)
    }

    pub fn at(&self) -> Timestamp {
        self.ms.map_or_else(Timestamp::now, Timestamp::from_millis)
    }

    /// The entry's member record.
    pub fn record(&self) -> Option<Record> {
        Record::parse(self.rec.as_deref()?)
    }

    pub fn ask(&self) -> Option<u64> {
        self.a.as_deref()?.parse().ok()
    }
}

/// A member as a room's store keeps it: `{"id","name","user"?,"at"?,"node"?}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub user: Option<String>,
    /// When it joined the room (or connected, in the member directory).
    #[serde(default)]
    pub at: Option<i64>,
    #[serde(default)]
    pub node: Option<String>,
}

impl Record {
    pub fn parse(json: &str) -> Option<Record> {
        serde_json::from_str(json).ok()
    }

    /// The record of one of this node's members, as the scripts store it.
    pub fn encode(
        id: MemberId,
        name: &DisplayName,
        user: Option<&UserId>,
        at: Timestamp,
    ) -> String {
        let mut record = serde_json::json!({
            "id": id.0.to_string(),
            "name": name.as_str(),
            "at": at.millis(),
        });
        if let Some(user) = user {
            record["user"] = user.as_str().into();
        }
        record.to_string()
    }

    pub fn member(&self) -> Option<Member> {
        Some(Member {
            id: MemberId(self.id.parse().ok()?),
            name: DisplayName::parse(&self.name).ok()?,
            joined_at: self.at.map_or_else(Timestamp::now, Timestamp::from_millis),
            user: match &self.user {
                Some(user) => Some(UserId::parse(user).ok()?),
                None => None,
            },
        })
    }
}

/// A history item: `{"s","at","x","f"}`, `f` the sender's record or `false` (server).
#[derive(Debug, Deserialize)]
struct Item {
    s: u64,
    at: i64,
    x: String,
    f: serde_json::Value,
}

pub fn message(room: &RoomName, json: &str) -> Option<Arc<ChatMessage>> {
    let item: Item = serde_json::from_str(json).ok()?;
    let from = match item.f.as_str() {
        Some(record) => Sender::Member(Record::parse(record)?.member()?),
        None => Sender::Server,
    };
    Some(Arc::new(ChatMessage {
        room: room.clone(),
        from,
        text: item.x.into(),
        at: Timestamp::from_millis(item.at),
        seq: item.s,
    }))
}

/// Lines of a snapshot field: the script joins records with `\n` (JSON never holds a
/// raw newline), and an empty field is no lines.
pub fn lines(field: &Option<String>) -> impl Iterator<Item = &str> {
    field
        .as_deref()
        .unwrap_or("")
        .split('\n')
        .filter(|line| !line.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_with_a_record_and_a_history_item_parses() {
        let rec =
            r#"{"id":"1764612345678901","name":"Ann","user":"ann","at":1764612345678,"node":"a1"}"#;
        let json = serde_json::json!({"k":"join","r":"lobby","e":"E","n":3,"ms":1764612345678i64,"o":"a1","a":"7","m":"1764612345678901","rec":rec}).to_string();
        let entry = Entry::parse(&json).unwrap();
        assert_eq!(entry.member_id(), Some(MemberId(1764612345678901)));
        assert_eq!(entry.ask(), Some(7));
        let member = entry.record().unwrap().member().unwrap();
        assert_eq!(member.name.as_str(), "Ann");
        assert_eq!(member.user.unwrap().as_str(), "ann");
        let room = RoomName::parse("lobby").unwrap();
        let item = serde_json::json!({"s":5,"at":1,"x":"hi","f":rec}).to_string();
        let said = message(&room, &item).unwrap();
        assert_eq!((said.seq, &*said.text), (5, "hi"));
        assert!(matches!(said.from, Sender::Member(_)));
        let server = message(&room, r#"{"s":6,"at":1,"x":"note","f":false}"#).unwrap();
        assert!(matches!(server.from, Sender::Server));
    }
}
