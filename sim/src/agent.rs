//! One matrix row: N agents against the simulated provider, in simulated time, sharing one
//! in-memory store (or, for the baseline, each on its own).
//!
//! An agent's request is one call of core's call driver (SPEC §7): the agent starts the
//! call and does what each action says — send with the action's credential, sleep, refresh,
//! done, give up — and reports back. Every rule (retries, rotations, fallbacks, budgets)
//! is the driver's; the agent only counts what the actions did, for the table.

use std::collections::{BTreeMap, VecDeque};

use credpool_core::{
    Action, CallId, CallReport, EntryId, Error, Input, LeaseId, Millis, Output, OutputBody, Policy,
    PoolKey, RefreshOutcome, RefreshResult, Registry, Rng, SECOND, Status, Strategy,
};
use serde_json::Value;

use crate::provider::{Answer, Provider};
use crate::scenario::{Scenario, wire_name};

/// One row of the matrix: a policy, a strategy, shared store or not.
#[derive(Clone, Debug)]
pub struct RowSpec {
    /// Display name of the policy.
    pub policy_name: String,
    /// The policy.
    pub policy: Policy,
    /// The strategy.
    pub strategy: Strategy,
    /// Agents share one store (false: each agent keeps its own state, never syncing).
    pub shared: bool,
}

/// The columns of the table, read off the driver's actions and the provider's answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Failed requests by cause (JSON only): the `give_up` reason, with the budget that
    /// ended the call in parentheses, e.g. `rate_limit (max_wait_ms)`.
    pub failures: BTreeMap<String, u64>,
    /// Requests that ended `done`.
    pub served: u64,
    /// Requests that ended `give_up`.
    pub failed: u64,
    /// 429 answers of the provider.
    pub rate_limited: u64,
    /// Simulated time in `sleep` actions.
    pub wait_ms: u64,
    /// Sends for a cause to another key of the pool than the call's last one.
    pub rotations: u64,
    /// Refresh calls the OAuth server answered.
    pub refreshes: u64,
    /// Actions of a call on another pool than its last one (the driver followed a fallback).
    pub fallbacks: u64,
    /// Spent refresh tokens presented again.
    pub replays: u64,
}

/// What a provider call looked like, for the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkKind {
    /// 2xx: the key served the request.
    Served,
    /// 429.
    RateLimited,
    /// 401/403.
    Auth,
    /// 5xx.
    ServerError,
}

/// One provider call on the timeline.
#[derive(Clone, Debug)]
pub struct Mark {
    pub at: Millis,
    pub key: String,
    pub agent: usize,
    pub kind: MarkKind,
}

/// A key benched by the engine: `[from, until)`; `until` `None`: dead for good.
#[derive(Clone, Debug)]
pub struct Window {
    pub key: String,
    pub from: Millis,
    pub until: Option<Millis>,
}

/// A request that moved to the fallback chain.
#[derive(Clone, Debug)]
pub struct FallbackMark {
    pub at: Millis,
    pub from: String,
    pub to: String,
}

/// Everything the SVG needs about one row.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    pub start: Millis,
    pub end: Millis,
    pub marks: Vec<Mark>,
    pub windows: Vec<Window>,
    pub fallbacks: Vec<FallbackMark>,
}

/// A finished row.
#[derive(Clone, Debug)]
pub struct RowResult {
    pub spec: RowSpec,
    pub metrics: Metrics,
    pub timeline: Timeline,
}

/// One request of the workload.
#[derive(Clone, Debug)]
pub struct Arrival {
    at: Millis,
    agent: usize,
    pool: PoolKey,
    model: Option<String>,
}

