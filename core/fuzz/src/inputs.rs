//! Target `inputs`: arbitrary sequences of inputs against a [`Registry`], with the
//! invariants checked after every step:
//! - no panic, and an input that fails leaves the persisted state as it was;
//! - `acquire` never hands out an entry that is dead, cooling (entry-wide or for the model)
//!   or without a secret, and never answers wait/fail/fallback while an entry is usable
//!   (a pool already on its fallback chain keeps falling back for the turn, by design);
//!   a rotation after a report hands out a usable entry other than the failed one;
//! - a cooldown deadline in force is never moved earlier, except by `reset` or a
//!   successful refresh (a new token); model benches likewise;
//! - per-writer request counters never decrease;
//! - export → `from_state` → export is a fixed point; syncing the registry's own export
//!   changes nothing.
//!
//! The clock starts at a realistic epoch and moves by small steps, hour-long jumps
//! forwards and backwards; the harness tracks the engine's effective clock (the largest
//! `now` seen by an input that reads the clock).

use std::collections::{BTreeMap, BTreeSet};

use arbitrary::{Arbitrary, Unstructured};
use credpool_core::{
    AcquireRequest, Action, AuthType, Availability, CallId, CallReport, CallStart, Decision, Entry,
    EntryId, FallbackTarget, Input, LeaseId, Millis, ModelScope, NewEntry, Options, OutputBody,
    Policy, PoolKey, PoolUpdate, Preset, Reason, RefreshOutcome, RefreshResult, Registry, Reply,
    Report, Response, Secret, StateDoc, Status, Strategy,
};
use serde_json::Value;

use super::generate;

/// Pools the harness uses (small sets make collisions likely).
pub const POOLS: [&str; 3] = ["openrouter", "anthropic", "custom:local"];
/// Entry ids.
pub const IDS: [&str; 4] = ["a", "b", "c", "d"];
/// Models.
pub const MODELS: [&str; 2] = ["m1", "m2"];
/// The first `now` of a run.
pub const START: u64 = 1_700_000_000_000;
const HOUR: u64 = 3_600_000;

/// One step of a run.
#[derive(Debug)]
pub enum Op {
    /// `configure_pool`.
    Configure {
        /// Pool index.
        pool: u8,
        /// Strategy index (4 and up: unchanged).
        strategy: u8,
        /// 0 hermes, 1 adaptive, 2 adaptive with model-scoped rate limits, else unchanged.
        preset: u8,
        /// Fallback chain: none, one step, two steps, unchanged.
        fallback: u8,
    },
    /// `add_entry`.
    Add {
        /// Pool index.
        pool: u8,
        /// Entry id index.
        id: u8,
        /// Secret index: equal indexes share a secret (siblings).
        secret: u8,
        /// OAuth entry.
        oauth: bool,
        /// With a refresh token.
        refresh: bool,
        /// Access-token expiry, minutes from now.
        expires_in_min: Option<u8>,
        /// Explicit priority.
        priority: Option<i8>,
        /// A borrowed source (`env:`): secret never persisted.
        borrowed: bool,
    },
    /// `remove_entry`.
    Remove {
        /// Pool index.
        pool: u8,
        /// Entry id index.
        id: u8,
    },
    /// `acquire`.
    Acquire {
        /// Pool index.
        pool: u8,
        /// Model index.
        model: Option<u8>,
        /// Session index.
        session: Option<u8>,
    },
    /// `report` against an open lease.
    Report {
        /// Lease index.
        lease: u8,
        /// The response.
        response: Response,
    },
    /// `report` by entry id.
    ReportEntry {
        /// Pool index.
        pool: u8,
        /// Entry id index.
        id: u8,
        /// The response.
        response: Response,
    },
    /// `release`.
    Release {
        /// Lease index.
        lease: u8,
    },
    /// `refresh_result` for a `refresh` decision seen earlier.
    RefreshResult {
        /// Which refresh decision.
        which: u8,
        /// 0 refreshed, 1 refreshed with a new refresh token, 2 failed, 3 failed terminally,
        /// 4 adopted.
        outcome: u8,
        /// Report a stale generation.
        stale: bool,
    },
    /// `check_refresh`.
    CheckRefresh {
        /// Pool index.
        pool: u8,
        /// Entry id index.
        id: u8,
        /// Generation.
        generation: u8,
    },
    /// `set_priority`.
    SetPriority {
        /// Pool index.
        pool: u8,
        /// Entry id index.
        id: u8,
        /// Priority.
        priority: i8,
    },
    /// `reset` one entry or the pool.
    Reset {
        /// Pool index.
        pool: u8,
        /// Entry id index.
        id: Option<u8>,
    },
    /// `tick`.
    Tick,
    /// `status`.
    Status,
    /// `begin_turn`.
    BeginTurn {
        /// Pool index (all when absent).
        pool: Option<u8>,
    },
    /// `sync` of the registry's own export.
    SyncSelf,
    /// The clock moves forward by seconds.
    Advance(u16),
    /// The clock jumps forward by hours.
    Jump(u8),
    /// The clock jumps backwards by hours.
    Back(u8),
    /// The clock steps backwards by seconds.
    BackSeconds(u16),
    /// A whole call through the driver: each `send` answered by the next response (a 200
    /// once they run out), sleeps slept on the clock, refreshes answered by `refreshed`.
    Call {
        /// Pool index.
        pool: u8,
        /// Model index.
        model: Option<u8>,
        /// The provider's answers, in order.
        responses: Vec<Response>,
        /// `max_sends`, when set.
        max_sends: Option<u8>,
        /// The send whose failure comes after bytes reached the caller, if any.
        delivered_at: Option<u8>,
    },
}

impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0..=25u8)? {
            0 => Self::Configure {
                pool: u.arbitrary()?,
                strategy: u.int_in_range(0..=5)?,
                preset: u.int_in_range(0..=4)?,
                fallback: u.int_in_range(0..=3)?,
            },
            1..=3 => Self::Add {
                pool: u.arbitrary()?,
                id: u.arbitrary()?,
                secret: u.int_in_range(0..=5)?,
                oauth: u.arbitrary()?,
                refresh: u.arbitrary()?,
                expires_in_min: u.arbitrary()?,
                priority: u.arbitrary()?,
                borrowed: u.ratio(1, 6)?,
            },
            4 => Self::Remove {
                pool: u.arbitrary()?,
                id: u.arbitrary()?,
            },
            5..=8 => Self::Acquire {
                pool: u.arbitrary()?,
                model: u.arbitrary()?,
                session: if u.ratio(1, 4)? {
                    Some(u.arbitrary()?)
                } else {
                    None
                },
            },
            9..=12 => Self::Report {
                lease: u.arbitrary()?,
                response: generate::response(u, &MODELS)?,
            },
            13 => Self::ReportEntry {
                pool: u.arbitrary()?,
                id: u.arbitrary()?,
                response: generate::response(u, &MODELS)?,
            },
            14 => Self::Release {
                lease: u.arbitrary()?,
            },
            15 => Self::RefreshResult {
                which: u.arbitrary()?,
                outcome: u.int_in_range(0..=4)?,
                stale: u.ratio(1, 5)?,
            },
            16 => {
                if bool::arbitrary(u)? {
                    Self::CheckRefresh {
                        pool: u.arbitrary()?,
                        id: u.arbitrary()?,
                        generation: u.int_in_range(0..=3)?,
                    }
                } else {
                    Self::SetPriority {
                        pool: u.arbitrary()?,
                        id: u.arbitrary()?,
                        priority: u.arbitrary()?,
                    }
                }
            }
            17 => Self::Reset {
                pool: u.arbitrary()?,
                id: u.arbitrary()?,
            },
            18 => {
                if bool::arbitrary(u)? {
                    Self::Tick
                } else {
                    Self::Status
                }
            }
            19 => Self::BeginTurn {
                pool: u.arbitrary()?,
            },
            20 => Self::SyncSelf,
            21 => Self::Advance(u.arbitrary()?),
            22 => Self::Jump(u.int_in_range(0..=48)?),
            23 => Self::Back(u.int_in_range(0..=48)?),
            24 => Self::BackSeconds(u.arbitrary()?),
            _ => {
                let count = u.int_in_range(0..=6u8)?;
                let mut responses = Vec::new();
                for _ in 0..count {
                    responses.push(generate::response(u, &MODELS)?);
                }
                Self::Call {
                    pool: u.arbitrary()?,
                    model: u.arbitrary()?,
                    responses,
                    max_sends: u.arbitrary()?,
                    delivered_at: u.arbitrary()?,
                }
            }
        })
    }
}

