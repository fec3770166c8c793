//! The methods that are one core input each, declared once for both classes: on
//! `Registry` a method answers the output, on `Store` a promise of it. An entry names
//! the method, its arguments (TypeScript types where napi's are not enough), its output's
//! TypeScript type (plain, then as a promise) and the core input it builds: the hot ones
//! typed straight away, the others from a wire document parsed exactly as `handle` parses
//! it. (Docs are spelt `#[doc = "..."]`: napi-derive would copy a `///` comment passed
//! through a macro into the typings as a raw string literal.)

use credpool_core::{
    AcquireRequest, EntryId, ErrorCode, Input, LeaseId, PoolKey, Report, Response, parse_input,
};
use napi::bindgen_prelude::{Object, Unknown};
use napi::{Env, Result};
use napi_derive::napi;
use serde_json::{Value, json};

use crate::store::Store;
use crate::{Code, Coded, Document, Registry, error, guard, integer_value as int, whole};

/// `{ type: kind, ...fields }`, leaving out `null` fields (an omitted JS argument).
pub(crate) fn input(kind: &str, mut fields: Value) -> Coded<Value> {
    if let Value::Object(map) = &mut fields {
        map.retain(|_, v| !v.is_null());
        map.insert("type".into(), kind.into());
    }
    Ok(fields)
}

/// Core's typed input from a wire document, read exactly as `handle` reads it.
pub(crate) fn parsed(document: Coded<Value>) -> Coded<Input> {
    let document = document?;
    guard(|| {
        #[cfg(feature = "test-panic")]
        crate::test_panic(&document);
        parse_input(document)
    })
}

/// A pool key argument, checked as core checks it.
fn pool_key(pool: &str) -> Coded<PoolKey> {
    guard(|| PoolKey::parse(pool))
}

/// [`input`] with the fields of an object argument (`what`, for the error; `null` when
/// omitted) under the fixed `fields`.
fn with_object(kind: &str, what: &str, extra: Value, fields: Value) -> Coded<Value> {
    let mut all = match extra {
        Value::Null => return input(kind, fields),
        Value::Object(map) => map,
        _ => {
            return Err(error(
                ErrorCode::InvalidInput,
                format!("{what} must be an object"),
            ));
        }
    };
    if let Value::Object(fields) = fields {
        all.extend(fields);
    }
    input(kind, Value::Object(all))
}

