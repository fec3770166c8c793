//! One matrix row: N agents following core's decisions against the simulated provider,
//! in simulated time, sharing one in-memory store (or, for the baseline, each on its own).

use std::collections::{BTreeMap, VecDeque};

use credpool_core::Rng;
use credpool_core::SECOND;
use credpool_core::{
    AcquireRequest, Credential, Decision, EntryId, Error, Input, LeaseId, Millis, Policy, PoolKey,
    RefreshOutcome, RefreshResult, Registry, Report, Response, Status, Strategy,
};
use serde_json::Value;

use crate::provider::Provider;
use crate::scenario::Scenario;

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

/// The columns of the table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    /// Failed requests by cause (JSON only).
    pub failures: BTreeMap<String, u64>,
    pub served: u64,
    pub failed: u64,
    pub rate_limited: u64,
    pub wait_ms: u64,
    pub rotations: u64,
    pub refreshes: u64,
    pub fallbacks: u64,
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
/// [`FileStore`](https://docs.rs/credpool-store)).
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
    /// `FileStore::open` loads an existing file).
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

    fn registry(&self) -> &Registry {
        &self.registry
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

    /// Writes this agent's state back when `changed` (shared agents only).
    fn write(&mut self, doc: &mut SharedDoc, changed: bool) -> Result<(), Error> {
        if changed && self.seen.is_some() {
            let state = serde_json::to_value(self.registry.export_state())
                .map_err(|e| Error::new(credpool_core::ErrorCode::Internal, e.to_string()))?;
            doc.state = Some(state);
            doc.version += 1;
            self.seen = Some(doc.version);
        }
        Ok(())
    }

    /// One transaction: reload, apply `op`, write back if it changed state.
    fn transact<T>(
        &mut self,
        doc: &mut SharedDoc,
        op: impl FnOnce(&mut Registry) -> Result<(bool, T), Error>,
    ) -> Result<T, Error> {
        self.reload(doc)?;
        let (changed, value) = op(&mut self.registry)?;
        self.write(doc, changed)?;
        Ok(value)
    }

    fn input(&mut self, doc: &mut SharedDoc, now: Millis, input: Input) -> Result<(), Error> {
        self.transact(doc, |registry| {
            let output = registry.handle(now, input)?;
            Ok((output.changed, ()))
        })
    }

    fn acquire(
        &mut self,
        doc: &mut SharedDoc,
        now: Millis,
        request: &AcquireRequest,
    ) -> Result<Decision, Error> {
        self.transact(doc, |registry| {
            let decision = registry.acquire(now, request)?;
            Ok((registry.take_changed(), decision))
        })
    }

    fn report(
        &mut self,
        doc: &mut SharedDoc,
        now: Millis,
        report: &Report,
    ) -> Result<Decision, Error> {
        self.transact(doc, |registry| {
            let decision = registry.report(now, report)?;
            Ok((registry.take_changed(), decision))
        })
    }

    fn credential(&self, pool: &PoolKey, entry: &EntryId) -> Result<Credential, Error> {
        self.registry().credential(pool, entry)
    }

    /// The refresh protocol. Shared: the store's single-flight (merge in the document,
    /// refresh only if the token is still the stale one, else adopt the rotated one), all
    /// in one atomic step. Isolated: straight to the OAuth server.
    #[allow(clippy::too_many_arguments)]
    fn refresh(
        &mut self,
        doc: &mut SharedDoc,
        now: Millis,
        pool: &PoolKey,
        entry: &EntryId,
        generation: u64,
        lease: LeaseId,
        provider: &mut Provider,
    ) -> Result<Decision, Error> {
        self.reload(doc)?;
        let needed = self.seen.is_none() || self.registry.check_refresh(pool, entry, generation)?;
        let result = if needed {
            let credential = self.registry.credential(pool, entry)?;
            provider.refresh(now, credential.refresh_token.as_ref().map(|s| s.expose()))
        } else {
            RefreshOutcome::Adopted
        };
        let result = RefreshResult {
            pool: pool.clone(),
            entry_id: entry.clone(),
            generation,
            lease_id: Some(lease),
            result,
        };
        let decision = self.registry.refresh_result(now, &result)?;
        let changed = self.registry.take_changed();
        self.write(doc, changed)?;
        Ok(decision)
    }
}