/// The call an action belongs to.
fn call_id(action: &Action) -> Option<CallId> {
    match action {
        Action::Send { call_id, .. }
        | Action::Sleep { call_id, .. }
        | Action::Refresh { call_id, .. }
        | Action::Done { call_id, .. }
        | Action::GiveUp { call_id, .. } => Some(*call_id),
        _ => None,
    }
}

fn pick<'s>(list: &[&'s str], index: u8) -> &'s str {
    list[usize::from(index) % list.len()]
}

fn pool_key(index: u8) -> PoolKey {
    PoolKey::parse(pick(&POOLS, index)).expect("valid pool key")
}

fn entry_id(index: u8) -> EntryId {
    EntryId::parse(pick(&IDS, index)).expect("valid entry id")
}

/// An open lease as the host would remember it.
#[derive(Clone, Debug)]
struct LeaseInfo {
    pool: PoolKey,
    id: LeaseId,
}

/// A `refresh` decision the host may answer.
#[derive(Clone, Debug)]
struct PendingRefresh {
    pool: PoolKey,
    entry_id: EntryId,
    lease_id: LeaseId,
    generation: u64,
}

/// What the invariants compare between two steps, per entry.
#[derive(Clone, Debug)]
struct EntrySnapshot {
    blocked_until: u64,
    model_benches: BTreeMap<String, u64>,
    counts: BTreeMap<String, u64>,
}

type Snapshot = BTreeMap<(PoolKey, EntryId), EntrySnapshot>;

/// The instant until which an entry is benched entry-wide (`u64::MAX` when dead).
fn blocked_until(entry: &Entry) -> u64 {
    match entry.effective_status() {
        Status::Dead => u64::MAX,
        Status::Exhausted => entry.status.until.unwrap_or(entry.status.at).0,
        _ => 0,
    }
}

/// Drives a registry through [`Op`]s, checking the invariants after each one.
pub struct Driver {
    /// The registry under test.
    pub registry: Registry,
    /// The `now` handed to the next input.
    pub now: u64,
    /// The engine's effective clock: the largest `now` an input read.
    pub clock: u64,
    leases: Vec<LeaseInfo>,
    refreshes: Vec<PendingRefresh>,
    in_fallback: BTreeSet<PoolKey>,
    secret_serial: u64,
    /// Whether to check invariants (the merge harness only wants the states).
    pub check: bool,
}

impl Driver {
    /// A driver over an empty registry.
    pub fn new(writer: &str, seed: u64) -> Self {
        let registry = Registry::new(Options {
            writer: writer.to_owned(),
            seed,
        })
        .expect("valid writer");
        Self {
            registry,
            now: START,
            clock: 0,
            leases: Vec::new(),
            refreshes: Vec::new(),
            in_fallback: BTreeSet::new(),
            secret_serial: 0,
            check: true,
        }
    }

    fn snapshot(&self) -> Snapshot {
        let mut out = Snapshot::new();
        for pool in self.registry.pools() {
            for entry in pool.entries() {
                out.insert(
                    (pool.key().clone(), entry.id.clone()),
                    EntrySnapshot {
                        blocked_until: blocked_until(entry),
                        model_benches: entry
                            .model_cooldowns
                            .iter()
                            .map(|(m, c)| (m.clone(), c.until.0))
                            .collect(),
                        counts: (&entry.counts).into(),
                    },
                );
            }
        }
        out
    }

    fn usable(&self, key: &PoolKey, id: &EntryId, model: Option<&str>) -> Availability {
        let pool = self.registry.pool(key).expect("pool exists");
        let skew = pool.config().policy.refresh_skew_ms;
        pool.entry(id)
            .expect("handed-out entry exists")
            .availability(Millis(self.clock), model, skew)
    }

    fn any_usable(&self, key: &PoolKey, model: Option<&str>) -> bool {
        self.registry.pool(key).is_ok_and(|pool| {
            let skew = pool.config().policy.refresh_skew_ms;
            pool.entries()
                .iter()
                .any(|e| e.availability(Millis(self.clock), model, skew).is_usable())
        })
    }

