//! Reference model: the engine against a deliberately naive model of SPEC §3–§4, over
//! random operation sequences (hand-rolled proptest state machine).
//!
//! The model is a `Vec` of entries and linear scans. It states exactly, for the hermes
//! preset without jitter and with distinct secrets:
//! - which entries are selectable at `t` (not dead, no unexpired cooldown, has a secret);
//! - `fill_first` (lowest priority, ties by id), `round_robin` (the next after the cursor
//!   the last `acquire` left, wrapping), `least_used` (lowest counter, ties by priority),
//!   `random` (some selectable entry);
//! - every hand-out (acquire or rotation) increments that entry's counter;
//! - 402 marks the entry exhausted for `cooldown_billing_ms` and rotates; 401 on an API
//!   key for `cooldown_auth_ms` and rotates; a terminal 401 marks it dead; a late report
//!   never shortens a bench in force nor revives a dead entry;
//! - 500 retries the same entry with exponential backoff while the turn's budget lasts,
//!   then fails; `begin_turn` and `reset` restore the budget;
//! - 200 settles the lease (`done`) and clears nothing;
//! - when nothing is selectable: `wait` until the earliest cooldown end, else `fail`;
//! - the clock: a `now` earlier than the last one seen counts as the last one.

use credpool_core::{
    AcquireRequest, Body, Decision, EntryId, LeaseId, Millis, NewEntry, Options, OutcomeClass,
    Policy, PoolKey, PoolUpdate, Reason, Registry, Report, Response, Secret, Strategy as Selection,
};
use proptest::prelude::*;
use serde_json::json;

const IDS: [&str; 5] = ["a", "b", "c", "d", "e"];

#[derive(Clone, Debug)]
enum Op {
    Add(usize, Option<i64>),
    Remove(usize),
    SetPriority(usize, i64),
    Switch(Selection),
    Acquire,
    Report(usize, u16),
    ReportTerminal(usize),
    Release(usize),
    Reset,
    BeginTurn,
    Advance(u64),
    Back(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..IDS.len(), prop::option::of(-3i64..6)).prop_map(|(i, p)| Op::Add(i, p)),
        1 => (0..IDS.len()).prop_map(Op::Remove),
        1 => (0..IDS.len(), -3i64..6).prop_map(|(i, p)| Op::SetPriority(i, p)),
        1 => strategy().prop_map(Op::Switch),
        6 => Just(Op::Acquire),
        5 => (0usize..8, prop::sample::select(vec![200u16, 401, 402, 500])).prop_map(|(l, s)| Op::Report(l, s)),
        1 => (0usize..8).prop_map(Op::ReportTerminal),
        1 => (0usize..8).prop_map(Op::Release),
        1 => Just(Op::Reset),
        1 => Just(Op::BeginTurn),
        3 => prop_oneof![0u64..120_000, 0u64..4_000_000].prop_map(Op::Advance),
        1 => (0u64..7_200_000).prop_map(Op::Back),
    ]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MStatus {
    Ok,
    Exhausted(u64),
    Dead,
}

#[derive(Clone, Debug)]
struct MEntry {
    id: &'static str,
    priority: i64,
    status: MStatus,
    count: u64,
}

