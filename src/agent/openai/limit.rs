//! How many requests the AI service is sent at once, found rather than configured: the
//! level starts low, doubles with each round of answers until the service first says "too
//! many requests" (slow start), then grows by one a round (additive increase) and halves
//! at each "too many" (multiplicative decrease), as TCP finds a link's capacity. The
//! configured `agent.concurrency` is the ceiling. Shared by every conversation the daemon
//! decides, whichever channel it came from.

use std::sync::Mutex;

use tokio::sync::Notify;

/// Where the level starts (or the ceiling, when lower): what the daemon sent at once before
/// it found levels itself.
pub const START: usize = 8;

#[derive(Debug)]
struct State {
    /// The level, fractional so that additive increase can add 1/level an answer.
    level: f64,
    in_flight: usize,
    /// Doubling until the first "too many requests".
    slow_start: bool,
    /// "Too many" answers that came back for requests sent before the last decrease are
    /// the same overload: one decrease a round, not one an answer.
    decreased_at: u64,
    sent: u64,
}

/// The adaptive level and the requests in flight under it.
#[derive(Debug)]
pub struct AdaptiveLimit {
    ceiling: usize,
    state: Mutex<State>,
    freed: Notify,
}

/// A request's place under the level: freed when dropped.
#[must_use]
pub struct Permit<'a> {
    limit: &'a AdaptiveLimit,
    /// The request's number, to tell a "too many" of an old round from a new one.
    number: u64,
}

impl AdaptiveLimit {
    pub fn new(ceiling: usize) -> AdaptiveLimit {
        let ceiling = ceiling.max(1);
        let state =
            State { level: START.min(ceiling) as f64, in_flight: 0, slow_start: true, decreased_at: 0, sent: 0 };
        AdaptiveLimit { ceiling, state: Mutex::new(state), freed: Notify::new() }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The level now: how many requests may be in flight at once.
    pub fn level(&self) -> usize {
        (self.state().level.floor() as usize).clamp(1, self.ceiling)
    }

    /// Waits for a place under the level.
    pub async fn acquire(&self) -> Permit<'_> {
        loop {
            let freed = self.freed.notified();
            {
                let mut state = self.state();
                let level = (state.level.floor() as usize).clamp(1, self.ceiling);
                if state.in_flight < level {
                    state.in_flight += 1;
                    state.sent += 1;
                    return Permit { limit: self, number: state.sent };
                }
            }
            freed.await;
        }
    }
}

impl Permit<'_> {
    /// The service answered: the level grows (by one an answer in slow start, by one a
    /// round after), when at least half of it is in flight.
    pub fn answered(&self) {
        let mut state = self.limit.state();
        // Only a level in use is proven: with under half of it in flight, an answer says
        // nothing about more (the level would drift to the ceiling untested).
        if ((2 * state.in_flight) as f64) < state.level.floor() {
            return;
        }
        let step = if state.slow_start { 1.0 } else { 1.0 / state.level.floor().max(1.0) };
        state.level = (state.level + step).min(self.limit.ceiling as f64);
        drop(state);
        self.limit.freed.notify_waiters();
    }

    /// The service said "too many requests": the level halves, once for every request sent
    /// at the level that overloaded it.
    pub fn overloaded(&self) {
        let mut state = self.limit.state();
        if self.number > state.decreased_at {
            state.level = (state.level / 2.0).max(1.0);
            state.slow_start = false;
            state.decreased_at = state.sent;
        }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.limit.state().in_flight -= 1;
        self.limit.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` requests sent at once, all answered.
    async fn a_round(limit: &AdaptiveLimit, n: usize) {
        let permits: Vec<_> = futures_util::future::join_all((0..n).map(|_| limit.acquire())).await;
        for p in &permits {
            p.answered();
        }
    }

    #[test]
    fn the_level_doubles_until_too_many_then_halves_and_grows_by_one_a_round() {
        let limit = AdaptiveLimit::new(64);
        assert_eq!(limit.level(), START);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            // A full round of answers doubles the level.
            a_round(&limit, START).await;
            assert_eq!(limit.level(), 2 * START);
            // All those sent at that level say "too many": one halving, not one each.
            let permits: Vec<_> = futures_util::future::join_all((0..2 * START).map(|_| limit.acquire())).await;
            for p in &permits {
                p.overloaded();
            }
            drop(permits);
            assert_eq!(limit.level(), START);
            // Then one a full round.
            a_round(&limit, START).await;
            assert_eq!(limit.level(), START + 1);
        });
    }

    #[test]
    fn answers_below_the_level_do_not_raise_it() {
        let limit = AdaptiveLimit::new(64);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            for _ in 0..100 {
                limit.acquire().await.answered();
            }
            assert_eq!(limit.level(), START, "one at a time proves nothing about eight");
        });
    }

    #[test]
    fn the_level_never_passes_the_ceiling_nor_falls_below_one() {
        let limit = AdaptiveLimit::new(2);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            for _ in 0..10 {
                a_round(&limit, 2).await;
            }
            assert_eq!(limit.level(), 2);
            for _ in 0..10 {
                let p = limit.acquire().await;
                p.overloaded();
                drop(p);
            }
            assert_eq!(limit.level(), 1);
        });
    }

    #[tokio::test]
    async fn a_request_waits_for_a_place_under_the_level() {
        let limit = std::sync::Arc::new(AdaptiveLimit::new(1));
        let first = limit.acquire().await;
        let waiting = {
            let limit = limit.clone();
            tokio::spawn(async move {
                let _second = limit.acquire().await;
            })
        };
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "one place, taken");
        drop(first);
        waiting.await.unwrap();
    }
}