    /// Remembers the leases and refreshes a decision opened, and fallbacks.
    fn note(&mut self, pool: &PoolKey, decision: &Decision) {
        match decision {
            Decision::Use { lease_id, .. } | Decision::RetrySame { lease_id, .. } => {
                self.leases.push(LeaseInfo {
                    pool: pool.clone(),
                    id: *lease_id,
                });
            }
            Decision::Refresh {
                entry_id,
                lease_id,
                generation,
                ..
            } => {
                self.leases.push(LeaseInfo {
                    pool: pool.clone(),
                    id: *lease_id,
                });
                self.refreshes.push(PendingRefresh {
                    pool: pool.clone(),
                    entry_id: entry_id.clone(),
                    lease_id: *lease_id,
                    generation: *generation,
                });
            }
            Decision::Fallback { .. } => {
                self.in_fallback.insert(pool.clone());
            }
            _ => {}
        }
        if self.leases.len() > 64 {
            self.leases.remove(0);
        }
        if self.refreshes.len() > 16 {
            self.refreshes.remove(0);
        }
    }

    fn export(&self) -> StateDoc {
        self.registry.export_state()
    }

    fn new_secret(&mut self, prefix: &str) -> Secret {
        self.secret_serial += 1;
        Secret::new(format!("{prefix}-{}", self.secret_serial))
    }