/// The workload of a scenario for a seed: the same for every row, so rows compare fairly.
pub fn workload(scenario: &Scenario, seed: u64) -> Vec<Arrival> {
    let mut rng = Rng::new(seed ^ 0x5eed_0fa7_717a_1500);
    let start = Millis(scenario.start_epoch_s.saturating_mul(SECOND));
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let mean_gap = (60_000.0 / scenario.rate_per_min).round().max(1.0) as u64;
    let total: u64 = scenario.pools.iter().map(|p| u64::from(p.weight)).sum();
    let agents = scenario.agents as usize;
    let mut at = start;
    (0..scenario.requests as usize)
        .map(|i| {
            // Uniform gaps in [0.5, 1.5] x mean: a steady but not lockstep arrival.
            at = at.plus(mean_gap / 2 + rng.below(mean_gap + 1));
            let mut pick = rng.below(total);
            let pool = scenario
                .pools
                .iter()
                .find(|p| {
                    let w = u64::from(p.weight);
                    if pick < w {
                        true
                    } else {
                        pick -= w;
                        false
                    }
                })
                .unwrap_or(&scenario.pools[0]);
            Arrival {
                at,
                agent: i % agents,
                pool: pool.pool.clone(),
                model: pool.model.clone(),
            }
        })
        .collect()
}

/// The shared store of a row, in memory: the state document the agents last wrote, and a
/// version that moves with every write (what the file and its digest are to a
/// [`Store`](https://docs.rs/credpool-store)).
#[derive(Debug, Default)]
pub(crate) struct SharedDoc {
    state: Option<Value>,
    version: u64,
}

/// Where an agent keeps its state: a registry of its own that, when `shared`, follows the
/// file store's protocol against the row's [`SharedDoc`] — every transaction merges in
/// what others wrote since this agent last looked (core `sync`), applies the input, and
/// writes the agent's export back when the input changed state. Agents run one step at a
/// time, so each step is atomic, as under the store's lock.
struct Backend {
    registry: Registry,
    /// `Some(version last read or written)` when the agent shares the row's document.
    seen: Option<u64>,
}

impl Backend {
    /// An agent's backend; a shared one starts from the document if there is one (as
    /// `Store::open` loads an existing database).
    fn open(options: credpool_core::Options, shared: Option<&SharedDoc>) -> Result<Self, Error> {
        let registry = match shared.and_then(|doc| doc.state.as_ref()) {
            Some(state) => Registry::from_state(state, options)?,
            None => Registry::new(options)?,
        };
        Ok(Self {
            registry,
            seen: shared.map(|doc| doc.version),
        })
    }

    /// Merges in the document if another agent wrote since this one last looked.
    fn reload(&mut self, doc: &SharedDoc) -> Result<(), Error> {
        if let Some(seen) = self.seen
            && seen != doc.version
        {
            if let Some(state) = &doc.state {
                self.registry.sync(state)?;
                self.registry.take_changed();
            }
            self.seen = Some(doc.version);
        }
        Ok(())
    }

    /// One transaction: reload, apply `op`, write this agent's state back if `op` says it
    /// changed (shared agents only).
    fn transact<T>(
        &mut self,
        doc: &mut SharedDoc,
        op: impl FnOnce(&mut Registry) -> Result<(bool, T), Error>,
    ) -> Result<T, Error> {
        self.reload(doc)?;
        let (changed, value) = op(&mut self.registry)?;
        if changed && self.seen.is_some() {
            let state = serde_json::to_value(self.registry.export_state())
                .map_err(|e| internal(e.to_string()))?;
            doc.state = Some(state);
            doc.version += 1;
            self.seen = Some(doc.version);
        }
        Ok(value)
    }

    /// One input, persisted when it changed state (a store's `handle`).
    fn handle(&mut self, doc: &mut SharedDoc, now: Millis, input: Input) -> Result<Output, Error> {
        self.transact(doc, |registry| {
            let output = registry.handle(now, input)?;
            Ok((output.changed, output))
        })
    }

    /// One input of the call driver: the call's next action.
    fn drive(&mut self, doc: &mut SharedDoc, now: Millis, input: Input) -> Result<Action, Error> {
        match self.handle(doc, now, input)?.body {
            OutputBody::Action(action) => Ok(action),
            other => Err(internal(format!("the driver answered {other:?}"))),
        }
    }