/// Where a request stands.
#[derive(Clone, Debug)]
enum Phase {
    Acquire,
    Call {
        entry: EntryId,
        lease: LeaseId,
    },
    Report {
        entry: EntryId,
        lease: LeaseId,
        response: Response,
    },
    Refresh {
        entry: EntryId,
        lease: LeaseId,
        generation: u64,
    },
}

#[derive(Clone, Debug)]
struct Task {
    pool: PoolKey,
    model: Option<String>,
    phase: Phase,
    attempts: u32,
    steps: u32,
    index: usize,
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
    let policy = serde_json::to_value(&spec.policy)
        .map_err(|e| Error::new(credpool_core::ErrorCode::Internal, e.to_string()))?;
    let setup: Vec<Input> = scenario
        .pools
        .iter()
        .map(|p| Input::ConfigurePool {
            pool: p.pool.clone(),
            strategy: Some(spec.strategy),
            policy: Some(policy.clone()),
            fallback: Some(p.fallback.clone()),
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
                backend.input(&mut doc, start, input.clone())?;
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
        arrivals,
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
            let arrival = &arrivals[index];
            // Each request is one agent turn: per-turn budgets reset, fallbacks end.
            agent
                .backend
                .input(&mut sim.doc, at, Input::BeginTurn { pool: None })?;
            agent.task = Some(Task {
                pool: arrival.pool.clone(),
                model: arrival.model.clone(),
                phase: Phase::Acquire,
                attempts: 0,
                steps: 0,
                index,
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
    arrivals: &'a [Arrival],
    provider: &'a mut Provider,
    doc: SharedDoc,
    metrics: Metrics,
    timeline: Timeline,
    seed: u64,
}

/// Steps one request may take before the agent abandons it (a safety net).
const MAX_STEPS: u32 = 200;

impl Sim<'_> {
    /// Runs the agent's next step; true when its request is finished.
    fn step(&mut self, agent: &mut Agent, index: usize) -> Result<bool, Error> {
        let Some(task) = agent.task.as_mut() else {
            return Ok(true);
        };
        task.steps += 1;
        let now = agent.at;
        let decision = match task.phase.clone() {
            Phase::Acquire => {
                let request = AcquireRequest {
                    pool: task.pool.clone(),
                    model: task.model.clone(),
                    session: None,
                };
                agent.backend.acquire(&mut self.doc, now, &request)?
            }
            Phase::Call { entry, lease } => {
                task.attempts += 1;
                let secret = agent
                    .backend
                    .credential(&task.pool, &entry)?
                    .access_token
                    .map(|s| s.expose().to_owned())
                    .unwrap_or_default();
                let mut answer = self.provider.call(now, &task.pool, &secret);
                answer.response.model.clone_from(&task.model);
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
                    key: answer.key.unwrap_or_else(|| entry.to_string()),
                    agent: index,
                    kind,
                });
                let latency = if kind == MarkKind::Served {
                    self.latency(task.index, task.attempts)
                } else {
                    self.scenario.error_latency_ms
                };
                task.phase = Phase::Report {
                    entry,
                    lease,
                    response: answer.response,
                };
                agent.at = now.plus(latency);
                return Ok(false);
            }
            Phase::Report {
                entry,
                lease,
                response,
            } => {
                let report = Report {
                    pool: task.pool.clone(),
                    lease_id: Some(lease),
                    entry_id: None,
                    response,
                };
                let decision = agent.backend.report(&mut self.doc, now, &report)?;
                self.note_bench(&agent.backend, &task.pool, &entry, now);
                self.count_rotation(&decision, &entry);
                decision
            }
            Phase::Refresh {
                entry,
                lease,
                generation,
            } => {
                let calls = self.provider.refresh_calls;
                let decision = agent.backend.refresh(
                    &mut self.doc,
                    now,
                    &task.pool,
                    &entry,
                    generation,
                    lease,
                    self.provider,
                )?;
                if self.provider.refresh_calls > calls {
                    agent.at = now.plus(self.scenario.refresh_latency_ms);
                }
                self.note_bench(&agent.backend, &task.pool, &entry, now);
                self.count_rotation(&decision, &entry);
                decision
            }
        };
        self.follow(agent, decision)
    }

    /// Sets the task's next phase from `decision`; true when the request is finished.
    fn follow(&mut self, agent: &mut Agent, decision: Decision) -> Result<bool, Error> {
        let Some(task) = agent.task.as_mut() else {
            return Ok(true);
        };
        let now = agent.at;
        let out_of_steps = task.steps >= MAX_STEPS;
        match decision {
            Decision::Done => {
                self.metrics.served += 1;
                Ok(true)
            }
            Decision::Fail { reason, .. } => {
                let cause = serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                self.fail(&cause);
                Ok(true)
            }
            Decision::Use {
                entry_id, lease_id, ..
            } => {
                if task.attempts >= self.scenario.max_attempts || out_of_steps {
                    agent.backend.input(
                        &mut self.doc,
                        now,
                        Input::Release {
                            pool: task.pool.clone(),
                            lease_id,
                        },
                    )?;
                    self.fail("attempt_cap");
                    return Ok(true);
                }
                task.phase = Phase::Call {
                    entry: entry_id,
                    lease: lease_id,
                };
                Ok(false)
            }
            Decision::RetrySame {
                entry_id,
                lease_id,
                delay_ms,
                ..
            } => {
                if task.attempts >= self.scenario.max_attempts || out_of_steps {
                    agent.backend.input(
                        &mut self.doc,
                        now,
                        Input::Release {
                            pool: task.pool.clone(),
                            lease_id,
                        },
                    )?;
                    self.fail("attempt_cap");
                    return Ok(true);
                }
                self.metrics.wait_ms += delay_ms;
                agent.at = now.plus(delay_ms);
                task.phase = Phase::Call {
                    entry: entry_id,
                    lease: lease_id,
                };
                Ok(false)
            }
            Decision::Refresh {
                entry_id,
                lease_id,
                generation,
                ..
            } => {
                task.phase = Phase::Refresh {
                    entry: entry_id,
                    lease: lease_id,
                    generation,
                };
                Ok(false)
            }
            Decision::Fallback { pool, model, .. } => {
                self.metrics.fallbacks += 1;
                self.timeline.fallbacks.push(FallbackMark {
                    at: now,
                    from: task.pool.as_str().to_owned(),
                    to: pool.as_str().to_owned(),
                });
                task.pool = pool;
                task.model = model;
                task.phase = Phase::Acquire;
                if out_of_steps {
                    self.fail("step_cap");
                }
                Ok(out_of_steps)
            }
            Decision::Wait { until, .. } => {
                let wait = now.until(until);
                if wait > self.scenario.max_wait_s.saturating_mul(SECOND) || out_of_steps {
                    self.fail("wait_too_long");
                    return Ok(true);
                }
                self.metrics.wait_ms += wait;
                agent.at = until.max(now.plus(1));
                task.phase = Phase::Acquire;
                Ok(false)
            }
            other => Err(Error::new(
                credpool_core::ErrorCode::Internal,
                format!("unknown decision {other:?}"),
            )),
        }
    }

    /// A `use` of another entry after a failure of `failed` is a rotation.
    fn count_rotation(&mut self, decision: &Decision, failed: &EntryId) {
        if let Decision::Use { entry_id, .. } = decision
            && entry_id != failed
        {
            self.metrics.rotations += 1;
        }
    }

    fn fail(&mut self, cause: &str) {
        self.metrics.failed += 1;
        *self.metrics.failures.entry(cause.to_owned()).or_insert(0) += 1;
    }

    /// Records a bench the engine just put on `entry` (for the timeline).
    fn note_bench(&mut self, backend: &Backend, pool: &PoolKey, entry: &EntryId, now: Millis) {
        let Ok(found) = backend.registry().pool(pool).and_then(|p| p.entry(entry)) else {
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

    /// Latency of a successful call: the same for a given request and attempt in every row.
    fn latency(&self, request: usize, attempt: u32) -> u64 {
        let [lo, hi] = self.scenario.latency_ms;
        let mut rng = Rng::new(
            self.seed
                ^ (request as u64).wrapping_mul(0x2545_F491_4F6C_DD1D)
                ^ u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let _ = self.arrivals;
        lo + rng.below(hi - lo + 1)
    }
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
