//! Delivery of the hub's frames: one courier per worker thread, one inbox per connection.
//!
//! The hub runs on one thread and the connections on actix's workers. Sending every
//! recipient its own actix message costs, per recipient, a boxed envelope allocated on
//! the hub's thread and freed on the worker's, and a cross-thread wake-up (an `eventfd`
//! write), so a broadcast to 1,000 members would pay it 1,000 times. Instead, the hub groups a
//! broadcast's recipients by the worker they live on and sends each worker's [`Courier`]
//! one [`Post`]: the frame (shared, never copied) and the member ids. The courier, on the
//! worker's own thread, puts the frame into each member's `Inbox` and wakes that
//! connection's actor, all without a lock, an allocation or a system call.
//!
//! The inbox is also where the outbound budget is kept (`MAX_PENDING_BYTES`): a frame
//! counts against it from the moment the courier queues it until the connection's actor
//! takes it (and hands it to actix-web-actors' writer). A connection over budget is
//! reported to the supervisor ([`Overflowed`]), which drops it as slow; its queued
//! frames are freed at once. The budget holds a connection that has left frames of an
//! earlier delivery untaken: one that had taken everything takes the next delivery
//! whole, however big (a burst the hub handled in one go, a cluster node's batch of
//! entries), since it has not yet had the chance to take any of it.
//!
//! Everything per connection here lives on that connection's thread (`Rc`, `Cell`),
//! owned by the thread's [`crate::worker::Worker`]; only [`Post`] and [`Overflowed`]
//! cross threads.

use std::{
    cell::{Cell, RefCell},
    collections::VecDeque,
    pin::Pin,
    rc::Rc,
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
    task::{Context as TaskContext, Poll, Waker},
};

use actix::prelude::*;
use bytestring::ByteString;
use futures_core::Stream;
use rustc_hash::FxHashMap;

use crate::protocol::MemberId;

/// Which worker thread a courier serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CourierId(u32);

/// The hub's handle on one worker's courier; equal handles reach the same thread, which
/// is how the hub groups a room's subscribers
/// ([`crate::hub::subscribers::Subscribers::by_route`]).
#[derive(Clone)]
pub struct CourierHandle {
    id: CourierId,
    addr: Addr<Courier>,
}

impl PartialEq for CourierHandle {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl std::fmt::Debug for CourierHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "courier {}", self.id.0)
    }
}

impl CourierHandle {
    /// Queues `frame` for every member in `to` that lives on this courier's thread.
    pub fn post(&self, frame: ByteString, to: Addressees) {
        self.addr.do_send(Post { frame, to });
    }

    /// Several posts in one message, delivered in order.
    pub fn post_all(&self, posts: Vec<Post>) {
        match <[Post; 1]>::try_from(posts) {
            Ok([post]) => self.addr.do_send(post),
            Err(posts) => self.addr.do_send(Posts(posts)),
        }
    }
}

/// Who a [`Post`] is for.
pub enum Addressees {
    /// One member (a reply).
    One(MemberId),
    /// The members of a room on this courier's thread (shared with the room), but one.
    Room {
        ids: Arc<[MemberId]>,
        except: Option<MemberId>,
    },
}

impl Addressees {
    fn iter(&self) -> impl Iterator<Item = MemberId> + '_ {
        let (ids, except) = match self {
            Addressees::One(id) => (std::slice::from_ref(id), None),
            Addressees::Room { ids, except } => (&ids[..], *except),
        };
        ids.iter().copied().filter(move |id| Some(*id) != except)
    }
}

/// One frame for some members of one worker thread.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Post {
    pub frame: ByteString,
    pub to: Addressees,
}

/// A connection's inbox went over its budget (reported to the supervisor, which
/// drops it as slow).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Overflowed {
    pub id: MemberId,
    /// What was queued when the frame that did not fit arrived.
    pub pending_bytes: usize,
}

/// The actor on each worker thread that takes the hub's posts and fills the inboxes of
/// the connections on that thread.
pub struct Courier {
    supervisor: Recipient<Overflowed>,
    inboxes: Rc<Inboxes>,
    /// Counts the posts handled (a [`Posts`] is one): which delivery a frame is of.
    delivery: u64,
}