    /// Runs the refresh a `refresh` action asked for; the driver input that follows it.
    ///
    /// Shared: the store's single-flight protocol in one atomic step — merge in the
    /// document, refresh only if the token is still the stale one (else adopt the one
    /// another agent rotated), and record the result on the call's lease — then
    /// `call_resume`. No store: straight to the OAuth server, then `call_refreshed`.
    fn refresh(
        &mut self,
        doc: &mut SharedDoc,
        now: Millis,
        action: &Refresh,
        provider: &mut Provider,
    ) -> Result<Input, Error> {
        let Refresh {
            call_id,
            pool,
            entry_id,
            lease_id,
            generation,
        } = action;
        let call_id = *call_id;
        let exchange = |registry: &Registry, provider: &mut Provider| {
            let credential = registry.credential(pool, entry_id)?;
            Ok::<_, Error>(
                provider.refresh(now, credential.refresh_token.as_ref().map(|s| s.expose())),
            )
        };
        if self.seen.is_none() {
            let result = exchange(&self.registry, provider)?;
            return Ok(Input::CallRefreshed { call_id, result });
        }
        self.transact(doc, |registry| {
            let result = if registry.check_refresh(pool, entry_id, *generation)? {
                exchange(registry, provider)?
            } else {
                RefreshOutcome::Adopted
            };
            let result = RefreshResult {
                pool: pool.clone(),
                entry_id: entry_id.clone(),
                generation: *generation,
                lease_id: Some(*lease_id),
                result,
            };
            // On a call's lease the decision is recorded for `call_resume` to follow.
            let _ = registry.refresh_result(now, &result)?;
            Ok((registry.take_changed(), ()))
        })?;
        Ok(Input::CallResume { call_id })
    }
}

/// The fields of a `refresh` action.
struct Refresh {
    call_id: CallId,
    pool: PoolKey,
    entry_id: EntryId,
    lease_id: LeaseId,
    generation: u64,
}

/// A request in flight: one call of the driver.
struct Task {
    /// The request's index in the workload.
    index: usize,
    /// The driver input due at the agent's next step.
    next: Option<Input>,
    /// The pool the call's actions went to (an action on another one is a fallback).
    pool: PoolKey,
    /// The entry of the call's last `send` or `refresh` on that pool.
    entry: Option<EntryId>,
    /// Sends so far.
    sends: u32,
    /// Steps so far (a bound on them catches a driver that would never end a call).
    steps: u32,
}

struct Agent {
    backend: Backend,
    queue: VecDeque<usize>,
    task: Option<Task>,
    /// When the current task's next step runs, or when the agent became free.
    at: Millis,
}

/// Runs one row; `tick` is called once per finished request (the progress bar).
pub fn run_row(
    scenario: &Scenario,
    arrivals: &[Arrival],
    spec: &RowSpec,
    seed: u64,
    tick: &(dyn Fn() + Sync),
) -> Result<RowResult, Error> {
    let mut provider = Provider::new(scenario);
    let start = Millis(scenario.start_epoch_s.saturating_mul(SECOND));
    let mut doc = SharedDoc::default();
    let policy = serde_json::to_value(&spec.policy).map_err(|e| internal(e.to_string()))?;
    let setup: Vec<Input> = scenario
        .pools
        .iter()
        .map(|p| Input::ConfigurePool {
            pool: p.pool.clone(),
            strategy: Some(spec.strategy),
            policy: Some(policy.clone()),
            fallback: Some(p.fallback.clone()),
            api: None,
        })
        .chain(
            provider
                .initial_entries()
                .into_iter()
                .map(|(pool, entry)| Input::AddEntry { pool, entry }),
        )
        .collect();
    let mut agents = Vec::new();
    for i in 0..scenario.agents as usize {
        let writer = format!("agent-{}", i + 1);
        let agent_seed = seed.wrapping_add(i as u64).wrapping_mul(0x9E37_79B9);
        let options = credpool_core::Options {
            writer,
            seed: agent_seed,
        };
        let mut backend = Backend::open(options, spec.shared.then_some(&doc))?;
        // The first agent sets the shared store up; every isolated agent sets up its own.
        if i == 0 || !spec.shared {
            for input in &setup {
                backend.handle(&mut doc, start, input.clone())?;
            }
        }
        agents.push(Agent {
            backend,
            queue: VecDeque::new(),
            task: None,
            at: start,
        });
    }
    for (index, arrival) in arrivals.iter().enumerate() {
        agents[arrival.agent].queue.push_back(index);
    }
    let mut sim = Sim {
        scenario,
        provider: &mut provider,
        doc,
        metrics: Metrics::default(),
        timeline: Timeline {
            start,
            end: start,
            ..Timeline::default()
        },
        seed,
    };
    loop {
        let next = agents
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                let at = match (&a.task, a.queue.front()) {
                    (Some(_), _) => a.at,
                    (None, Some(&r)) => a.at.max(arrivals[r].at),
                    (None, None) => return None,
                };
                Some((at, i))
            })
            .min();
        let Some((at, i)) = next else { break };
        let agent = &mut agents[i];
        agent.at = at;
        if agent.task.is_none() {
            let Some(index) = agent.queue.pop_front() else {
                continue;
            };
            // Each request is one call of the driver: one turn.
            let arrival = &arrivals[index];
            let start = scenario.call_start(arrival.pool.clone(), arrival.model.clone());
            agent.task = Some(Task {
                index,
                next: Some(Input::CallStart(start)),
                pool: arrival.pool.clone(),
                entry: None,
                sends: 0,
                steps: 0,
            });
        }
        if sim.step(agent, i)? {
            agent.task = None;
            tick();
        }
        sim.timeline.end = sim.timeline.end.max(agent.at);
    }
    sim.metrics.refreshes = sim.provider.refresh_calls;
    sim.metrics.replays = sim.provider.replays;
    Ok(RowResult {
        spec: spec.clone(),
        metrics: sim.metrics,
        timeline: sim.timeline,
    })
}