    /// Applies one op and checks the invariants.
    pub fn step(&mut self, op: &Op) {
        let before_doc = self.check.then(|| self.export());
        let before = if self.check {
            self.snapshot()
        } else {
            Snapshot::new()
        };
        // Inputs that read the clock; release, export and reveal do not.
        let reads_clock = !matches!(
            op,
            Op::Release { .. } | Op::Advance(_) | Op::Jump(_) | Op::Back(_) | Op::BackSeconds(_)
        );
        if reads_clock {
            self.clock = self.clock.max(self.now);
        }
        let now = Millis(self.now);
        let mut may_shorten = false;
        let mut failed = false;
        match op {
            Op::Configure {
                pool,
                strategy,
                preset,
                fallback,
            } => {
                let key = pool_key(*pool);
                let strategy = [
                    Strategy::FillFirst,
                    Strategy::RoundRobin,
                    Strategy::LeastUsed,
                    Strategy::Random,
                ]
                .get(usize::from(*strategy))
                .copied();
                let policy = match preset {
                    0 => Some(Policy::hermes()),
                    1 => Some(Policy::preset(Preset::Adaptive)),
                    2 => Some(Policy {
                        model_scoped_rate_limits: ModelScope::All,
                        ..Policy::adaptive()
                    }),
                    _ => None,
                };
                let others: Vec<PoolKey> = POOLS
                    .iter()
                    .map(|p| PoolKey::parse(p).expect("valid"))
                    .filter(|p| *p != key)
                    .collect();
                let fallback = match fallback {
                    0 => Some(Vec::new()),
                    1 | 2 => Some(
                        others
                            .iter()
                            .take(usize::from(*fallback))
                            .map(|p| FallbackTarget {
                                pool: p.clone(),
                                model: Some("m1".to_owned()),
                            })
                            .collect(),
                    ),
                    _ => None,
                };
                failed = self
                    .registry
                    .configure_pool(
                        now,
                        &key,
                        PoolUpdate {
                            strategy,
                            policy,
                            fallback,
                            api: None,
                        },
                    )
                    .is_err();
            }
            Op::Add {
                pool,
                id,
                secret,
                oauth,
                refresh,
                expires_in_min,
                priority,
                borrowed,
            } => {
                let entry = NewEntry {
                    id: Some(entry_id(*id)),
                    auth_type: Some(if *oauth {
                        AuthType::Oauth
                    } else {
                        AuthType::ApiKey
                    }),
                    priority: priority.map(i64::from),
                    source: borrowed.then(|| "env:FUZZ_KEY".to_owned()),
                    access_token: Some(Secret::new(format!("sk-fuzz-{secret}"))),
                    refresh_token: refresh.then(|| self.new_secret("rt")),
                    expires_at: expires_in_min.map(|m| now.plus(u64::from(m) * 60_000)),
                    ..NewEntry::default()
                };
                failed = self
                    .registry
                    .add_entry(now, &pool_key(*pool), entry)
                    .is_err();
            }
            Op::Remove { pool, id } => {
                failed = self
                    .registry
                    .remove_entry(now, &pool_key(*pool), &entry_id(*id))
                    .is_err();
            }
            Op::Acquire {
                pool,
                model,
                session,
            } => {
                let key = pool_key(*pool);
                let model = model.map(|m| pick(&MODELS, m).to_owned());
                let usable_before = self.any_usable(&key, model.as_deref());
                let request = AcquireRequest {
                    pool: key.clone(),
                    model: model.clone(),
                    session: session.map(|s| format!("session-{}", s % 3)),
                    ..AcquireRequest::new(key.clone())
                };
                match self.registry.acquire(now, &request) {
                    Ok(decision) => {
                        if self.check {
                            self.check_acquire(&key, model.as_deref(), usable_before, &decision);
                        }
                        self.note(&key, &decision);
                    }
                    Err(_) => failed = true,
                }
            }
            Op::Report { lease, response } => {
                if self.leases.is_empty() {
                    return;
                }
                let info = self.leases[usize::from(*lease) % self.leases.len()].clone();
                let model = self
                    .registry
                    .lease(info.id)
                    .ok()
                    .and_then(|l| l.model.clone());
                let report = Report {
                    pool: info.pool.clone(),
                    lease_id: Some(info.id),
                    entry_id: None,
                    response: response.clone(),
                };
                self.report(&report, model.as_deref(), &mut failed);
            }
            Op::ReportEntry { pool, id, response } => {
                let report = Report {
                    pool: pool_key(*pool),
                    lease_id: None,
                    entry_id: Some(entry_id(*id)),
                    response: response.clone(),
                };
                self.report(&report, None, &mut failed);
            }
            Op::Release { lease } => {
                if self.leases.is_empty() {
                    return;
                }
                let info = self.leases[usize::from(*lease) % self.leases.len()].clone();
                failed = self.registry.release(&info.pool, info.id).is_err();
            }
            Op::RefreshResult {
                which,
                outcome,
                stale,
            } => {
                if self.refreshes.is_empty() {
                    return;
                }
                let pending = self.refreshes[usize::from(*which) % self.refreshes.len()].clone();
                let result = match outcome {
                    0 => RefreshOutcome::Refreshed {
                        access_token: self.new_secret("at"),
                        refresh_token: None,
                        expires_at: Some(now.plus(HOUR)),
                    },
                    1 => RefreshOutcome::Refreshed {
                        access_token: self.new_secret("at"),
                        refresh_token: Some(self.new_secret("rt")),
                        expires_at: None,
                    },
                    2 | 3 => RefreshOutcome::Failed {
                        terminal: *outcome == 3,
                        reason: Some("invalid_grant".to_owned()),
                        message: None,
                    },
                    _ => RefreshOutcome::Adopted,
                };
                // A successful refresh writes a new token: the status is cleared.
                may_shorten = matches!(result, RefreshOutcome::Refreshed { .. });
                let input = RefreshResult {
                    pool: pending.pool.clone(),
                    entry_id: pending.entry_id.clone(),
                    generation: pending.generation + u64::from(*stale),
                    lease_id: Some(pending.lease_id),
                    result,
                };
                match self.registry.refresh_result(now, &input) {
                    Ok(decision) => self.note(&pending.pool, &decision),
                    Err(_) => failed = true,
                }
            }
            Op::CheckRefresh {
                pool,
                id,
                generation,
            } => {
                let input = Input::CheckRefresh {
                    pool: pool_key(*pool),
                    entry_id: entry_id(*id),
                    generation: u64::from(*generation),
                };
                failed = self.registry.handle(now, input).is_err();
            }
            Op::SetPriority { pool, id, priority } => {
                failed = self
                    .registry
                    .set_priority(now, &pool_key(*pool), &entry_id(*id), i64::from(*priority))
                    .is_err();
            }
            Op::Reset { pool, id } => {
                let key = pool_key(*pool);
                may_shorten = true;
                let id = id.map(entry_id);
                match self.registry.reset(now, &key, id.as_ref()) {
                    Ok(_) => {
                        self.in_fallback.remove(&key);
                    }
                    Err(_) => failed = true,
                }
            }
            Op::Tick => {
                let tick = self.registry.tick(now);
                if self.check
                    && let Some(wakeup) = tick.next_wakeup
                {
                    assert!(
                        wakeup.0 > self.clock,
                        "next_wakeup {wakeup:?} is not in the future"
                    );
                }
            }
            Op::Status => {
                let output = self
                    .registry
                    .handle(now, Input::Status { pool: None })
                    .expect("status never fails without a pool");
                assert!(!output.changed, "status changed state");
            }
            Op::BeginTurn { pool } => {
                let key = pool.map(pool_key);
                match self.registry.begin_turn(now, key.as_ref()) {
                    Ok(restored) => {
                        for key in restored {
                            self.in_fallback.remove(&key);
                        }
                    }
                    Err(_) => failed = true,
                }
            }
            Op::Call {
                pool,
                model,
                responses,
                max_sends,
                delivered_at,
            } => {
                may_shorten = true;
                let start = CallStart {
                    model: model.map(|m| pick(&MODELS, m).to_owned()),
                    max_sends: max_sends.map(u32::from),
                    ..CallStart::new(pool_key(*pool))
                };
                failed = self.call(&start, responses, *delivered_at);
            }
            Op::SyncSelf => {
                let doc = serde_json::to_value(self.export()).expect("state serialises");
                let output = self
                    .registry
                    .handle(now, Input::Sync { state: doc })
                    .expect("own export syncs");
                if self.check {
                    assert_eq!(
                        Some(self.export()),
                        before_doc,
                        "syncing the own export changed the state"
                    );
                    assert!(!output.changed, "syncing the own export reported a change");
                }
            }
            Op::Advance(seconds) => self.now = self.now.saturating_add(u64::from(*seconds) * 1_000),
            Op::Jump(hours) => self.now = self.now.saturating_add(u64::from(*hours) * HOUR),
            Op::Back(hours) => self.now = self.now.saturating_sub(u64::from(*hours) * HOUR),
            Op::BackSeconds(seconds) => {
                self.now = self.now.saturating_sub(u64::from(*seconds) * 1_000);
            }
        }
        if !self.check {
            return;
        }
        if failed {
            assert_eq!(
                Some(self.export()),
                before_doc,
                "a failed input changed the persisted state ({op:?})"
            );
        }
        self.check_steps(&before, may_shorten, op);
        self.check_round_trip();
        // The selection indexes, rebuilt from scratch, match the maintained ones (the check
        // exists in builds with debug assertions, as cargo-fuzz builds by default).
        #[cfg(debug_assertions)]
        if let Err(drift) = self.registry.check_indexes() {
            panic!("the selection indexes drifted after {op:?}: {drift}");
        }
    }

