//! Calls that gave up, kept so that a client's retry of their request continues them.
//!
//! The openai and anthropic SDKs retry a request when their transport raises (no credential
//! within the wait budget, a connection error the driver gave up on). Such a retry is the
//! same user request: it continues the call it retries, with the budgets that call spent,
//! rather than starting a new turn with fresh ones. Only calls started with a `request_id`
//! are kept, at most [`MAX_GIVEN_UP_CALLS`], the oldest dropped first; in memory only,
//! like open calls.

use std::collections::VecDeque;

use super::{Call, CallId, Next};
use crate::limits::MAX_GIVEN_UP_CALLS;
use crate::registry::Registry;
use crate::time::Millis;

/// A call that gave up, and when.
#[derive(Clone, Debug)]
pub(crate) struct GivenUp {
    id: CallId,
    at: Millis,
    call: Call,
}

impl Registry {
    /// Keeps `call`, which just gave up, for a client's retry of its request.
    pub(super) fn keep_given_up(&mut self, id: CallId, call: Call) {
        let at = self.last_now;
        let kept = self.given_up_mut();
        if kept.len() >= MAX_GIVEN_UP_CALLS {
            kept.pop_front();
        }
        kept.push_back(GivenUp { id, at, call });
    }

    /// The latest given-up call of `request_id`, taken out to continue at `now`: the time
    /// since it gave up counts as waited (the client's own backoff).
    pub(super) fn take_given_up(
        &mut self,
        now: Millis,
        request_id: &str,
    ) -> Option<(CallId, Call)> {
        let position = self
            .given_up
            .iter()
            .rposition(|kept| kept.call.request_id.as_deref() == Some(request_id))?;
        let GivenUp { id, at, mut call } = self.given_up_mut().remove(position)?;
        call.waited_ms = call.waited_ms.saturating_add(at.until(now));
        call.next = Next::Start;
        Some((id, call))
    }

    /// The kept calls, to change (their before-image recorded first in an open journal).
    fn given_up_mut(&mut self) -> &mut VecDeque<GivenUp> {
        if let Some(journal) = &mut self.journal {
            journal.record_given_up(&self.given_up);
        }
        &mut self.given_up
    }
}

#[cfg(test)]
mod tests {
    use crate::call::{Action, CallReport, CallStart};
    use crate::limits::MAX_GIVEN_UP_CALLS;
    use crate::response::Response;
    use crate::time::Millis;
    use crate::{NewEntry, Options, PoolKey, Registry, Secret};

    fn given_up_call(registry: &mut Registry, now: u64, request: &str) -> u64 {
        let start = CallStart {
            request_id: Some(request.to_owned()),
            max_sends: Some(1),
            ..CallStart::new(PoolKey::parse("openrouter").unwrap())
        };
        let Action::Send { call_id, .. } = registry.start_call(Millis(now), &start).unwrap() else {
            panic!("expected a send");
        };
        let report = CallReport {
            call_id,
            response: Response {
                network_error: Some("reset".into()),
                ..Response::default()
            },
            delivered: false,
        };
        let action = registry.call_report(Millis(now), &report).unwrap();
        assert!(matches!(action, Action::GiveUp { .. }), "{action:?}");
        call_id.0
    }

    /// A registry whose pool `openrouter` holds one API key.
    fn one_key() -> (Registry, PoolKey) {
        let mut registry = Registry::new(Options {
            writer: "w1".into(),
            seed: 1,
        })
        .unwrap();
        let pool = PoolKey::parse("openrouter").unwrap();
        let entry = NewEntry {
            access_token: Some(Secret::new("sk-test-a")),
            ..NewEntry::default()
        };
        registry.add_entry(Millis(0), &pool, entry).unwrap();
        (registry, pool)
    }

    #[test]
    fn an_undone_input_puts_the_given_up_calls_back() {
        let (mut registry, pool) = one_key();
        given_up_call(&mut registry, 1_000, "req-1");
        // A store whose write failed undoes the input: the continued call is kept again.
        registry.begin_changes();
        let retry = CallStart {
            request_id: Some("req-1".into()),
            client_retry: true,
            ..CallStart::new(pool.clone())
        };
        let continued = registry.start_call(Millis(2_000), &retry).unwrap();
        assert!(matches!(continued, Action::GiveUp { call_id, .. } if call_id.0 == 1));
        assert_eq!(registry.given_up.len(), 1);
        registry.undo_changes();
        assert_eq!(registry.given_up.len(), 1);
        // And a give-up undone is not kept.
        registry.begin_changes();
        given_up_call(&mut registry, 3_000, "req-2");
        assert_eq!(registry.given_up.len(), 2);
        registry.undo_changes();
        assert_eq!(registry.given_up.len(), 1);
        assert!(registry.calls.is_empty());
    }

    #[test]
    fn the_oldest_given_up_call_is_dropped_past_the_bound() {
        let (mut registry, pool) = one_key();
        for n in 0..=MAX_GIVEN_UP_CALLS {
            given_up_call(&mut registry, 1_000, &format!("req-{n}"));
        }
        assert_eq!(registry.given_up.len(), MAX_GIVEN_UP_CALLS);
        let retry = |request: &str| CallStart {
            request_id: Some(request.to_owned()),
            client_retry: true,
            ..CallStart::new(pool.clone())
        };
        // req-0 was dropped: its retry is a new call, which sends.
        let fresh = registry.start_call(Millis(2_000), &retry("req-0")).unwrap();
        assert!(
            matches!(fresh, Action::Send { call_id, .. } if call_id.0 as usize == MAX_GIVEN_UP_CALLS + 2)
        );
        // req-1 is kept: its retry continues call 2, which spent its one send.
        let continued = registry.start_call(Millis(2_000), &retry("req-1")).unwrap();
        assert!(
            matches!(continued, Action::GiveUp { call_id, .. } if call_id.0 == 2),
            "{continued:?}"
        );
    }
}
