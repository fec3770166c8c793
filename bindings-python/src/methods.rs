//! The wire-input methods `Registry` and `Store` share (same names, same keyword
//! arguments). Every method hands one wire input to its type's `run` (lock, core's
//! `handle`, output through serde):
//! - `handle(input)`: the dict, read by core's wire reader (`parse_input`);
//! - most methods: the fields they name, built by `wire!`, read by the same reader;
//! - the hot four (`acquire`, `report`, `release`, `credential`): core's typed `Input`,
//!   their arguments converted by pyo3 straight into core's types (`Arg`), because the
//!   wire reader alone costs more than the rest of such a call.
//!
//! A method for a new wire input is one `wire!` method here, plus its stub in
//! `_credpool.pyi`; `handle` already passes any input through.

use serde_json::{Map, Value};

/// A wire input (or a nested object of one) from named fields: `wire!("release" { pool,
/// lease_id })`, `wire!({ status })`, `wire!("x" { key: expr })`. Each value is
/// `Into<Value>` (`String`, integers, [`Json`](crate::convert::Json), `Option`s of them);
/// `None` fields are left out, so core's defaults apply.
macro_rules! wire {
    ($($kind:literal)? { $($key:ident $(: $value:expr)?),* $(,)? }) => {{
        #[allow(unused_mut)]
        let mut map = serde_json::Map::new();
        $(map.insert("type".to_owned(), $kind.into());)?
        $($crate::methods::put(&mut map, stringify!($key), $crate::methods::wire!(@ $key $($value)?));)*
        serde_json::Value::Object(map)
    }};
    (@ $key:ident) => { $key };
    (@ $key:ident $value:expr) => { $value };
}
pub(crate) use wire;

/// Sets `key` unless `value` is null.
pub(crate) fn put(map: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    let value = value.into();
    if !value.is_null() {
        map.insert(key.to_owned(), value);
    }
}