    /// Runs one call to its end; true when the call could not start (nothing changed then).
    /// An input refused mid-call (a malformed response) cancels the call: the inputs before
    /// it stand. Checks that the call ends, and within its send budget.
    fn call(
        &mut self,
        start: &CallStart,
        responses: &[Response],
        delivered_at: Option<u8>,
    ) -> bool {
        let Ok(mut action) = self.registry.start_call(Millis(self.now), start) else {
            return true;
        };
        let (mut sends, mut answers) = (0_u32, responses.iter());
        for _ in 0..256 {
            let now = Millis(self.now);
            let next = match action {
                Action::Send { call_id, .. } => {
                    sends += 1;
                    if let Some(max) = start.max_sends {
                        assert!(sends <= max, "a call sent {sends} times, max_sends {max}");
                    }
                    let delivered = delivered_at.is_some_and(|d| u32::from(d) + 1 == sends);
                    let response = answers.next().cloned().unwrap_or(Response {
                        status: Some(200),
                        ..Response::default()
                    });
                    let report = CallReport {
                        call_id,
                        response,
                        delivered,
                    };
                    self.registry.call_report(now, &report)
                }
                Action::Sleep { call_id, until, .. } => {
                    self.now = self.now.max(until.0);
                    self.clock = self.clock.max(self.now);
                    self.registry.call_resume(Millis(self.now), call_id)
                }
                Action::Refresh { call_id, .. } => {
                    let outcome = RefreshOutcome::Refreshed {
                        access_token: self.new_secret("at"),
                        refresh_token: None,
                        expires_at: Some(now.plus(HOUR)),
                    };
                    self.registry.call_refreshed(now, call_id, &outcome)
                }
                _ => return false,
            };
            match next {
                Ok(next) => action = next,
                Err(_) => {
                    if let Some(id) = call_id(&action) {
                        let _ = self.registry.cancel_call(id);
                    }
                    return false;
                }
            }
        }
        panic!("a call did not end within 256 actions (last: {action:?})");
    }

