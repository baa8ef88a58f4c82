//! Member ids for a cluster: blocks handed out by Redis (`INCRBY P:ids`), so no two
//! nodes give the same id. Each request also raises the counter to the present time in
//! microseconds first, so the ids stay unique even after Redis lost the counter, as
//! long as the cluster hands out fewer than a million ids per second of its life (the
//! rule one node follows alone, `MemberIds::starting_now`).
//!
//! Taking an id never waits for Redis: the next block is asked for while a quarter of
//! the current one is left, and without any the upgrade is refused (`unavailable`).

use std::sync::Mutex;

use tokio::sync::mpsc::UnboundedSender;

/// Ids per request to Redis.
pub const BLOCK: u64 = 4096;

#[derive(Debug)]
pub struct IdBlocks {
    blocks: Mutex<Blocks>,
    /// Tells the cluster's node to fetch the next block.
    refill: UnboundedSender<()>,
    /// Asks the cluster's node to enter a new connection in the member directory.
    directory: UnboundedSender<Registration>,
}

/// A connection to enter in the member directory (`P:member:{id}`: which node holds it,
/// for whispers), before its upgrade is answered: once a client has its `welcome`, a
/// member on any node can whisper to it.
#[derive(Debug)]
pub struct Registration {
    pub id: u64,
    pub record: String,
    pub done: tokio::sync::oneshot::Sender<bool>,
}

#[derive(Debug, Default)]
struct Blocks {
    /// The current block, `next..end`.
    next: u64,
    end: u64,
    spare: Option<(u64, u64)>,
    asked: bool,
}

impl IdBlocks {
    pub fn new(
        first_block_last_id: u64,
        refill: UnboundedSender<()>,
        directory: UnboundedSender<Registration>,
    ) -> Self {
        let end = first_block_last_id + 1;
        Self {
            blocks: Mutex::new(Blocks {
                next: end - BLOCK,
                end,
                spare: None,
                asked: false,
            }),
            refill,
            directory,
        }
    }

    /// Enters a connection in the member directory; `false` if Redis did not take it.
    pub async fn register(&self, id: u64, record: String) -> bool {
        let (done, registered) = tokio::sync::oneshot::channel();
        if self
            .directory
            .send(Registration { id, record, done })
            .is_err()
        {
            return false;
        }
        registered.await.unwrap_or(false)
    }

    /// A new id, or `None` while the cluster's store cannot give more.
    pub fn next(&self) -> Option<u64> {
        let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        if blocks.next == blocks.end {
            let (next, end) = blocks.spare.take().or_else(|| {
                self.ask(&mut blocks);
                None
            })?;
            blocks.next = next;
            blocks.end = end;
        }
        let id = blocks.next;
        blocks.next += 1;
        if blocks.spare.is_none() && blocks.end - blocks.next < BLOCK / 4 {
            self.ask(&mut blocks);
        }
        Some(id)
    }

    fn ask(&self, blocks: &mut Blocks) {
        if !blocks.asked {
            blocks.asked = true;
            let _ = self.refill.send(());
        }
    }

    /// The block whose last id Redis answered.
    pub fn supply(&self, last_id: u64) {
        let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        blocks.spare = Some((last_id + 1 - BLOCK, last_id + 1));
        blocks.asked = false;
    }

    /// The request for a block failed: the next shortage asks again.
    pub fn failed(&self) {
        let mut blocks = self.blocks.lock().unwrap_or_else(|e| e.into_inner());
        blocks.asked = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_block_then_the_spare_and_ask_ahead() {
        let (refill, mut asked) = tokio::sync::mpsc::unbounded_channel();
        let (directory, _) = tokio::sync::mpsc::unbounded_channel();
        let ids = IdBlocks::new(BLOCK * 10 - 1, refill, directory);
        let first = ids.next().unwrap();
        assert_eq!(first, BLOCK * 9);
        for _ in 0..(BLOCK - BLOCK / 4) {
            ids.next().unwrap();
        }
        assert!(
            asked.try_recv().is_ok(),
            "asked for the next block ahead of need"
        );
        while ids.next().is_some_and(|id| id < BLOCK * 10 - 1) {}
        assert_eq!(ids.next(), None, "no spare yet: none");
        ids.supply(BLOCK * 20 - 1);
        assert_eq!(ids.next(), Some(BLOCK * 19));
    }
}