/// The naive model.
#[derive(Debug)]
struct Model {
    strategy: Selection,
    entries: Vec<MEntry>,
    removed: Vec<&'static str>,
    cursor: Option<(i64, &'static str)>,
    clock: u64,
    next_lease: u64,
    leases: Vec<(u64, &'static str)>,
    same_retries: u32,
}

impl Model {
    fn selectable(&self, e: &MEntry) -> bool {
        match e.status {
            MStatus::Ok => true,
            MStatus::Exhausted(until) => until <= self.clock,
            MStatus::Dead => false,
        }
    }

    fn find(&self, id: &str) -> Option<usize> {
        self.entries.iter().position(|e| e.id == id)
    }

    /// Candidates in (priority, id) order, skipping `exclude`.
    fn candidates(&self, exclude: Option<&str>) -> Vec<&MEntry> {
        let mut list: Vec<&MEntry> = self
            .entries
            .iter()
            .filter(|e| self.selectable(e) && Some(e.id) != exclude)
            .collect();
        list.sort_by_key(|e| (e.priority, e.id));
        list
    }

    /// The entry the strategy picks (`None` for `random`: any candidate is fine).
    fn pick(&self, exclude: Option<&str>) -> Option<Option<&'static str>> {
        let list = self.candidates(exclude);
        let first = list.first()?;
        Some(match self.strategy {
            Selection::FillFirst => Some(first.id),
            Selection::RoundRobin => Some(
                list.iter()
                    .find(|e| self.cursor.is_none_or(|c| (e.priority, e.id) > c))
                    .unwrap_or(first)
                    .id,
            ),
            Selection::LeastUsed => list
                .iter()
                .min_by_key(|e| (e.count, e.priority, e.id))
                .map(|e| e.id),
            // Random (and any strategy this model does not know): not modelled.
            _ => None,
        })
    }

    /// The decision when nothing is selectable.
    fn no_entry(&self, reason: Reason, status: Option<u16>) -> Decision {
        let until = self
            .entries
            .iter()
            .filter_map(|e| match e.status {
                MStatus::Exhausted(until) if until > self.clock => Some(until),
                _ => None,
            })
            .min();
        match until {
            Some(until) => Decision::Wait {
                until: Millis(until),
                reason,
                hint: None,
            },
            None => Decision::Fail {
                reason: if status.is_none() {
                    Reason::NoUsableEntry
                } else {
                    reason
                },
                status,
            },
        }
    }

    fn hand_out(&mut self, id: &'static str) -> u64 {
        let i = self.find(id).expect("picked entry exists");
        self.entries[i].count += 1;
        let lease = self.next_lease;
        self.next_lease += 1;
        self.leases.push((lease, id));
        lease
    }

    fn mark(&mut self, id: &str, status: MStatus) {
        let i = self.find(id).expect("marked entry exists");
        let entry = &mut self.entries[i];
        entry.status = match (entry.status, status) {
            (MStatus::Dead, _) => MStatus::Dead,
            (MStatus::Exhausted(held), MStatus::Exhausted(new)) if held > self.clock => {
                MStatus::Exhausted(held.max(new))
            }
            (_, new) => new,
        };
    }
}

fn secret_of(id: &str) -> String {
    format!("sk-model-{id}")
}

/// Applies `ops` to the engine and the model, comparing after every step.
fn run(strategy: Selection, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut r = Registry::new(Options {
        writer: "w".into(),
        seed: 11,
    })
    .unwrap();
    let key = PoolKey::parse("openrouter").unwrap();
    r.configure_pool(
        Millis(1),
        &key,
        PoolUpdate {
            strategy: Some(strategy),
            policy: Some(Policy::hermes()),
            ..PoolUpdate::default()
        },
    )
    .unwrap();
    let policy = Policy::hermes();
    let mut m = Model {
        strategy,
        entries: Vec::new(),
        removed: Vec::new(),
        cursor: None,
        clock: 1,
        next_lease: 1,
        leases: Vec::new(),
        same_retries: 0,
    };
    let mut now: u64 = 1_700_000_000_000;
    let report = |lease: u64, response: Response| Report {
        pool: key.clone(),
        lease_id: Some(LeaseId(lease)),
        entry_id: None,
        response,
    };
    for op in ops {
        // Every input but release reads the clock; a report without an open lease is
        // not sent at all.
        let idle = m.leases.is_empty() && matches!(op, Op::Report(..) | Op::ReportTerminal(_));
        if !idle && !matches!(op, Op::Release(_) | Op::Advance(_) | Op::Back(_)) {
            m.clock = m.clock.max(now);
        }
        let t = Millis(now);
        match op {
            Op::Add(i, priority) => {
                let id = IDS[*i];
                let new = NewEntry {
                    id: Some(EntryId::parse(id).unwrap()),
                    priority: *priority,
                    access_token: Some(Secret::new(secret_of(id))),
                    ..NewEntry::default()
                };
                let result = r.add_entry(t, &key, new);
                if m.find(id).is_some() || m.removed.contains(&id) {
                    prop_assert!(result.is_err(), "duplicate add of {id} accepted");
                } else {
                    prop_assert!(result.is_ok(), "add of {id} failed: {result:?}");
                    let priority = priority.unwrap_or_else(|| {
                        m.entries.iter().map(|e| e.priority + 1).max().unwrap_or(0)
                    });
                    m.entries.push(MEntry {
                        id,
                        priority,
                        status: MStatus::Ok,
                        count: 0,
                    });
                }
            }
            Op::Remove(i) => {
                let id = IDS[*i];
                let result = r.remove_entry(t, &key, &EntryId::parse(id).unwrap());
                match m.find(id) {
                    Some(index) => {
                        prop_assert!(result.is_ok());
                        m.entries.remove(index);
                        m.removed.push(id);
                        m.leases.retain(|(_, e)| *e != id);
                    }
                    None => prop_assert!(result.is_err()),
                }
            }
            Op::SetPriority(i, priority) => {
                let id = IDS[*i];
                let result = r.set_priority(t, &key, &EntryId::parse(id).unwrap(), *priority);
                match m.find(id) {
                    Some(index) => {
                        prop_assert!(result.is_ok());
                        m.entries[index].priority = *priority;
                    }
                    None => prop_assert!(result.is_err()),
                }
            }
            Op::Switch(strategy) => {
                r.configure_pool(
                    t,
                    &key,
                    PoolUpdate {
                        strategy: Some(*strategy),
                        ..PoolUpdate::default()
                    },
                )
                .unwrap();
                m.strategy = *strategy;
            }
            Op::Acquire => {
                let request = AcquireRequest::new(key.clone());
                let got = r.acquire(t, &request).unwrap();
                match m.pick(None) {
                    None => {
                        prop_assert_eq!(got, m.no_entry(Reason::AllCoolingDown, None));
                    }
                    Some(expected) => {
                        let Decision::Use {
                            entry_id, lease_id, ..
                        } = &got
                        else {
                            return Err(TestCaseError::fail(format!("expected use, got {got:?}")));
                        };
                        let id = IDS
                            .iter()
                            .copied()
                            .find(|i| *i == entry_id.as_str())
                            .unwrap();
                        if let Some(expected) = expected {
                            prop_assert_eq!(id, expected, "strategy {:?}", m.strategy);
                        } else {
                            prop_assert!(m.candidates(None).iter().any(|e| e.id == id));
                        }
                        let lease = m.hand_out(id);
                        prop_assert_eq!(lease_id.0, lease);
                        if m.strategy == Selection::RoundRobin {
                            let index = m.find(id).unwrap();
                            m.cursor = Some((m.entries[index].priority, id));
                        }
                    }
                }
            }
            Op::Report(..) | Op::ReportTerminal(_) => {
                let (lease, status, terminal) = match op {
                    Op::Report(l, s) => (*l, *s, false),
                    Op::ReportTerminal(l) => (*l, 401, true),
                    _ => unreachable!(),
                };
                let Some(&(lease_id, id)) = m.leases.get(lease % m.leases.len().max(1)) else {
                    continue;
                };
                let body =
                    terminal.then(|| Body::Json(json!({"error": {"code": "invalid_token"}})));
                let response = Response {
                    status: Some(status),
                    body,
                    ..Response::default()
                };
                let got = r.report(t, &report(lease_id, response)).unwrap();
                let expected = match (status, terminal) {
                    (200, _) => {
                        m.leases.retain(|(l, _)| *l != lease_id);
                        Decision::Done
                    }
                    (500, _) => {
                        if m.same_retries < policy.max_same_retries_per_turn {
                            m.same_retries += 1;
                            let delay = (policy.backoff_base_ms << (m.same_retries - 1))
                                .min(policy.backoff_max_ms);
                            Decision::RetrySame {
                                entry_id: EntryId::parse(id).unwrap(),
                                lease_id: LeaseId(lease_id),
                                delay_ms: delay,
                                reason: Reason::Outcome(OutcomeClass::ServerError),
                                hint: None,
                            }
                        } else {
                            m.leases.retain(|(l, _)| *l != lease_id);
                            Decision::Fail {
                                reason: Reason::Outcome(OutcomeClass::ServerError),
                                status: Some(500),
                            }
                        }
                    }
                    _ => {
                        let (class, mark) = match (status, terminal) {
                            (402, _) => (
                                OutcomeClass::Billing,
                                MStatus::Exhausted(m.clock + policy.cooldown_billing_ms),
                            ),
                            (_, true) => (OutcomeClass::AuthTerminal, MStatus::Dead),
                            _ => (
                                OutcomeClass::Auth,
                                MStatus::Exhausted(m.clock + policy.cooldown_auth_ms),
                            ),
                        };
                        m.mark(id, mark);
                        m.leases.retain(|(l, _)| *l != lease_id);
                        let reason = Reason::Outcome(class);
                        match m.pick(Some(id)) {
                            None => m.no_entry(reason, Some(status)),
                            Some(expected) => {
                                let chosen = match (expected, &got) {
                                    (Some(e), _) => e,
                                    (None, Decision::Use { entry_id, .. }) => IDS
                                        .iter()
                                        .copied()
                                        .find(|i| *i == entry_id.as_str())
                                        .unwrap(),
                                    (None, other) => {
                                        return Err(TestCaseError::fail(format!(
                                            "expected a rotation, got {other:?}"
                                        )));
                                    }
                                };
                                prop_assert!(m.candidates(Some(id)).iter().any(|e| e.id == chosen));
                                let lease = m.hand_out(chosen);
                                Decision::Use {
                                    entry_id: EntryId::parse(chosen).unwrap(),
                                    lease_id: LeaseId(lease),
                                    reason: Some(reason),
                                    hint: None,
                                }
                            }
                        }
                    }
                };
                prop_assert_eq!(got, expected, "after {:?}", op);
            }
            Op::Release(l) => {
                let Some(&(lease_id, _)) = m.leases.get(l % m.leases.len().max(1)) else {
                    continue;
                };
                r.release(&key, LeaseId(lease_id)).unwrap();
                m.leases.retain(|(l, _)| *l != lease_id);
            }
            Op::Reset => {
                r.reset(t, &key, None).unwrap();
                for e in &mut m.entries {
                    e.status = MStatus::Ok;
                }
                m.same_retries = 0;
            }
            Op::BeginTurn => {
                r.begin_turn(t, None).unwrap();
                m.same_retries = 0;
            }
            Op::Advance(ms) => now += ms,
            Op::Back(ms) => now -= ms,
        }
        // The selection indexes, rebuilt from scratch, match the maintained ones.
        if let Err(drift) = r.check_indexes() {
            return Err(TestCaseError::fail(format!("after {op:?}: {drift}")));
        }
        // Selectability and counters, entry by entry, at the model's clock.
        let pool = r.pool(&key).unwrap();
        prop_assert_eq!(pool.entries().len(), m.entries.len());
        for e in &m.entries {
            let engine = pool.entry(&EntryId::parse(e.id).unwrap()).unwrap();
            let usable = engine
                .availability(Millis(m.clock), None, policy.refresh_skew_ms)
                .is_usable();
            prop_assert_eq!(
                usable,
                m.selectable(e),
                "selectable({}) at {}",
                e.id,
                m.clock
            );
            prop_assert_eq!(engine.request_count(), e.count, "count of {}", e.id);
            prop_assert_eq!(engine.meta.priority, e.priority);
        }
    }
    Ok(())
}

fn strategy() -> impl Strategy<Value = Selection> {
    prop::sample::select(vec![
        Selection::FillFirst,
        Selection::RoundRobin,
        Selection::LeastUsed,
        Selection::Random,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn engine_matches_the_naive_model(s in strategy(), ops in prop::collection::vec(op(), 1..80)) {
        run(s, &ops)?;
    }
}

/// The late-report case the fuzzer's deadline invariant caught, spelled out.
#[test]
fn a_late_401_does_not_shorten_a_billing_bench() {
    let ops = [
        Op::Add(0, None),
        Op::Add(1, None),
        Op::Acquire,
        Op::Acquire,
        Op::Report(0, 402),
        Op::Report(0, 401),
        Op::Advance(400_000),
        Op::Acquire,
    ];
    run(Selection::FillFirst, &ops).unwrap();
}