macro_rules! wire_methods {
    ($js:ident; $(
        $(#[doc = $doc:tt])*
        fn $name:ident($($arg:ident: $ty:ty $(as $ts:literal)?),*) -> $out:literal | $promise:literal
            => $input:expr;
    )*) => {
        #[napi]
        impl Registry {$(
            $(#[doc = $doc])*
            #[napi(ts_return_type = $out)]
            pub fn $name<'env>(
                &mut self,
                $js: &'env Env,
                $($(#[napi(ts_arg_type = $ts)])? $arg: $ty,)*
                now: Option<f64>,
            ) -> Result<Unknown<'env>, Code> {
                #[allow(clippy::redundant_closure_call)]
                let input = (|| -> Coded<Input> { $input })();
                self.run($js, input, now)
            }
        )*}

        #[napi]
        impl Store {$(
            $(#[doc = $doc])*
            #[napi(ts_return_type = $promise)]
            pub fn $name<'env>(
                &self,
                $js: &'env Env,
                $($(#[napi(ts_arg_type = $ts)])? $arg: $ty,)*
                now: Option<f64>,
            ) -> Result<Object<'env>> {
                #[allow(clippy::redundant_closure_call)]
                let input = (|| -> Coded<Input> { $input })();
                self.call($js, input, now)
            }
        )*}
    };
}

wire_methods! { js;
    #[doc = "Applies one wire input (`{ type: \"acquire\", ... }`) at `now` (default: the wall clock)."]
    fn handle(input: Unknown<'_> as "Input") -> "Output" | "Promise<Output>" => parsed(input.read(js, "input"));

    #[doc = "`acquire`: pick an entry for a request."]
    fn acquire(pool: String, opts: Option<Unknown<'_>> as "{ model?: string; session?: string; spread?: boolean; can_refresh?: boolean | 'built_in' }")
        -> "DecisionOutput" | "Promise<DecisionOutput>"
        => match opts {
            None => Ok(Input::Acquire(AcquireRequest::new(pool_key(&pool)?))),
            Some(opts) => parsed(with_object("acquire", "opts", opts.read(js, "opts")?, json!({ "pool": pool }))),
        };

    #[doc = "`report`: a request's outcome against its lease."]
    fn report(pool: String, lease_id: f64, response: Unknown<'_> as "ResponseInfo")
        -> "DecisionOutput" | "Promise<DecisionOutput>"
        => {
            let (pool, response) = (pool_key(&pool)?, response.read(js, "response")?);
            let lease_id = Some(LeaseId(whole(lease_id, "lease_id")?));
            Ok(Input::Report(Report { pool, lease_id, entry_id: None, response: guard(|| Response::from_value(response))? }))
        };

    #[doc = "`release`: close a lease with no outcome (nothing is marked)."]
    fn release(pool: String, lease_id: f64)
        -> "{ type: 'released'; lease_id: number } & Changed"
         | "Promise<{ type: 'released'; lease_id: number } & Changed>"
        => Ok(Input::Release { pool: pool_key(&pool)?, lease_id: LeaseId(whole(lease_id, "lease_id")?) });

    #[doc = "`reveal`: an entry's secrets, to send the request with (the only output carrying them)."]
    fn credential(pool: String, entry_id: String)
        -> "CredentialOutput" | "Promise<CredentialOutput>"
        => Ok(Input::Reveal { pool: pool_key(&pool)?, entry_id: guard(|| EntryId::parse(&entry_id))? });

    #[doc = "`begin_turn`: restore pools from their fallback (one pool, or all)."]
    fn begin_turn(pool: Option<String>)
        -> "{ type: 'turn_begun'; restored: string[] } & Changed"
         | "Promise<{ type: 'turn_begun'; restored: string[] } & Changed>"
        => parsed(input("begin_turn", json!({ "pool": pool })));

    #[doc = "`refresh_result`: how the refresh a `refresh` decision asked for ended (on a"]
    #[doc = "`Store`, prefer `beginRefresh` / `finishRefresh`: single-flight across processes)."]
    fn refresh_result(result: Unknown<'_> as "RefreshResultInput")
        -> "DecisionOutput" | "Promise<DecisionOutput>"
        => parsed(with_object("refresh_result", "result", result.read(js, "result")?, json!({})));

    #[doc = "`check_refresh`: whether a refresh from `generation` is still needed."]
    fn check_refresh(pool: String, entry_id: String, generation: f64)
        -> "{ type: 'refresh_check'; needed: boolean } & Changed"
         | "Promise<{ type: 'refresh_check'; needed: boolean } & Changed>"
        => parsed(input("check_refresh", json!({ "pool": pool, "entry_id": entry_id, "generation": int(generation) })));

    #[doc = "`sync`: merge another writer's exported state (read as JSON text: no size cap)."]
    fn sync(state: Unknown<'_> as "StateDocument")
        -> "{ type: 'synced' } & Changed" | "Promise<{ type: 'synced' } & Changed>"
        => parsed(input("sync", json!({ "state": state.read(js, "state")? })));

    #[doc = "`status`: status for humans (one pool, or all)."]
    fn status(pool: Option<String>) -> "StatusOutput" | "Promise<StatusOutput>"
        => parsed(input("status", json!({ "pool": pool })));

    #[doc = "`tick`: let time pass; expired cooldowns clear and the next deadline is named."]
    fn tick()
        -> "{ type: 'ticked'; recovered: Array<{ pool: string; entry_id: string }>; next_wakeup: Millis | null } & Changed"
         | "Promise<{ type: 'ticked'; recovered: Array<{ pool: string; entry_id: string }>; next_wakeup: Millis | null } & Changed>"
        => parsed(input("tick", json!({})));

    #[doc = "`configure_pool`: create the pool if missing and set its strategy, policy, fallback, API shape."]
    fn configure_pool(pool: String, config: Option<Unknown<'_>>
            as "{ strategy?: Strategy; policy?: PolicyInput; fallback?: FallbackTarget[]; api?: Api }")
        -> "{ type: 'pool_configured'; pool: string } & Changed"
         | "Promise<{ type: 'pool_configured'; pool: string } & Changed>"
        => parsed(with_object("configure_pool", "config", config.read(js, "config")?, json!({ "pool": pool })));

    #[doc = "`add_entry`: add a credential (creating the pool)."]
    fn add_entry(pool: String, entry: Unknown<'_> as "NewEntry")
        -> "{ type: 'entry_added'; entry_id: string } & Changed"
         | "Promise<{ type: 'entry_added'; entry_id: string } & Changed>"
        => parsed(input("add_entry", json!({ "pool": pool, "entry": entry.read(js, "entry")? })));

    #[doc = "`remove_entry`: remove a credential for good (tombstoned)."]
    fn remove_entry(pool: String, entry_id: String)
        -> "{ type: 'entry_removed'; entry_id: string } & Changed"
         | "Promise<{ type: 'entry_removed'; entry_id: string } & Changed>"
        => parsed(input("remove_entry", json!({ "pool": pool, "entry_id": entry_id })));

    #[doc = "`set_priority`: move an entry (lower is preferred)."]
    fn set_priority(pool: String, entry_id: String, priority: f64)
        -> "{ type: 'entry_updated'; entry_id: string } & Changed"
         | "Promise<{ type: 'entry_updated'; entry_id: string } & Changed>"
        => parsed(input("set_priority", json!({ "pool": pool, "entry_id": entry_id, "priority": int(priority) })));

    #[doc = "`reset`: clear status and cooldowns of one entry, or of every entry of the pool."]
    fn reset(pool: String, entry_id: Option<String>)
        -> "{ type: 'reset'; count: number } & Changed"
         | "Promise<{ type: 'reset'; count: number } & Changed>"
        => parsed(input("reset", json!({ "pool": pool, "entry_id": entry_id })));

    #[doc = "`seed`: adopt credentials from an environment map and custom providers."]
    fn seed(env: Option<Unknown<'_>> as "Record<string, string>",
            config: Option<Unknown<'_>> as "{ custom_providers?: CustomProvider[] }")
        -> "{ type: 'seeded'; added: SeededEntry[]; updated: SeededEntry[] } & Changed"
         | "Promise<{ type: 'seeded'; added: SeededEntry[]; updated: SeededEntry[] } & Changed>"
        => parsed(input("seed", json!({ "env": env.read(js, "env")?, "config": config.read(js, "config")? })));
}
