//! The wire-input methods `Registry` and `FileStore` share (same names, same keyword
//! arguments): the hot path hands core's typed `Input` to the type's `typed`, every other
//! method builds core's JSON input and hands it to the type's `call_fields`.

/// Defines the shared methods on a pyclass with `call(&self, py, now, input: Value)`,
/// `call_fields(&self, py, now, kind, fields)` and `typed(&self, py, now, input: Input)`.
/// The hot path (`acquire`, `report`, `release`, `credential`) is typed: arguments become
/// core's `Input` and the output a `dict` built directly (no JSON either way); an argument
/// core's JSON reader would refuse (a bad pool key or entry id, headers or a body of the
/// wrong shape) takes the generic JSON path, which raises exactly what it always did.
macro_rules! wire_methods {
    ($ty:ty) => {
        $crate::methods::wire_methods!($ty, rest);

        #[pymethods]
        impl $ty {
        /// `acquire`: picks an entry for a request; returns the decision.
        #[pyo3(signature = (pool, model=None, session=None, now=None))]
        fn acquire(
            &self,
            py: Python<'_>,
            pool: String,
            model: Option<String>,
            session: Option<String>,
            now: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<PyObject> {
            use $crate::methods::hot::*;
            if let Ok(key) = PoolKey::parse(&pool) {
                let request = AcquireRequest {
                    pool: key,
                    model,
                    session,
                };
                return self.typed(py, now, Input::Acquire(request));
            }
            self.call_fields(
                py,
                now,
                "acquire",
                $crate::methods::acquire_fields(pool, model, session),
            )
        }

        /// `report`: a request's outcome against its lease; returns the next decision.
        #[allow(clippy::too_many_arguments)]
        #[pyo3(signature = (pool, lease_id, status=None, headers=None, body=None, model=None, network_error=None, now=None))]
        fn report(
            &self,
            py: Python<'_>,
            pool: String,
            lease_id: u64,
            status: Option<u16>,
            headers: Option<&Bound<'_, PyAny>>,
            body: Option<&Bound<'_, PyAny>>,
            model: Option<String>,
            network_error: Option<String>,
            now: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<PyObject> {
            use $crate::methods::hot::*;
            // A `dict` of `str` to `str` (the common shape) is read as it is; anything else goes
            // through JSON as before (in the same order: headers, then body).
            let str_headers = headers.and_then(str_pairs);
            let headers_json = match str_headers {
                Some(_) => Value::Null,
                None => opt(py, headers)?,
            };
            let body = opt(py, body)?;
            let typed_headers = match (str_headers, &headers_json) {
                (Some(pairs), _) => Some(Headers(pairs)),
                (None, Value::Null) => Some(Headers::default()),
                (None, v) => serde_json::from_value::<Headers>(v.clone()).ok(),
            };
            let typed_body = match &body {
                Value::Null => Some(None),
                Value::String(text) => Some(Some(Body::Text(text.clone()))),
                v => serde_json::from_value::<Body>(v.clone()).ok().map(Some),
            };
            if let (Ok(key), Some(headers), Some(body)) =
                (PoolKey::parse(&pool), typed_headers, typed_body)
            {
                let report = Report {
                    pool: key,
                    lease_id: Some(LeaseId(lease_id)),
                    entry_id: None,
                    response: Response {
                        status,
                        network_error,
                        headers,
                        body,
                        model,
                    },
                };
                return self.typed(py, now, Input::Report(report));
            }
            // (A `str` to `str` dict converts without error, so converting it only now raises
            // nothing the old order would not have.)
            let headers = match headers_json {
                Value::Null => opt(py, headers)?,
                converted => converted,
            };
            let response = $crate::methods::ResponseFields {
                status,
                headers,
                body,
                model,
                network_error,
            };
            self.call_fields(
                py,
                now,
                "report",
                $crate::methods::report_fields(pool, lease_id, response),
            )
        }

        /// Releases a lease with no outcome (nothing is marked).
        #[pyo3(signature = (pool, lease_id, now=None))]
        fn release(
            &self,
            py: Python<'_>,
            pool: String,
            lease_id: u64,
            now: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<PyObject> {
            use $crate::methods::hot::*;
            if let Ok(key) = PoolKey::parse(&pool) {
                let input = Input::Release {
                    pool: key,
                    lease_id: LeaseId(lease_id),
                };
                return self.typed(py, now, input);
            }
            self.call_fields(
                py,
                now,
                "release",
                vec![("pool", json!(pool)), ("lease_id", json!(lease_id))],
            )
        }

        /// Hands the host an entry's secrets (the only output that carries them).
        #[pyo3(signature = (pool, entry_id, now=None))]
        fn credential(
            &self,
            py: Python<'_>,
            pool: String,
            entry_id: String,
            now: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<PyObject> {
            use $crate::methods::hot::*;
            if let (Ok(key), Ok(id)) = (PoolKey::parse(&pool), EntryId::parse(&entry_id)) {
                let input = Input::Reveal {
                    pool: key,
                    entry_id: id,
                };
                return self.typed(py, now, input);
            }
            self.call_fields(
                py,
                now,
                "reveal",
                vec![("pool", json!(pool)), ("entry_id", json!(entry_id))],
            )
        }
        }
    };
    ($ty:ty, rest) => {
        #[pymethods]
        impl $ty {
        /// Applies one input (a dict tagged by `type`) at `now` (epoch ms; default: wall clock).
        #[pyo3(signature = (input, now=None))]
        fn handle(
            &self,
            py: Python<'_>,
            input: &Bound<'_, PyAny>,
            now: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<PyObject> {
            let input = to_value(py, input)?;
            self.call(py, now, input)
        }

        /// `begin_turn`: restores pools from their fallback (one pool, or all).
        #[pyo3(signature = (pool=None, now=None))]
        fn begin_turn(
            &self,
            py: Python<'_>,
            pool: Option<String>,
            now: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<PyObject> {
            self.call_fields(py, now, "begin_turn", vec![("pool", json!(pool))])
        }

        /// `refresh_result`: how the refresh a `refresh` decision asked for ended.
        #[allow(clippy::too_many_arguments)]
        #[pyo3(signature = (pool, entry_id, generation, result, lease_id=None, now=None))]
        fn refresh_result(
            &self,
            py: Python<'_>,
            pool: String,
            entry_id: String,
            generation: u64,
            result: &Bound<'_, PyAny>,
            lease_id: Option<u64>,
            now: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<PyObject> {
            let result = to_value(py, result)?;
            self.call_fields(
                py,
                now,
                "refresh_result",
                vec![
                    ("pool", json!(pool)),
                    ("entry_id", json!(entry_id)),
                    ("generation", json!(generation)),
                    ("lease_id", json!(lease_id)),
                    ("result", result),
                ],
            )
        }

        /// `sync`: merges another writer's exported state.
        #[pyo3(signature = (state, now=None))]
        fn sync(
            &self,
            py: Python<'_>,
            state: &Bound<'_, PyAny>,
            now: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<PyObject> {
            let state = to_value(py, state)?;
            self.call_fields(py, now, "sync", vec![("state", state)])
        }

        /// `export_state`: the persistable state document.
        #[pyo3(signature = (now=None))]
        fn export_state(&self, py: Python<'_>, now: Option<&Bound<'_, PyAny>>) -> PyResult<PyObject> {
            self.call_fields(py, now, "export_state", vec![])
        }

        /// `status`: status for humans (one pool, or all).
        #[pyo3(signature = (pool=None, now=None))]
        fn status(
            &self,
            py: Python<'_>,
            pool: Option<String>,
            now: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<PyObject> {
            self.call_fields(py, now, "status", vec![("pool", json!(pool))])
        }

        /// `add_entry`: adds a credential (creating the pool).
        #[pyo3(signature = (pool, entry, now=None))]
        fn add_entry(
            &self,
            py: Python<'_>,
            pool: String,
            entry: &Bound<'_, PyAny>,
            now: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<PyObject> {
            let entry = to_value(py, entry)?;
            self.call_fields(
                py,
                now,
                "add_entry",
                vec![("pool", json!(pool)), ("entry", entry)],
            )
        }

        /// `remove_entry`: removes a credential for good (tombstoned).
        #[pyo3(signature = (pool, entry_id, now=None))]
        fn remove_entry(
            &self,
            py: Python<'_>,
            pool: String,
            entry_id: String,
            now: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<PyObject> {
            self.call_fields(
                py,
                now,
                "remove_entry",
                vec![("pool", json!(pool)), ("entry_id", json!(entry_id))],
            )
        }

        /// `reset`: clears status and cooldowns of one entry, or of every entry of the pool.
        #[pyo3(signature = (pool, entry_id=None, now=None))]
        fn reset(
            &self,
            py: Python<'_>,
            pool: String,
            entry_id: Option<String>,
            now: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<PyObject> {
            self.call_fields(
                py,
                now,
                "reset",
                vec![("pool", json!(pool)), ("entry_id", json!(entry_id))],
            )
        }

        /// Creates the pool if missing and sets any of its strategy, policy and fallback chain.
        #[pyo3(signature = (pool, strategy=None, policy=None, fallback=None, now=None))]
        fn configure_pool(
            &self,
            py: Python<'_>,
            pool: String,
            strategy: Option<String>,
            policy: Option<&Bound<'_, PyAny>>,
            fallback: Option<&Bound<'_, PyAny>>,
            now: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<PyObject> {
            let (policy, fallback) = (opt(py, policy)?, opt(py, fallback)?);
            self.call_fields(
                py,
                now,
                "configure_pool",
                vec![
                    ("pool", json!(pool)),
                    ("strategy", json!(strategy)),
                    ("policy", policy),
                    ("fallback", fallback),
                ],
            )
        }

        /// Sets an entry's priority (lower is preferred).
        #[pyo3(signature = (pool, entry_id, priority, now=None))]
        fn set_priority(
            &self,
            py: Python<'_>,
            pool: String,
            entry_id: String,
            priority: i64,
            now: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<PyObject> {
            self.call_fields(
                py,
                now,
                "set_priority",
                vec![
                    ("pool", json!(pool)),
                    ("entry_id", json!(entry_id)),
                    ("priority", json!(priority)),
                ],
            )
        }

        /// Whether a refresh from `generation` is still needed (false: adopt the stored token).
        #[pyo3(signature = (pool, entry_id, generation, now=None))]
        fn check_refresh(
            &self,
            py: Python<'_>,
            pool: String,
            entry_id: String,
            generation: u64,
            now: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<PyObject> {
            self.call_fields(
                py,
                now,
                "check_refresh",
                vec![
                    ("pool", json!(pool)),
                    ("entry_id", json!(entry_id)),
                    ("generation", json!(generation)),
                ],
            )
        }

        /// Lets time pass: clears expired cooldowns and names the next deadline.
        #[pyo3(signature = (now=None))]
        fn tick(&self, py: Python<'_>, now: Option<&Bound<'_, PyAny>>) -> PyResult<PyObject> {
            self.call_fields(py, now, "tick", vec![])
        }

        /// Adopts credentials from an environment map and a config (`{"custom_providers": [...]}`).
        #[pyo3(signature = (env=None, config=None, now=None))]
        fn seed(
            &self,
            py: Python<'_>,
            env: Option<&Bound<'_, PyAny>>,
            config: Option<&Bound<'_, PyAny>>,
            now: Option<&Bound<'_, PyAny>>,
        ) -> PyResult<PyObject> {
            let (env, config) = (opt(py, env)?, opt(py, config)?);
            self.call_fields(py, now, "seed", vec![("env", env), ("config", config)])
        }
        }
    };
}

pub(crate) use wire_methods;

/// The wire fields of `acquire`.
pub(crate) fn acquire_fields(
    pool: String,
    model: Option<String>,
    session: Option<String>,
) -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::json;
    vec![
        ("pool", json!(pool)),
        ("model", json!(model)),
        ("session", json!(session)),
    ]
}

/// A `report`'s response, its headers and body already converted to JSON.
pub(crate) struct ResponseFields {
    pub(crate) status: Option<u16>,
    pub(crate) headers: serde_json::Value,
    pub(crate) body: serde_json::Value,
    pub(crate) model: Option<String>,
    pub(crate) network_error: Option<String>,
}

/// The wire fields of `report` (absent response fields left out).
pub(crate) fn report_fields(
    pool: String,
    lease_id: u64,
    response: ResponseFields,
) -> Vec<(&'static str, serde_json::Value)> {
    use serde_json::{Map, Value, json};
    let mut object = Map::new();
    for (k, v) in [
        ("status", json!(response.status)),
        ("headers", response.headers),
        ("body", response.body),
        ("model", json!(response.model)),
        ("network_error", json!(response.network_error)),
    ] {
        if !v.is_null() {
            object.insert(k.into(), v);
        }
    }
    vec![
        ("pool", json!(pool)),
        ("lease_id", json!(lease_id)),
        ("response", Value::Object(object)),
    ]
}

/// The names the typed hot-path methods of [`wire_methods!`] use, wherever it expands.
pub(crate) mod hot {
    pub(crate) use crate::{opt, str_pairs};
    pub(crate) use credpool_core::{
        AcquireRequest, Body, EntryId, Headers, Input, LeaseId, PoolKey, Report, Response,
    };
    pub(crate) use serde_json::{Value, json};
}
