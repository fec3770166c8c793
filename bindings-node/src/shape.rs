//! Hot-path objects built, and object arguments read, in one call into JS each.
//!
//! Adding properties one at a time from native code (`napi_set_named_property`,
//! `napi_define_properties`) takes V8's runtime path for every key: internalise the name,
//! search the map's transitions, migrate the object. A JS object literal does the same work
//! once, when it is compiled. So for each key sequence the hot path emits (`type`,
//! `entry_id`, `lease_id`, `changed`, ...) this module compiles, once per Node environment,
//! a factory `(function (v0, v1, ...) { return { "type": v0, "entry_id": v1, ... } })` and
//! calls it with the values. The result is the same plain object (own, enumerable, writable,
//! configurable data properties, in that order, prototype `Object.prototype`); the keys are
//! the binding's own constants, never input.
//!
//! Object arguments (`report`'s response, `acquire`'s options) are read the same way: a
//! compiled reader walks the object with `for...in` (the keys `napi_get_property_names`
//! lists), reads each value once, refuses any key it does not know, and hands back the
//! values in one array ([`read`]), instead of one napi call per key name and per value.
//!
//! When no function can be made (no JS may run, say) callers fall back to plain napi calls
//! with the same results. The compiled functions live in this addon's instance data (one set
//! per Node environment, so per worker thread).

// Raw napi handles and the per-environment instance data.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_void};
use std::fmt::Write as _;
use std::ptr;

use napi::{check_status, sys};

/// Most keys of one output object.
pub(crate) const MAX_KEYS: usize = 10;

/// What a compiled function does with its key sequence.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `(v0, v1, ...) => ({ k0: v0, k1: v1, ... })`.
    Build,
    /// `(o) => [mask, ...values]` or `undefined`: see [`read`].
    Read,
}

/// One compiled function: its kind, its key sequence (addresses of `'static` C strings) and
/// a strong reference to it.
struct Factory {
    kind: Kind,
    keys: [*const c_char; MAX_KEYS],
    len: usize,
    function: sys::napi_ref,
}

/// Every factory of one environment (its instance data; freed with it, and its references
/// with it).
#[derive(Default)]
struct Factories {
    list: Vec<Factory>,
    /// Set when compiling a factory failed once: then no factory is tried again.
    unavailable: bool,
}

unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the box `factories` leaked into the instance data.
    drop(unsafe { Box::from_raw(data.cast::<Factories>()) });
}

/// This environment's factories (created on first use).
///
/// # Safety
/// `env` is the live env of the current call; the returned borrow must end before any call
/// into JS that could re-enter the binding.
unsafe fn factories<'a>(env: sys::napi_env) -> napi::Result<&'a mut Factories> {
    let mut data = ptr::null_mut();
    // SAFETY: `env` is live.
    check_status!(unsafe { sys::napi_get_instance_data(env, &raw mut data) })?;
    if data.is_null() {
        let fresh = Box::into_raw(Box::<Factories>::default());
        // SAFETY: `fresh` is a valid box; `finalize` frees it when the env goes away.
        let status = unsafe {
            sys::napi_set_instance_data(env, fresh.cast(), Some(finalize), ptr::null_mut())
        };
        if let Err(e) = check_status!(status) {
            // SAFETY: napi did not take it.
            drop(unsafe { Box::from_raw(fresh) });
            return Err(e);
        }
        data = fresh.cast();
    }
    // SAFETY: only this module sets this addon's instance data, always to a `Factories`.
    Ok(unsafe { &mut *data.cast::<Factories>() })
}

