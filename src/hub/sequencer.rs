//! Keeps the order of a backend's answers: an answer that arrives later (a store's
//! round trip) is applied after every answer asked for before it, and before every
//! answer asked for after it, even one that was ready at once. So what a member says
//! before it leaves still reaches the room before its departure, whatever the backend.
//!
//! With a backend that answers at once (the in-memory one) nothing is queued and
//! nothing is boxed: an answer is applied on the spot while the queue is empty.

use std::{
    collections::VecDeque,
    future::Future,
    marker::PhantomData,
    pin::Pin,
    task::{Context as TaskContext, Poll},
};

use actix::prelude::*;

/// A value a backend gives now, or a future of it. A backend starts its work when it is
/// called; the future only waits for the result (only the oldest waiting future is
/// polled, so work that started late would wait behind it).
pub enum Answer<T> {
    Now(T),
    Later(Pin<Box<dyn Future<Output = T>>>),
}

impl<T> Answer<T> {
    async fn wait(self) -> T {
        match self {
            Answer::Now(value) => value,
            Answer::Later(future) => future.await,
        }
    }
}

type Completion<A> = Box<dyn FnOnce(&mut A, &mut Context<A>)>;

/// The answers an actor waits for, oldest first.
pub struct Sequencer<A: Actor<Context = Context<A>>> {
    queue: VecDeque<Pin<Box<dyn Future<Output = Completion<A>>>>>,
    /// A [`Drain`] is spawned on the actor's context and will empty the queue.
    draining: bool,
}

impl<A: Actor<Context = Context<A>>> Default for Sequencer<A> {
    fn default() -> Self {
        Self {
            queue: VecDeque::new(),
            draining: false,
        }
    }
}

/// An actor that applies answers in order.
pub trait Sequenced: Actor<Context = Context<Self>> {
    fn sequencer(&mut self) -> &mut Sequencer<Self>;
}

/// Calls `finish` with the answer's value once every earlier answer has been finished:
/// at once if the answer is ready and nothing waits before it.
pub fn then<A, T>(
    actor: &mut A,
    ctx: &mut Context<A>,
    answer: Answer<T>,
    finish: impl FnOnce(&mut A, &mut Context<A>, T) + 'static,
) where
    A: Sequenced,
    T: 'static,
{
    let answer = match answer {
        Answer::Now(value) if actor.sequencer().queue.is_empty() => {
            return finish(actor, ctx, value);
        }
        answer => answer,
    };
    let completion = async move {
        let value = answer.wait().await;
        Box::new(move |actor: &mut A, ctx: &mut Context<A>| finish(actor, ctx, value))
            as Completion<A>
    };
    let sequencer = actor.sequencer();
    sequencer.queue.push_back(Box::pin(completion));
    if !sequencer.draining {
        sequencer.draining = true;
        ctx.spawn(Drain(PhantomData));
    }
}

/// Finishes queued answers in order until the queue is empty.
struct Drain<A>(PhantomData<A>);

impl<A: Sequenced> ActorFuture<A> for Drain<A> {
    type Output = ();

    fn poll(
        self: Pin<&mut Self>,
        actor: &mut A,
        ctx: &mut Context<A>,
        task: &mut TaskContext<'_>,
    ) -> Poll<()> {
        loop {
            let sequencer = actor.sequencer();
            let Some(oldest) = sequencer.queue.front_mut() else {
                sequencer.draining = false;
                return Poll::Ready(());
            };
            match oldest.as_mut().poll(task) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(finish) => {
                    sequencer.queue.pop_front();
                    finish(actor, ctx);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    /// Records the values it finishes, in order.
    #[derive(Default)]
    struct Recorder {
        sequencer: Sequencer<Self>,
        finished: Vec<u32>,
    }

    impl Actor for Recorder {
        type Context = Context<Self>;
    }

    impl Sequenced for Recorder {
        fn sequencer(&mut self) -> &mut Sequencer<Self> {
            &mut self.sequencer
        }
    }

    /// A value to finish: ready now, or later through a channel.
    #[derive(Message)]
    #[rtype(result = "()")]
    enum Submit {
        Now(u32),
        Later(oneshot::Receiver<u32>),
    }

    impl Handler<Submit> for Recorder {
        type Result = ();

        fn handle(&mut self, submit: Submit, ctx: &mut Self::Context) {
            let answer = match submit {
                Submit::Now(value) => Answer::Now(value),
                Submit::Later(receiver) => {
                    Answer::Later(Box::pin(async move { receiver.await.unwrap_or(u32::MAX) }))
                }
            };
            then(self, ctx, answer, |recorder, _, value| {
                recorder.finished.push(value)
            });
        }
    }

    #[derive(Message)]
    #[rtype(result = "Vec<u32>")]
    struct Finished;

    impl Handler<Finished> for Recorder {
        type Result = Vec<u32>;

        fn handle(&mut self, _: Finished, _: &mut Self::Context) -> Vec<u32> {
            self.finished.clone()
        }
    }

    async fn finished_within_deadline(recorder: &Addr<Recorder>, count: usize) -> Vec<u32> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let finished = recorder.send(Finished).await.unwrap();
            if finished.len() >= count || tokio::time::Instant::now() > deadline {
                return finished;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    #[actix_rt::test]
    async fn answers_are_finished_in_the_order_they_were_asked_for() {
        let recorder = Recorder::default().start();
        recorder.send(Submit::Now(1)).await.unwrap();
        let (second_tx, second_rx) = oneshot::channel();
        let (third_tx, third_rx) = oneshot::channel();
        recorder.send(Submit::Later(second_rx)).await.unwrap();
        recorder.send(Submit::Later(third_rx)).await.unwrap();
        // Ready at once, but asked for after two that are not: it waits its turn.
        recorder.send(Submit::Now(4)).await.unwrap();
        assert_eq!(recorder.send(Finished).await.unwrap(), vec![1]);
        // The later answers arrive in reverse order.
        third_tx.send(3).unwrap();
        assert_eq!(recorder.send(Finished).await.unwrap(), vec![1]);
        second_tx.send(2).unwrap();
        assert_eq!(
            finished_within_deadline(&recorder, 4).await,
            vec![1, 2, 3, 4]
        );
        // With nothing waiting, a ready answer is finished on the spot again.
        recorder.send(Submit::Now(5)).await.unwrap();
        assert_eq!(recorder.send(Finished).await.unwrap(), vec![1, 2, 3, 4, 5]);
    }
}