/// Defines the shared methods on a pyclass with `fn run<'py>(&self, py: Python<'py>, now:
/// Option<Clock>, input: impl Into<Wire>) -> Out<'py>` (`Arg`, `Json`, `Clock`, `Out` and
/// `wire!` in scope where it expands).
macro_rules! wire_methods {
    ($ty:ty) => {
        #[pymethods]
        impl $ty {
            /// Applies one input (a dict tagged by `type`) at `now` (epoch ms; default: wall
            /// clock).
            #[pyo3(signature = (input, now=None))]
            fn handle<'py>(&self, py: Python<'py>, input: Json, now: Option<Clock>) -> Out<'py> {
                self.run(py, now, input.0)
            }

            /// `acquire`: picks an entry for a request; returns the decision.
            #[allow(clippy::too_many_arguments)]
            #[pyo3(signature = (
                pool, model=None, session=None, now=None, *, spread=false, can_refresh=None,
            ))]
            fn acquire<'py>(
                &self,
                py: Python<'py>,
                pool: String,
                model: Option<String>,
                session: Option<String>,
                now: Option<Clock>,
                spread: bool,
                can_refresh: Option<Json>,
            ) -> Out<'py> {
                let can_refresh = can_refresh.map(|c| c.0);
                let input = wire!("acquire" { pool, model, session, spread, can_refresh });
                self.run(py, now, input)
            }

            /// `report`: a request's outcome against its lease; returns the next decision.
            #[allow(clippy::too_many_arguments)]
            #[pyo3(signature = (
                pool, lease_id, status=None, headers=None, body=None, model=None,
                network_error=None, now=None,
            ))]
            fn report<'py>(
                &self,
                py: Python<'py>,
                pool: Arg<credpool_core::PoolKey>,
                lease_id: u64,
                status: Option<u16>,
                headers: Option<Arg<credpool_core::Headers>>,
                body: Option<Arg<credpool_core::Body>>,
                model: Option<String>,
                network_error: Option<String>,
                now: Option<Clock>,
            ) -> Out<'py> {
                let response = credpool_core::Response {
                    status,
                    network_error,
                    headers: headers.map(|h| h.0).unwrap_or_default(),
                    body: body.map(|b| b.0),
                    model,
                };
                let report = credpool_core::Report {
                    pool: pool.0,
                    lease_id: Some(credpool_core::LeaseId(lease_id)),
                    entry_id: None,
                    response,
                };
                self.run(py, now, credpool_core::Input::Report(report))
            }

            /// `release`: closes a lease with no outcome (nothing is marked).
            #[pyo3(signature = (pool, lease_id, now=None))]
            fn release<'py>(
                &self,
                py: Python<'py>,
                pool: Arg<credpool_core::PoolKey>,
                lease_id: u64,
                now: Option<Clock>,
            ) -> Out<'py> {
                let lease_id = credpool_core::LeaseId(lease_id);
                self.run(py, now, credpool_core::Input::Release { pool: pool.0, lease_id })
            }

            /// `reveal`: hands the host an entry's secrets (the only output carrying them).
            #[pyo3(signature = (pool, entry_id, now=None))]
            fn credential<'py>(
                &self,
                py: Python<'py>,
                pool: Arg<credpool_core::PoolKey>,
                entry_id: Arg<credpool_core::EntryId>,
                now: Option<Clock>,
            ) -> Out<'py> {
                let input = credpool_core::Input::Reveal { pool: pool.0, entry_id: entry_id.0 };
                self.run(py, now, input)
            }

            /// `begin_turn`: restores pools from their fallback (one pool, or all).
            #[pyo3(signature = (pool=None, now=None))]
            fn begin_turn<'py>(
                &self,
                py: Python<'py>,
                pool: Option<String>,
                now: Option<Clock>,
            ) -> Out<'py> {
                self.run(py, now, wire!("begin_turn" { pool }))
            }

            /// `refresh_result`: how the refresh a `refresh` decision asked for ended.
            #[allow(clippy::too_many_arguments)]
            #[pyo3(signature = (pool, entry_id, generation, result, lease_id=None, now=None))]
            fn refresh_result<'py>(
                &self,
                py: Python<'py>,
                pool: String,
                entry_id: String,
                generation: u64,
                result: Json,
                lease_id: Option<u64>,
                now: Option<Clock>,
            ) -> Out<'py> {
                let input = wire!("refresh_result" { pool, entry_id, generation, lease_id, result });
                self.run(py, now, input)
            }

            /// `sync`: merges another writer's exported state.
            #[pyo3(signature = (state, now=None))]
            fn sync<'py>(&self, py: Python<'py>, state: Json, now: Option<Clock>) -> Out<'py> {
                self.run(py, now, wire!("sync" { state }))
            }

            /// `export_state`: the persistable state document.
            #[pyo3(signature = (now=None))]
            fn export_state<'py>(&self, py: Python<'py>, now: Option<Clock>) -> Out<'py> {
                self.run(py, now, wire!("export_state" {}))
            }

            /// `status`: status for humans (one pool, or all).
            #[pyo3(signature = (pool=None, now=None))]
            fn status<'py>(
                &self,
                py: Python<'py>,
                pool: Option<String>,
                now: Option<Clock>,
            ) -> Out<'py> {
                self.run(py, now, wire!("status" { pool }))
            }

            /// `add_entry`: adds a credential (creating the pool).
            #[pyo3(signature = (pool, entry, now=None))]
            fn add_entry<'py>(
                &self,
                py: Python<'py>,
                pool: String,
                entry: Json,
                now: Option<Clock>,
            ) -> Out<'py> {
                self.run(py, now, wire!("add_entry" { pool, entry }))
            }

            /// `remove_entry`: removes a credential for good (tombstoned).
            #[pyo3(signature = (pool, entry_id, now=None))]
            fn remove_entry<'py>(
                &self,
                py: Python<'py>,
                pool: String,
                entry_id: String,
                now: Option<Clock>,
            ) -> Out<'py> {
                self.run(py, now, wire!("remove_entry" { pool, entry_id }))
            }

            /// `reset`: clears status and cooldowns of one entry, or of every entry of the
            /// pool.
            #[pyo3(signature = (pool, entry_id=None, now=None))]
            fn reset<'py>(
                &self,
                py: Python<'py>,
                pool: String,
                entry_id: Option<String>,
                now: Option<Clock>,
            ) -> Out<'py> {
                self.run(py, now, wire!("reset" { pool, entry_id }))
            }

            /// `configure_pool`: creates the pool if missing and sets any of its strategy,
            /// policy, fallback chain and API shape (`"openai"` or `"anthropic"`).
            #[pyo3(signature = (pool, strategy=None, policy=None, fallback=None, api=None, now=None))]
            #[allow(clippy::too_many_arguments)]
            fn configure_pool<'py>(
                &self,
                py: Python<'py>,
                pool: String,
                strategy: Option<String>,
                policy: Option<Json>,
                fallback: Option<Json>,
                api: Option<String>,
                now: Option<Clock>,
            ) -> Out<'py> {
                let input = wire!("configure_pool" { pool, strategy, policy, fallback, api });
                self.run(py, now, input)
            }

            /// `set_priority`: sets an entry's priority (lower is preferred).
            #[pyo3(signature = (pool, entry_id, priority, now=None))]
            fn set_priority<'py>(
                &self,
                py: Python<'py>,
                pool: String,
                entry_id: String,
                priority: i64,
                now: Option<Clock>,
            ) -> Out<'py> {
                self.run(py, now, wire!("set_priority" { pool, entry_id, priority }))
            }

            /// `check_refresh`: whether a refresh from `generation` is still needed (false:
            /// adopt the stored token).
            #[pyo3(signature = (pool, entry_id, generation, now=None))]
            fn check_refresh<'py>(
                &self,
                py: Python<'py>,
                pool: String,
                entry_id: String,
                generation: u64,
                now: Option<Clock>,
            ) -> Out<'py> {
                self.run(py, now, wire!("check_refresh" { pool, entry_id, generation }))
            }

            /// `tick`: lets time pass, clears expired cooldowns and names the next deadline.
            #[pyo3(signature = (now=None))]
            fn tick<'py>(&self, py: Python<'py>, now: Option<Clock>) -> Out<'py> {
                self.run(py, now, wire!("tick" {}))
            }

            /// `seed`: adopts credentials from an environment map and a config
            /// (`{"custom_providers": [...]}`).
            #[pyo3(signature = (env=None, config=None, now=None))]
            fn seed<'py>(
                &self,
                py: Python<'py>,
                env: Option<Json>,
                config: Option<Json>,
                now: Option<Clock>,
            ) -> Out<'py> {
                self.run(py, now, wire!("seed" { env, config }))
            }

            /// `call_start`: starts a call (one user request on a pool, within budgets);
            /// returns its first action.
            #[allow(clippy::too_many_arguments)]
            #[pyo3(signature = (
                pool, model=None, session=None, max_sends=None, max_wait_ms=None,
                max_total_wait_ms=None, max_hops=None, api=None, url=None, request_id=None,
                client_retry=false, probe=false, spread=false, can_refresh=None, now=None,
            ))]
            fn call_start<'py>(
                &self,
                py: Python<'py>,
                pool: String,
                model: Option<String>,
                session: Option<String>,
                max_sends: Option<u32>,
                max_wait_ms: Option<u64>,
                max_total_wait_ms: Option<u64>,
                max_hops: Option<u32>,
                api: Option<String>,
                url: Option<String>,
                request_id: Option<String>,
                client_retry: bool,
                probe: bool,
                spread: bool,
                can_refresh: Option<Json>,
                now: Option<Clock>,
            ) -> Out<'py> {
                let can_refresh = can_refresh.map(|c| c.0);
                let input = wire!("call_start" {
                    pool, model, session, max_sends, max_wait_ms, max_total_wait_ms, max_hops,
                    api, url, request_id, client_retry, probe, spread, can_refresh,
                });
                self.run(py, now, input)
            }

            /// `call_report`: what a call's `send` produced (`delivered`: bytes of the body
            /// already reached the caller); returns the call's next action.
            #[allow(clippy::too_many_arguments)]
            #[pyo3(signature = (
                call_id, status=None, headers=None, body=None, model=None, network_error=None,
                delivered=false, now=None,
            ))]
            fn call_report<'py>(
                &self,
                py: Python<'py>,
                call_id: u64,
                status: Option<u16>,
                headers: Option<Json>,
                body: Option<Json>,
                model: Option<String>,
                network_error: Option<String>,
                delivered: bool,
                now: Option<Clock>,
            ) -> Out<'py> {
                let response = wire!({ status, headers, body, model, network_error });
                self.run(py, now, wire!("call_report" { call_id, response, delivered }))
            }

            /// `call_refreshed`: how the refresh a call's `refresh` action asked for ended.
            #[pyo3(signature = (call_id, result, now=None))]
            fn call_refreshed<'py>(
                &self,
                py: Python<'py>,
                call_id: u64,
                result: Json,
                now: Option<Clock>,
            ) -> Out<'py> {
                self.run(py, now, wire!("call_refreshed" { call_id, result }))
            }

            /// `call_resume`: resumes a call after a `sleep` (or a `refresh_result` on its
            /// lease).
            #[pyo3(signature = (call_id, now=None))]
            fn call_resume<'py>(&self, py: Python<'py>, call_id: u64, now: Option<Clock>) -> Out<'py> {
                self.run(py, now, wire!("call_resume" { call_id }))
            }

            /// `call_cancel`: cancels a call (its lease is released with no mark).
            #[pyo3(signature = (call_id, now=None))]
            fn call_cancel<'py>(&self, py: Python<'py>, call_id: u64, now: Option<Clock>) -> Out<'py> {
                self.run(py, now, wire!("call_cancel" { call_id }))
            }
        }
    };
}
pub(crate) use wire_methods;