impl Courier {
    /// Starts the courier of the calling thread's connections (must run on an actix
    /// arbiter: a worker thread).
    pub fn start_here(supervisor: Recipient<Overflowed>, inboxes: Rc<Inboxes>) -> CourierHandle {
        static NEXT_ID: AtomicU32 = AtomicU32::new(0);
        CourierHandle {
            id: CourierId(NEXT_ID.fetch_add(1, Ordering::Relaxed)),
            addr: Courier {
                supervisor,
                inboxes,
                delivery: 0,
            }
            .start(),
        }
    }
}

impl Actor for Courier {
    type Context = Context<Self>;
}

/// Several posts in one message, in order (what the hub made while handling a batch).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Posts(pub Vec<Post>);

impl Courier {
    fn deliver(&self, post: &Post) {
        let delivery = self.delivery;
        let inboxes = self.inboxes.0.borrow();
        for id in post.to.iter() {
            // No inbox: the connection has ended and its `Disconnect` is on the way.
            let Some(inbox) = inboxes.get(&id) else {
                continue;
            };
            if let Err(pending_bytes) = inbox.push(&post.frame, delivery) {
                self.supervisor.do_send(Overflowed { id, pending_bytes });
            }
        }
    }
}

impl Handler<Post> for Courier {
    type Result = ();

    fn handle(&mut self, post: Post, _: &mut Self::Context) {
        self.delivery += 1;
        self.deliver(&post);
    }
}

impl Handler<Posts> for Courier {
    type Result = ();

    fn handle(&mut self, posts: Posts, _: &mut Self::Context) {
        self.delivery += 1;
        for post in &posts.0 {
            self.deliver(post);
        }
    }
}

/// The inbox of every connection on one worker thread, shared by its connections and
/// its courier. (Keys are ids the server assigned, not client input: a fast hash is safe.)
#[derive(Default)]
pub struct Inboxes(RefCell<FxHashMap<MemberId, Rc<Inbox>>>);

impl Inboxes {
    /// Gives member `id` an inbox holding at most `max_pending_bytes`; the returned
    /// stream yields its frames in order. Close it with [`Inboxes::close`].
    pub fn open(&self, id: MemberId, max_pending_bytes: usize) -> InboxStream {
        let inbox = Rc::new(Inbox::new(max_pending_bytes));
        self.0.borrow_mut().insert(id, inbox.clone());
        InboxStream(inbox)
    }

    /// The connection has ended: frames still queued for it are dropped.
    pub fn close(&self, id: MemberId) {
        self.0.borrow_mut().remove(&id);
    }
}

/// Queue slots an empty inbox keeps; more is freed when it drains.
const RETAINED_CAPACITY: usize = 64;

/// Frames queued for one connection, and its budget.
struct Inbox {
    frames: RefCell<VecDeque<ByteString>>,
    /// Bytes in `frames`.
    pending_bytes: Cell<usize>,
    max_pending_bytes: usize,
    /// Set once the connection went over budget: reported once, then frames are dropped.
    overflowed: Cell<bool>,
    /// The courier's delivery that last queued a frame here.
    delivery: Cell<u64>,
    /// Whether frames of an earlier delivery were still queued when that one began.
    behind: Cell<bool>,
    /// The connection's actor, waiting for a frame.
    waker: Cell<Option<Waker>>,
}

impl Inbox {
    fn new(max_pending_bytes: usize) -> Self {
        Self {
            frames: RefCell::new(VecDeque::new()),
            pending_bytes: Cell::new(0),
            max_pending_bytes,
            overflowed: Cell::new(false),
            delivery: Cell::new(0),
            behind: Cell::new(false),
            waker: Cell::new(None),
        }
    }

    /// Queues a frame of the courier's delivery `delivery`; `Err(pending bytes)` the
    /// first time one does not fit.
    fn push(&self, frame: &ByteString, delivery: u64) -> Result<(), usize> {
        if self.overflowed.get() {
            return Ok(());
        }
        let before = self.pending_bytes.get();
        if self.delivery.replace(delivery) != delivery {
            self.behind.set(before > 0);
        }
        // An inbox the connection had emptied takes a whole delivery: a message near
        // MAX_MESSAGE_BYTES (plus its JSON envelope), or a burst bigger than the budget,
        // never makes a client that keeps up look slow. One still holding frames of an
        // earlier delivery is held to the budget.
        if self.behind.get() && before + frame.len() > self.max_pending_bytes {
            self.overflowed.set(true);
            self.frames.take();
            self.pending_bytes.set(0);
            return Err(before);
        }
        self.pending_bytes.set(before + frame.len());
        self.frames.borrow_mut().push_back(frame.clone());
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
        Ok(())
    }