/// This env's function of `kind` for `keys`, compiled on first use; `None` when no function
/// can be made here.
///
/// # Safety
/// `env` is the live env of the current call.
unsafe fn function(
    env: sys::napi_env,
    kind: Kind,
    keys: &[&'static CStr],
) -> napi::Result<Option<sys::napi_value>> {
    // SAFETY: live env; the borrow ends before this returns (compiling runs no user code).
    let factories = unsafe { factories(env)? };
    if factories.unavailable || keys.len() > MAX_KEYS {
        return Ok(None);
    }
    let found = factories.list.iter().find(|f| {
        f.kind == kind
            && f.len == keys.len()
            && f.keys[..f.len]
                .iter()
                .zip(keys)
                .all(|(a, b)| *a == b.as_ptr())
    });
    if let Some(factory) = found {
        let mut function = ptr::null_mut();
        // SAFETY: the reference is strong and belongs to this env.
        check_status!(unsafe {
            sys::napi_get_reference_value(env, factory.function, &raw mut function)
        })?;
        return Ok(Some(function));
    }
    let source = match kind {
        Kind::Build => build_source(keys),
        Kind::Read => read_source(keys),
    };
    // SAFETY: live env.
    let Some((function, reference)) = source.and_then(|source| unsafe { compile(env, &source) })
    else {
        factories.unavailable = true;
        return Ok(None);
    };
    let mut stored = [ptr::null(); MAX_KEYS];
    for (slot, key) in stored.iter_mut().zip(keys) {
        *slot = key.as_ptr();
    }
    factories.list.push(Factory {
        kind,
        keys: stored,
        len: keys.len(),
        function: reference,
    });
    Ok(Some(function))
}

/// Builds `{ keys[0]: values[0], ... }` with this env's factory for `keys`. `Ok(None)`: no
/// factory can be made here; the caller builds the object itself.
///
/// # Safety
/// `env` is the live env of the current call and `values` were created in it.
pub(crate) unsafe fn build(
    env: sys::napi_env,
    keys: &[&'static CStr],
    values: &[sys::napi_value],
) -> napi::Result<Option<sys::napi_value>> {
    debug_assert_eq!(keys.len(), values.len());
    // SAFETY: live env.
    let Some(function) = (unsafe { function(env, Kind::Build, keys)? }) else {
        return Ok(None);
    };
    let mut object = ptr::null_mut();
    // SAFETY: `function` is a live function of this env; `values` are live handles. The
    // factory only builds an object literal (the receiver is unused).
    check_status!(unsafe {
        sys::napi_call_function(
            env,
            function,
            function,
            values.len(),
            values.as_ptr(),
            &raw mut object,
        )
    })?;
    Ok(Some(object))
}

/// Reads a plain object argument whose keys must all be among `keys`, in one call into JS.
///
/// The reader walks `value` with `for...in` (own and inherited enumerable string keys: what
/// `napi_get_property_names` lists), reads each once and skips `undefined` values. It
/// answers `undefined` when `value` is not a non-array object or has another key, else
/// `[mask, ...values]`: bit `i` of `mask` set when `keys[i]` is present, its value following
/// in key order.
///
/// # Safety
/// `env` is the live env of the current call and `value` a live handle in it.
pub(crate) unsafe fn read(
    env: sys::napi_env,
    keys: &[&'static CStr],
    value: sys::napi_value,
) -> napi::Result<Read> {
    // SAFETY: live env.
    let Some(function) = (unsafe { function(env, Kind::Read, keys)? }) else {
        return Ok(Read::Unavailable);
    };
    let (mut result, mut kind, mut first, mut mask) = (ptr::null_mut(), 0, ptr::null_mut(), 0);
    // SAFETY: live handles of this env; the reader returns an array it made, or `undefined`.
    unsafe {
        check_status!(sys::napi_call_function(
            env,
            function,
            function,
            1,
            &raw const value,
            &raw mut result,
        ))?;
        check_status!(sys::napi_typeof(env, result, &raw mut kind))?;
        if kind != sys::ValueType::napi_object {
            return Ok(Read::Other);
        }
        check_status!(sys::napi_get_element(env, result, 0, &raw mut first))?;
        check_status!(sys::napi_get_value_uint32(env, first, &raw mut mask))?;
    }
    Ok(Read::Fields {
        mask,
        values: result,
    })
}

/// What [`read`] found.
pub(crate) enum Read {
    /// Only known keys: bit `i` of `mask` set when `keys[i]` has a defined value, which is
    /// at index 1 + (number of lower set bits) of `values`.
    Fields {
        /// Which keys are present.
        mask: u32,
        /// `[mask, ...values]`.
        values: sys::napi_value,
    },
    /// Not a non-array object, or a key that is not known: the caller's generic path.
    Other,
    /// No reader can be made in this env: the caller reads the object itself.
    Unavailable,
}

/// `(function (v0, ...) { return { "k0": v0, ... }; })`.
fn build_source(keys: &[&'static CStr]) -> Option<String> {
    let mut source = String::from("(function (");
    for i in 0..keys.len() {
        let comma = if i == 0 { "" } else { ", " };
        write!(source, "{comma}v{i}").ok()?;
    }
    source.push_str(") { return { ");
    for (i, key) in keys.iter().enumerate() {
        let comma = if i == 0 { "" } else { ", " };
        write!(source, "{comma}{}: v{i}", quoted(key)?).ok()?;
    }
    source.push_str(" }; })");
    Some(source)
}

/// The reader of [`read`] for `keys`.
fn read_source(keys: &[&'static CStr]) -> Option<String> {
    let mut source = String::from(
        "(function (o) {\n\
         if (typeof o !== 'object' || o === null || Array.isArray(o)) return undefined;\n\
         let m = 0",
    );
    for i in 0..keys.len() {
        write!(source, ", v{i}").ok()?;
    }
    source.push_str(
        ";\nfor (const k in o) {\nconst v = o[k];\nif (v === undefined) continue;\nswitch (k) {\n",
    );
    for (i, key) in keys.iter().enumerate() {
        writeln!(
            source,
            "case {}: v{i} = v; m |= {}; break;",
            quoted(key)?,
            1u32 << i
        )
        .ok()?;
    }
    source.push_str("default: return undefined;\n}\n}\nconst r = [m];\n");
    for i in 0..keys.len() {
        writeln!(source, "if (m & {}) r.push(v{i});", 1u32 << i).ok()?;
    }
    source.push_str("return r;\n})");
    Some(source)
}

/// A key as a JS string literal (the keys are the binding's ASCII names; JSON quoting keeps
/// them literal whatever they are).
fn quoted(key: &CStr) -> Option<String> {
    serde_json::to_string(key.to_str().ok()?).ok()
}

/// Compiles `source` (a function expression) and takes a strong reference to the function;
/// `None` when napi refuses (no JS may run, code generation is off, ...).
///
/// # Safety
/// `env` is the live env of the current call.
unsafe fn compile(env: sys::napi_env, source: &str) -> Option<(sys::napi_value, sys::napi_ref)> {
    let (mut script, mut function, mut reference) =
        (ptr::null_mut(), ptr::null_mut(), ptr::null_mut());
    // SAFETY: live env; `source` outlives the call and napi copies it.
    unsafe {
        let status = sys::napi_create_string_utf8(
            env,
            source.as_ptr().cast(),
            source.len() as isize,
            &raw mut script,
        );
        if status != sys::Status::napi_ok {
            return None;
        }
        if sys::napi_run_script(env, script, &raw mut function) != sys::Status::napi_ok {
            // A refused compilation leaves an exception pending: clear it, the caller
            // builds the object the slow way.
            let mut ignored = ptr::null_mut();
            sys::napi_get_and_clear_last_exception(env, &raw mut ignored);
            return None;
        }
        if sys::napi_create_reference(env, function, 1, &raw mut reference) != sys::Status::napi_ok
        {
            return None;
        }
    }
    Some((function, reference))
}