struct Sim<'a> {
    scenario: &'a Scenario,
    provider: &'a mut Provider,
    doc: SharedDoc,
    metrics: Metrics,
    timeline: Timeline,
    seed: u64,
}

/// Steps of one call beyond which the driver is taken to be stuck (its budgets end every
/// call long before): the run stops with an error instead of spinning.
const MAX_STEPS: u32 = 100_000;

impl Sim<'_> {
    /// Feeds the call its next input and does the action the driver answers, in simulated
    /// time; true when the request is finished.
    fn step(&mut self, agent: &mut Agent, lane: usize) -> Result<bool, Error> {
        let Agent {
            backend, task, at, ..
        } = agent;
        let (Some(task), now) = (task.as_mut(), *at) else {
            return Ok(true);
        };
        let Some(input) = task.next.take() else {
            return Ok(true);
        };
        task.steps += 1;
        if task.steps > MAX_STEPS {
            let index = task.index;
            return Err(internal(format!("request {index} took {MAX_STEPS} steps")));
        }
        let action = backend.drive(&mut self.doc, now, input)?;
        self.note_bench(backend, task, now);
        self.count(task, &action, now);
        let (next, then) = match action {
            Action::Send {
                call_id,
                pool,
                model,
                entry_id,
                access_token,
                ..
            } => {
                let secret = access_token.as_ref().map_or("", |s| s.expose());
                let mut answer = self.provider.call(now, &pool, secret);
                answer.response.model = model;
                let latency = self.mark(now, lane, task, &entry_id, &answer);
                let report = CallReport {
                    call_id,
                    response: answer.response,
                    delivered: false,
                };
                (Input::CallReport(report), now.plus(latency))
            }
            Action::Sleep { call_id, until, .. } => (Input::CallResume { call_id }, until.max(now)),
            Action::Refresh {
                call_id,
                pool,
                entry_id,
                lease_id,
                generation,
                ..
            } => {
                let refresh = Refresh {
                    call_id,
                    pool,
                    entry_id,
                    lease_id,
                    generation,
                };
                let calls = self.provider.refresh_calls;
                let next = backend.refresh(&mut self.doc, now, &refresh, self.provider)?;
                self.note_bench(backend, task, now);
                let refreshed = self.provider.refresh_calls > calls;
                let latency = if refreshed {
                    self.scenario.refresh_latency_ms
                } else {
                    0
                };
                (next, now.plus(latency))
            }
            Action::Done { .. } | Action::GiveUp { .. } => return Ok(true),
            other => return Err(internal(format!("unknown action {other:?}"))),
        };
        task.next = Some(next);
        *at = then;
        Ok(false)
    }

    /// The table's counts, read off an action (the driver took every decision behind it).
    fn count(&mut self, task: &mut Task, action: &Action, now: Millis) {
        match action {
            Action::Send {
                pool,
                entry_id,
                reason,
                ..
            } => {
                self.note_move(task, pool, now);
                // A send for a cause (not a plain selection) to another key than the last.
                if reason.is_some() && task.entry.as_ref().is_some_and(|e| e != entry_id) {
                    self.metrics.rotations += 1;
                }
                task.entry = Some(entry_id.clone());
                task.sends += 1;
            }
            Action::Refresh { pool, entry_id, .. } => {
                self.note_move(task, pool, now);
                task.entry = Some(entry_id.clone());
            }
            Action::Sleep { until, .. } => self.metrics.wait_ms += now.until(*until),
            Action::Done { .. } => self.metrics.served += 1,
            Action::GiveUp { reason, budget, .. } => {
                let mut cause = wire_name(reason);
                if let Some(budget) = budget {
                    cause = format!("{cause} ({})", wire_name(budget));
                }
                self.metrics.failed += 1;
                *self.metrics.failures.entry(cause).or_insert(0) += 1;
            }
            _ => {}
        }
    }

    /// Puts a provider answer on the timeline; the simulated latency of the call.
    fn mark(
        &mut self,
        now: Millis,
        lane: usize,
        task: &Task,
        entry: &EntryId,
        answer: &Answer,
    ) -> u64 {
        let status = answer.response.status.unwrap_or(0);
        let kind = match status {
            200..=299 => MarkKind::Served,
            429 => MarkKind::RateLimited,
            401 | 403 => MarkKind::Auth,
            _ => MarkKind::ServerError,
        };
        if status == 429 {
            self.metrics.rate_limited += 1;
        }
        self.timeline.marks.push(Mark {
            at: now,
            key: answer.key.clone().unwrap_or_else(|| entry.to_string()),
            agent: lane,
            kind,
        });
        if kind == MarkKind::Served {
            self.latency(task.index, task.sends)
        } else {
            self.scenario.error_latency_ms
        }
    }

    /// An action on another pool than the call's last one: the driver followed a fallback.
    fn note_move(&mut self, task: &mut Task, pool: &PoolKey, now: Millis) {
        if *pool == task.pool {
            return;
        }
        self.metrics.fallbacks += 1;
        self.timeline.fallbacks.push(FallbackMark {
            at: now,
            from: task.pool.as_str().to_owned(),
            to: pool.as_str().to_owned(),
        });
        task.pool = pool.clone();
        task.entry = None;
    }

    /// Records a bench the engine just put on the task's last entry (for the timeline).
    fn note_bench(&mut self, backend: &Backend, task: &Task, now: Millis) {
        let Some(entry) = &task.entry else {
            return;
        };
        let Ok(found) = backend
            .registry
            .pool(&task.pool)
            .and_then(|p| p.entry(entry))
        else {
            return;
        };
        let status = &found.status;
        if status.at != now || found.effective_status() == Status::Ok {
            return;
        }
        let until = match found.effective_status() {
            Status::Dead => None,
            _ => status.until,
        };
        let key = entry.to_string();
        let duplicate = self
            .timeline
            .windows
            .iter()
            .rev()
            .take(16)
            .any(|w| w.key == key && w.from == now);
        if !duplicate {
            self.timeline.windows.push(Window {
                key,
                from: now,
                until,
            });
        }
    }

    /// Latency of a successful call: the same for a given request and send in every row.
    fn latency(&self, request: usize, send: u32) -> u64 {
        let [lo, hi] = self.scenario.latency_ms;
        let mut rng = Rng::new(
            self.seed
                ^ (request as u64).wrapping_mul(0x2545_F491_4F6C_DD1D)
                ^ u64::from(send).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        lo + rng.below(hi - lo + 1)
    }
}

fn internal(message: String) -> Error {
    Error::new(credpool_core::ErrorCode::Internal, message)
}

/// Keys of the scenario in display order, with their pool.
pub fn keys(scenario: &Scenario) -> Vec<(String, String)> {
    scenario
        .pools
        .iter()
        .flat_map(|p| {
            p.keys
                .iter()
                .map(|k| (p.pool.as_str().to_owned(), k.id.to_string()))
        })
        .collect()
}