    fn pop(&self, cx: &TaskContext<'_>) -> Option<ByteString> {
        let mut frames = self.frames.borrow_mut();
        match frames.pop_front() {
            Some(frame) => {
                self.pending_bytes
                    .set(self.pending_bytes.get() - frame.len());
                Some(frame)
            }
            None => {
                // After a burst, give the queue's memory back: an idle connection should
                // not keep room for thousands of frames.
                if frames.capacity() > RETAINED_CAPACITY {
                    *frames = VecDeque::new();
                }
                let waker = match self.waker.take() {
                    Some(waker) if waker.will_wake(cx.waker()) => waker,
                    _ => cx.waker().clone(),
                };
                self.waker.set(Some(waker));
                None
            }
        }
    }
}

/// A connection's end of its inbox; add it to the actor's context with `add_stream`.
/// It never ends: the connection closes it with [`Inboxes::close`] when it stops.
pub struct InboxStream(Rc<Inbox>);

impl Stream for InboxStream {
    type Item = ByteString;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<ByteString>> {
        match self.0.pop(cx) {
            Some(frame) => Poll::Ready(Some(frame)),
            None => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: usize) -> ByteString {
        ByteString::from("x".repeat(len))
    }

    #[test]
    fn an_inbox_keeps_order_and_counts_its_bytes() {
        let inbox = Inbox::new(1000);
        let cx = TaskContext::from_waker(Waker::noop());
        for len in [10, 20, 30] {
            inbox.push(&frame(len), 1).unwrap();
        }
        assert_eq!(inbox.pending_bytes.get(), 60);
        let lengths: Vec<usize> = std::iter::from_fn(|| inbox.pop(&cx))
            .map(|f| f.len())
            .collect();
        assert_eq!(lengths, vec![10, 20, 30]);
        assert_eq!(inbox.pending_bytes.get(), 0);
    }

    #[test]
    fn over_budget_is_reported_once_and_the_queue_is_freed() {
        let inbox = Inbox::new(100);
        let cx = TaskContext::from_waker(Waker::noop());
        // An empty inbox takes any one frame, even one over the budget.
        inbox.push(&frame(150), 1).unwrap();
        assert_eq!(inbox.push(&frame(1), 2), Err(150));
        assert!(inbox.pop(&cx).is_none(), "queued frames are dropped");
        assert_eq!(inbox.push(&frame(1), 3), Ok(()), "reported once");
        assert!(inbox.pop(&cx).is_none(), "later frames are dropped too");
    }

    #[test]
    fn an_emptied_inbox_takes_a_whole_delivery_and_one_behind_is_held_to_the_budget() {
        let inbox = Inbox::new(100);
        let cx = TaskContext::from_waker(Waker::noop());
        // One delivery (a burst) of 300 bytes into an empty inbox: all of it is taken.
        for _ in 0..3 {
            inbox.push(&frame(100), 1).unwrap();
        }
        assert_eq!(inbox.pending_bytes.get(), 300);
        // The connection takes it all; the next burst is taken whole too.
        while inbox.pop(&cx).is_some() {}
        for _ in 0..3 {
            inbox.push(&frame(100), 2).unwrap();
        }
        // It has not taken that one when the next comes: now it is behind, and over.
        assert_eq!(inbox.push(&frame(1), 3), Err(300));
        assert!(inbox.pop(&cx).is_none(), "queued frames are dropped");
    }

    #[test]
    fn a_drained_inbox_gives_its_memory_back() {
        let inbox = Inbox::new(1 << 20);
        let cx = TaskContext::from_waker(Waker::noop());
        for _ in 0..10_000 {
            inbox.push(&frame(1), 1).unwrap();
        }
        while inbox.pop(&cx).is_some() {}
        assert!(inbox.frames.borrow().capacity() <= RETAINED_CAPACITY);
    }
}
