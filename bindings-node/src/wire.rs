//! The methods that are one wire input each, declared once for both classes: on
//! `Registry` a method answers the output, on `FileStore` a promise of it. An entry names
//! the method, its arguments (with their TypeScript type where napi's is not enough), the
//! TypeScript type of its output (plain, then as a promise), and the wire input it builds;
//! the input then runs exactly like `handle(input)`. A new wire input is one more entry.
//! (Entries spell their docs `#[doc = "..."]`: napi-derive would copy a `///` comment
//! passed through a macro into the typings as a raw string literal, `r"..."`.)

use credpool_core::ErrorCode;
use napi::bindgen_prelude::{Object, Unknown};
use napi::{Env, Result};
use napi_derive::napi;
use serde_json::{Value, json};

use crate::store::FileStore;
use crate::{Code, Coded, Document, Registry, error, integer_value as int};

/// `{ type: kind, ...fields }`, leaving out `null` fields (an omitted JS argument).
pub(crate) fn input(kind: &str, mut fields: Value) -> Coded<Value> {
    if let Value::Object(map) = &mut fields {
        map.retain(|_, v| !v.is_null());
        map.insert("type".into(), kind.into());
    }
    Ok(fields)
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
                let input = (|| -> Coded<Value> { $input })();
                self.run($js, input, now)
            }
        )*}

        #[napi]
        impl FileStore {$(
            $(#[doc = $doc])*
            #[napi(ts_return_type = $promise)]
            pub fn $name<'env>(
                &self,
                $js: &'env Env,
                $($(#[napi(ts_arg_type = $ts)])? $arg: $ty,)*
                now: Option<f64>,
            ) -> Result<Object<'env>> {
                #[allow(clippy::redundant_closure_call)]
                let input = (|| -> Coded<Value> { $input })();
                self.call($js, input, now)
            }
        )*}
    };
}