    fn report(&mut self, report: &Report, model: Option<&str>, failed: &mut bool) {
        let subject = report.entry_id.clone().or_else(|| {
            report
                .lease_id
                .and_then(|l| self.registry.lease(l).ok())
                .map(|l| l.entry_id.clone())
        });
        match self.registry.report(Millis(self.now), report) {
            Ok(decision) => {
                if self.check
                    && let Decision::Use {
                        entry_id,
                        reason: Some(reason),
                        ..
                    } = &decision
                    && !matches!(reason, Reason::Refreshed | Reason::Adopted)
                {
                    assert_ne!(
                        Some(entry_id),
                        subject.as_ref(),
                        "a rotation handed out the failed entry"
                    );
                    let availability = self.usable(&report.pool, entry_id, model);
                    assert!(
                        availability.is_usable(),
                        "rotation handed out {entry_id} which is {availability:?} at {}",
                        self.clock
                    );
                }
                self.note(&report.pool, &decision);
            }
            Err(_) => *failed = true,
        }
    }

    fn check_acquire(
        &self,
        key: &PoolKey,
        model: Option<&str>,
        usable_before: bool,
        decision: &Decision,
    ) {
        match decision {
            Decision::Use { entry_id, .. } | Decision::Refresh { entry_id, .. } => {
                let availability = self.usable(key, entry_id, model);
                assert!(
                    availability.is_usable(),
                    "acquire handed out {entry_id} which is {availability:?} at {}",
                    self.clock
                );
            }
            Decision::Fallback { .. } if self.in_fallback.contains(key) => {}
            other => assert!(
                !usable_before,
                "acquire answered {other:?} although an entry was usable at {}",
                self.clock
            ),
        }
    }

    fn check_steps(&self, before: &Snapshot, may_shorten: bool, op: &Op) {
        let after = self.snapshot();
        for (key, now) in &after {
            let Some(then) = before.get(key) else {
                continue;
            };
            for (writer, count) in &then.counts {
                let count_now = now.counts.get(writer).copied().unwrap_or(0);
                assert!(
                    count_now >= *count,
                    "counter of {writer} on {key:?} went {count} -> {count_now}"
                );
            }
            if may_shorten {
                continue;
            }
            if then.blocked_until > self.clock {
                assert!(
                    now.blocked_until >= then.blocked_until,
                    "deadline of {key:?} moved earlier: {} -> {} at {} by {op:?}",
                    then.blocked_until,
                    now.blocked_until,
                    self.clock
                );
            }
            for (model, until) in &then.model_benches {
                if *until > self.clock {
                    let until_now = now.model_benches.get(model).copied().unwrap_or(0);
                    assert!(
                        until_now >= *until,
                        "bench of {key:?} for {model} moved earlier: {until} -> {until_now}"
                    );
                }
            }
        }
    }

    fn check_round_trip(&self) {
        let first = serde_json::to_value(self.export()).expect("state serialises");
        let again = Registry::from_state(
            &first,
            Options {
                writer: self.registry.writer().to_owned(),
                seed: 1,
            },
        )
        .expect("an export re-imports");
        let second = serde_json::to_value(again.export_state()).expect("state serialises");
        assert_eq!(
            second, first,
            "export -> from_state -> export is not a fixed point"
        );
    }

    /// The registry's export as JSON.
    pub fn export_value(&self) -> Value {
        serde_json::to_value(self.export()).expect("state serialises")
    }
}

/// Ops of a run, at most `max`.
pub fn ops(u: &mut Unstructured<'_>, max: usize) -> Vec<Op> {
    let mut out = Vec::new();
    while out.len() < max && !u.is_empty() {
        match Op::arbitrary(u) {
            Ok(op) => out.push(op),
            Err(_) => break,
        }
    }
    out
}

/// The target.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let seed = u64::arbitrary(&mut u).unwrap_or(0);
    let mut driver = Driver::new("fz", seed);
    for op in ops(&mut u, 128) {
        driver.step(&op);
    }
    // Keep the reply type in use so a change of the wire shape breaks this harness loudly.
    let output = driver
        .registry
        .handle(Millis(driver.now), Input::ExportState)
        .expect("export never fails");
    assert!(matches!(
        output.body,
        OutputBody::Reply(Reply::State { .. })
    ));
}
