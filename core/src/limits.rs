//! Fixed bounds on what core reads and keeps, so hostile input costs bounded time and memory.

/// Characters of a provider error message kept (in decisions and in state).
pub const MAX_MESSAGE_CHARS: usize = 500;
/// Characters of a provider reason code kept.
pub const MAX_REASON_CHARS: usize = 100;
/// Bytes of a text body (or of any string inside a JSON body) the classifier scans.
pub const MAX_BODY_SCAN_BYTES: usize = 64 * 1024;
/// Bytes of one header value the classifier reads.
pub const MAX_HEADER_VALUE_BYTES: usize = 1024;
/// Nesting depth of a JSON body the classifier walks.
pub const MAX_BODY_DEPTH: usize = 8;
/// Entries one pool may hold.
pub const MAX_ENTRIES_PER_POOL: usize = 200_000;
/// Pools one registry may hold.
pub const MAX_POOLS: usize = 10_000;
/// Characters of an id, label, source, pool key, model or session name.
pub const MAX_NAME_CHARS: usize = 256;
/// Bytes of one secret (access or refresh token).
pub const MAX_SECRET_BYTES: usize = 16 * 1024;
/// Nesting depth of an entry's `extra` object (its own level is 1). Keeps every state
/// document the registry exports well inside the 128-level nesting limit of the JSON
/// parsers of every runtime (serde_json, napi, the stores), so a persisted store can
/// always be read back.
pub const MAX_EXTRA_DEPTH: usize = 32;
/// Steps one pool's fallback chain may hold.
pub const MAX_FALLBACK_STEPS: usize = 32;
/// Bytes of an entry's `extra` (as JSON) kept: a pass-through bag, not a data store.
pub const MAX_EXTRA_BYTES: usize = 64 * 1024;
/// Calls that gave up kept per registry for a client's retry to continue (oldest dropped).
pub const MAX_GIVEN_UP_CALLS: usize = 64;
/// Suppressed seeding sources one pool may hold.
pub const MAX_SUPPRESSED_SOURCES: usize = 1_024;