wire_methods! { js;
    #[doc = "Applies one wire input (`{ type: \"acquire\", ... }`) at `now` (default: the wall clock)."]
    fn handle(input: Unknown<'_> as "Input") -> "Output" | "Promise<Output>" => input.read(js, "input");

    #[doc = "`acquire`: pick an entry for a request."]
    fn acquire(pool: String, opts: Option<Unknown<'_>> as "{ model?: string; session?: string }")
        -> "DecisionOutput" | "Promise<DecisionOutput>"
        => with_object("acquire", "opts", opts.read(js, "opts")?, json!({ "pool": pool }));

    #[doc = "`report`: a request's outcome against its lease."]
    fn report(pool: String, lease_id: f64, response: Unknown<'_> as "ResponseInfo")
        -> "DecisionOutput" | "Promise<DecisionOutput>"
        => input("report", json!({ "pool": pool, "lease_id": int(lease_id), "response": response.read(js, "response")? }));

    #[doc = "`release`: close a lease with no outcome (nothing is marked)."]
    fn release(pool: String, lease_id: f64)
        -> "{ type: 'released'; lease_id: number } & Changed"
         | "Promise<{ type: 'released'; lease_id: number } & Changed>"
        => input("release", json!({ "pool": pool, "lease_id": int(lease_id) }));

    #[doc = "`reveal`: an entry's secrets, to send the request with (the only output carrying them)."]
    fn credential(pool: String, entry_id: String)
        -> "CredentialOutput" | "Promise<CredentialOutput>"
        => input("reveal", json!({ "pool": pool, "entry_id": entry_id }));

    #[doc = "`begin_turn`: restore pools from their fallback (one pool, or all)."]
    fn begin_turn(pool: Option<String>)
        -> "{ type: 'turn_begun'; restored: string[] } & Changed"
         | "Promise<{ type: 'turn_begun'; restored: string[] } & Changed>"
        => input("begin_turn", json!({ "pool": pool }));

    #[doc = "`refresh_result`: how the refresh a `refresh` decision asked for ended (on a"]
    #[doc = "`FileStore`, prefer `beginRefresh` / `finishRefresh`: single-flight across processes)."]
    fn refresh_result(result: Unknown<'_> as "RefreshResultInput")
        -> "DecisionOutput" | "Promise<DecisionOutput>"
        => with_object("refresh_result", "result", result.read(js, "result")?, json!({}));

    #[doc = "`check_refresh`: whether a refresh from `generation` is still needed."]
    fn check_refresh(pool: String, entry_id: String, generation: f64)
        -> "{ type: 'refresh_check'; needed: boolean } & Changed"
         | "Promise<{ type: 'refresh_check'; needed: boolean } & Changed>"
        => input("check_refresh", json!({ "pool": pool, "entry_id": entry_id, "generation": int(generation) }));

    #[doc = "`sync`: merge another writer's exported state (read as JSON text: no size cap)."]
    fn sync(state: Unknown<'_> as "StateDocument")
        -> "{ type: 'synced' } & Changed" | "Promise<{ type: 'synced' } & Changed>"
        => input("sync", json!({ "state": state.read(js, "state")? }));

    #[doc = "`status`: status for humans (one pool, or all)."]
    fn status(pool: Option<String>) -> "StatusOutput" | "Promise<StatusOutput>"
        => input("status", json!({ "pool": pool }));

    #[doc = "`tick`: let time pass; expired cooldowns clear and the next deadline is named."]
    fn tick()
        -> "{ type: 'ticked'; recovered: Array<{ pool: string; entry_id: string }>; next_wakeup: Millis | null } & Changed"
         | "Promise<{ type: 'ticked'; recovered: Array<{ pool: string; entry_id: string }>; next_wakeup: Millis | null } & Changed>"
        => input("tick", json!({}));

    #[doc = "`configure_pool`: create the pool if missing and set its strategy, policy, fallback, API shape."]
    fn configure_pool(pool: String, config: Option<Unknown<'_>>
            as "{ strategy?: Strategy; policy?: PolicyInput; fallback?: FallbackTarget[]; api?: Api }")
        -> "{ type: 'pool_configured'; pool: string } & Changed"
         | "Promise<{ type: 'pool_configured'; pool: string } & Changed>"
        => with_object("configure_pool", "config", config.read(js, "config")?, json!({ "pool": pool }));

    #[doc = "`add_entry`: add a credential (creating the pool)."]
    fn add_entry(pool: String, entry: Unknown<'_> as "NewEntry")
        -> "{ type: 'entry_added'; entry_id: string } & Changed"
         | "Promise<{ type: 'entry_added'; entry_id: string } & Changed>"
        => input("add_entry", json!({ "pool": pool, "entry": entry.read(js, "entry")? }));

    #[doc = "`remove_entry`: remove a credential for good (tombstoned)."]
    fn remove_entry(pool: String, entry_id: String)
        -> "{ type: 'entry_removed'; entry_id: string } & Changed"
         | "Promise<{ type: 'entry_removed'; entry_id: string } & Changed>"
        => input("remove_entry", json!({ "pool": pool, "entry_id": entry_id }));

    #[doc = "`set_priority`: move an entry (lower is preferred)."]
    fn set_priority(pool: String, entry_id: String, priority: f64)
        -> "{ type: 'entry_updated'; entry_id: string } & Changed"
         | "Promise<{ type: 'entry_updated'; entry_id: string } & Changed>"
        => input("set_priority", json!({ "pool": pool, "entry_id": entry_id, "priority": int(priority) }));

    #[doc = "`reset`: clear status and cooldowns of one entry, or of every entry of the pool."]
    fn reset(pool: String, entry_id: Option<String>)
        -> "{ type: 'reset'; count: number } & Changed"
         | "Promise<{ type: 'reset'; count: number } & Changed>"
        => input("reset", json!({ "pool": pool, "entry_id": entry_id }));

    #[doc = "`seed`: adopt credentials from an environment map and custom providers."]
    fn seed(env: Option<Unknown<'_>> as "Record<string, string>",
            config: Option<Unknown<'_>> as "{ custom_providers?: CustomProvider[] }")
        -> "{ type: 'seeded'; added: SeededEntry[]; updated: SeededEntry[] } & Changed"
         | "Promise<{ type: 'seeded'; added: SeededEntry[]; updated: SeededEntry[] } & Changed>"
        => input("seed", json!({ "env": env.read(js, "env")?, "config": config.read(js, "config")? }));
}
