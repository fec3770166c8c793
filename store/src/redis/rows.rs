//! The Redis store's per-entry layout (layout 2): rows, the two scripts that read and
//! write them, and their conversion from and to core's state fragments.
//!
//! Keys under `credpool:{namespace}:` (a row's *member* is `p␟{pool}` for a pool's own
//! fields, `e␟{pool}␟{entry}` for an entry; `␟` is U+001F, which neither a pool key nor an
//! entry id may hold):
//! - `layout`: `2`; `stamp`: a counter bumped by every write;
//! - `changes`: a sorted set, member → the stamp of its last write (what a reader fetches
//!   after the stamp it last saw); a cursor's move is recorded as `c␟{pool}`, which reads
//!   the pool's row;
//! - `counted`: the same for counter changes only (entry members), read only by a reader
//!   that needs counts (a `least_used` pool, a status or an export): selections on other
//!   pools cost other processes nothing to read;
//! - `doc:{member}`: the row's JSON, without the fields below; `versions`: a hash, member
//!   → how many times its document was written (the compare-and-set version);
//! - `counts:{pool}␟{entry}`: a hash, writer → that writer's selections of the entry,
//!   raised by its own writer only (a maximum, so never in conflict; a migration or a
//!   rewrite after Redis lost its data writes every writer's);
//! - `cursor:{pool}`: the round-robin cursor of the latest selection (a write replaces it
//!   only with a later one, in core's merge order: never in conflict).
//!
//! A document is written only while its version is the one this process merged
//! (compare-and-set per row); counters and cursors are written without a check. Writers
//! on different entries never conflict, and a selection (a counter and a cursor) conflicts
//! with nothing.

use credpool_core::{Cursor, EntryDoc, EntryId, Error, ErrorCode, PoolDoc, PoolKey, Result};
use serde_json::{Map, Value};

/// This layout's `layout` value.
pub(super) const LAYOUT: &str = "2";

/// What replaces a pool document of layout 1 when its namespace migrates: a newer
/// `schema_version`, so a credpool that knows only layout 1 refuses the namespace instead
/// of writing a second, diverging state.
pub(super) const MOVED_MARKER: &str =
    r#"{"format":"credpool","schema_version":2,"moved_to":"the per-entry layout (layout 2)"}"#;

/// Reads the rows written after a stamp (one round trip).
/// ARGV: key prefix, the stamp last seen, the stamp of counter changes last seen (empty:
/// counter changes are not wanted), then pairs (pool member, version) of the pool
/// documents the reader holds. Returns, as strings: the stamp, the `layout` value (empty:
/// none), whether a layout-1 namespace exists (`1`/`0`), then per row: the member, its
/// document (empty: deleted), its version, the number of hash fields, and the fields
/// (writer, value). A pool whose document the reader holds at that version comes as a
/// cursor row (`c␟{pool}`, no document). Rows of a pool come with its entries' rows. A
/// stamp below the one last seen (Redis lost its data) reads every row.
pub(super) const PULL_SCRIPT: &str = r"
local p, seen = ARGV[1], tonumber(ARGV[2])
local counted = tonumber(ARGV[3])
local known = {}
for i = 4, #ARGV - 1, 2 do known[ARGV[i]] = ARGV[i + 1] end
local stamp = tonumber(redis.call('GET', p .. 'stamp') or '0')
local out = {tostring(stamp), redis.call('GET', p .. 'layout') or '',
  tostring(redis.call('EXISTS', p .. 'generations'))}
if stamp == seen and (counted == nil or stamp == counted) then return out end
if stamp < seen then seen = 0; counted = 0 end
local wanted, order, pools = {}, {}, {}
local function want(m)
  if string.sub(m, 1, 2) == 'c\31' then m = 'p\31' .. string.sub(m, 3) end
  if wanted[m] then return end
  wanted[m] = true
  order[#order + 1] = m
  if string.sub(m, 1, 2) == 'e\31' then
    pools[string.match(m, '^e\31([^\31]*)\31')] = true
  end
end
for _, m in ipairs(redis.call('ZRANGEBYSCORE', p .. 'changes', '(' .. seen, '+inf')) do want(m) end
if counted ~= nil then
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', p .. 'counted', '(' .. counted, '+inf')) do want(m) end
end
for pool in pairs(pools) do want('p\31' .. pool) end
local function row(m)
  local extra
  local version = redis.call('HGET', p .. 'versions', m) or '0'
  local doc = ''
  if string.sub(m, 1, 2) == 'p\31' then
    local cursor = redis.call('GET', p .. 'cursor:' .. string.sub(m, 3))
    extra = cursor and {'latest', cursor} or {}
    if known[m] == version then m = 'c\31' .. string.sub(m, 3) else
      doc = redis.call('GET', p .. 'doc:' .. m) or '' end
  else
    extra = redis.call('HGETALL', p .. 'counts:' .. string.sub(m, 3))
    doc = redis.call('GET', p .. 'doc:' .. m) or ''
  end
  out[#out + 1] = m
  out[#out + 1] = doc
  out[#out + 1] = version
  out[#out + 1] = tostring(#extra / 2)
  for _, v in ipairs(extra) do out[#out + 1] = v end
end
for _, m in ipairs(order) do row(m) end
return out
";

/// Writes rows (one round trip, atomic). ARGV: mode (`write`, or `migrate`: only while
/// the namespace has no `layout`, and only while the layout-1 generations named are
/// unchanged, which it then retires with [`MOVED_MARKER`]), key prefix, writer, refresh
/// lock key and holder token (empty: none; else written only while the lock holds the
/// token, and the lock is released), `force` (`1`: skip the version checks; the negative
/// control only), then counted lists: documents (member, expected version, JSON),
/// counters (member, writer, value), cursors (pool, JSON), deleted rows (member), layout-1 pools
/// (pool, generation), and the marker.
/// Returns the new stamp (written), 0 (a version moved: merge and retry), -1 (lock not
/// held), -2 (`migrate`: already migrated), -3 (`write`: the namespace is still layout 1).
pub(super) const WRITE_SCRIPT: &str = r"
local mode, p, writer, lock, token, force = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if mode == 'migrate' then
  if redis.call('EXISTS', p .. 'layout') == 1 then return -2 end
elseif redis.call('EXISTS', p .. 'layout') == 0 and redis.call('EXISTS', p .. 'generations') == 1 then
  return -3
end
if token ~= '' and redis.call('GET', lock) ~= token then return -1 end
local i = 7
local function list(width)
  local n = tonumber(ARGV[i])
  local at = i + 1
  i = at + n * width
  return at, n
end
local docs, nd = list(3)
local counts, nc = list(3)
local cursors, nk = list(2)
local gone, ng = list(1)
local old, no = list(2)
local marker = ARGV[i]
if force ~= '1' then
  for k = 0, nd - 1 do
    local m = ARGV[docs + 3 * k]
    if (redis.call('HGET', p .. 'versions', m) or '0') ~= ARGV[docs + 3 * k + 1] then return 0 end
  end
end
for k = 0, no - 1 do
  local pool = ARGV[old + 2 * k]
  if (redis.call('HGET', p .. 'generations', pool) or '0') ~= ARGV[old + 2 * k + 1] then return 0 end
end
local s = redis.call('INCR', p .. 'stamp')
redis.call('SET', p .. 'layout', '2')
for k = 0, nd - 1 do
  local m = ARGV[docs + 3 * k]
  redis.call('SET', p .. 'doc:' .. m, ARGV[docs + 3 * k + 2])
  redis.call('HINCRBY', p .. 'versions', m, 1)
  redis.call('ZADD', p .. 'changes', s, m)
end
for k = 0, nc - 1 do
  local m, w, v = ARGV[counts + 3 * k], ARGV[counts + 3 * k + 1], tonumber(ARGV[counts + 3 * k + 2])
  local key = p .. 'counts:' .. string.sub(m, 3)
  if v > tonumber(redis.call('HGET', key, w) or '0') then
    redis.call('HSET', key, w, v)
  end
  redis.call('ZADD', p .. 'counted', s, m)
end
for k = 0, nk - 1 do
  local pool, text = ARGV[cursors + 2 * k], ARGV[cursors + 2 * k + 1]
  local key = p .. 'cursor:' .. pool
  local new, old = cjson.decode(text), redis.call('GET', key)
  local later = not old
  if old then
    old = cjson.decode(old)
    if new.at ~= old.at then later = new.at > old.at
    elseif new.priority ~= old.priority then later = new.priority > old.priority
    else later = new.entry_id > old.entry_id end
  end
  if later then
    redis.call('SET', key, text)
    redis.call('ZADD', p .. 'changes', s, 'c\31' .. pool)
  end
end
for k = 0, ng - 1 do
  local m = ARGV[gone + k]
  redis.call('DEL', p .. 'doc:' .. m, p .. 'counts:' .. string.sub(m, 3))
  redis.call('HDEL', p .. 'versions', m)
  redis.call('ZADD', p .. 'changes', s, m)
end
for k = 0, no - 1 do
  local pool = ARGV[old + 2 * k]
  redis.call('SET', p .. 'pool:' .. pool, marker)
  redis.call('HINCRBY', p .. 'generations', pool, 1)
end
if token ~= '' then redis.call('DEL', lock) end
return s
";

/// The member of a pool's own row.
pub(super) fn pool_member(pool: &PoolKey) -> String {
    format!("p\u{1f}{}", pool.as_str())
}

/// The member of an entry's row.
pub(super) fn entry_member(pool: &PoolKey, id: &EntryId) -> String {
    format!("e\u{1f}{}\u{1f}{}", pool.as_str(), id.as_str())
}

/// One row as [`PULL_SCRIPT`] read it.
#[derive(Debug)]
pub(super) struct RowRead {
    pub member: String,
    /// The document (`None`: the row was deleted).
    pub doc: Option<String>,
    pub version: u64,
    /// The counters (entry) or cursors (pool): writer → value.
    pub fields: Vec<(String, String)>,
}

/// What one [`PULL_SCRIPT`] call read.
#[derive(Debug)]
pub(super) struct Pulled {
    pub stamp: u64,
    /// The namespace's `layout` (empty: none yet).
    pub layout: String,
    /// A layout-1 namespace exists (its `generations` hash).
    pub old_layout: bool,
    pub rows: Vec<RowRead>,
    /// Other writers' counter changes were read too.
    pub counted: bool,
}

fn damaged(what: &str) -> Error {
    Error::new(
        ErrorCode::InvalidState,
        format!("the Redis store is damaged: {what}; it was left untouched"),
    )
}

/// Parses [`PULL_SCRIPT`]'s reply.
pub(super) fn parse_pull(reply: Vec<String>) -> Result<Pulled> {
    let mut items = reply.into_iter();
    let mut next = |what: &str| items.next().ok_or_else(|| damaged(what));
    let number = |text: String, what: &str| text.parse::<u64>().map_err(|_| damaged(what));
    let stamp = number(next("no stamp")?, "the stamp is not a number")?;
    let layout = next("no layout")?;
    let old_layout = next("no layout-1 flag")? == "1";
    let mut rows = Vec::new();
    while let Ok(member) = next("") {
        let doc = next("a row without a document")?;
        let version = number(
            next("a row without a version")?,
            "a version is not a number",
        )?;
        let count = number(
            next("a row without fields")?,
            "a field count is not a number",
        )?;
        let mut fields = Vec::new();
        for _ in 0..count {
            fields.push((next("a missing field")?, next("a missing field value")?));
        }
        rows.push(RowRead {
            member,
            doc: (!doc.is_empty()).then_some(doc),
            version,
            fields,
        });
    }
    Ok(Pulled {
        stamp,
        layout,
        old_layout,
        rows,
        counted: false,
    })
}

/// A row's document as this reader last read or wrote it, without what lives apart
/// (a pool's cursor and entries, an entry's counters).
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Doc {
    Pool(Box<PoolDoc>),
    Entry(Box<EntryDoc>),
}

impl Doc {
    /// Parses the document of the row `member`.
    pub(super) fn parse(member: &str, text: &str) -> Result<Self> {
        let bad = |_| damaged("a row is not a credpool document");
        if member.starts_with("p\u{1f}") {
            serde_json::from_str(text)
                .map(|doc| Self::Pool(Box::new(doc)))
                .map_err(bad)
        } else {
            serde_json::from_str(text)
                .map(|doc| Self::Entry(Box::new(doc)))
                .map_err(bad)
        }
    }

    /// The JSON stored for it.
    pub(super) fn text(&self) -> Result<String> {
        let text = match self {
            Self::Pool(doc) => serde_json::to_string(doc),
            Self::Entry(doc) => serde_json::to_string(doc),
        };
        text.map_err(|e| Error::new(ErrorCode::Internal, format!("cannot serialise state: {e}")))
    }
}

/// The state fragment of the rows read with a document: each pool's own fields with the
/// latest cursor, and its entries with every writer's counters. Cursor rows (merged on
/// their own) and deleted rows (the pool's tombstones say so) are left out; `None` when
/// nothing is left. An entry whose pool came as a cursor row takes the pool's document
/// from `held` (the document this reader holds, current at the version read). A pool
/// row's fields are its cursor (`latest` → the cursor's JSON), when it has one.
pub(super) fn fragment(
    rows: &[RowRead],
    held: impl Fn(&str) -> Option<Value>,
) -> Result<Option<Value>> {
    let mut pools: Map<String, Value> = Map::new();
    let mut entries: Vec<(String, Value)> = Vec::new();
    for row in rows {
        let Some(doc) = &row.doc else { continue };
        let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(doc) else {
            return Err(damaged("a row is not a JSON object"));
        };
        if let Some(pool) = row.member.strip_prefix("p\u{1f}") {
            if let Some(cursor) = latest_cursor(&row.fields)? {
                let cursor = serde_json::to_value(cursor)
                    .map_err(|_| damaged("a cursor does not serialise"))?;
                object.insert("round_robin".to_owned(), cursor);
            }
            object.insert("entries".to_owned(), Value::Array(Vec::new()));
            pools.insert(pool.to_owned(), Value::Object(object));
        } else if let Some((pool, _)) = row
            .member
            .strip_prefix("e\u{1f}")
            .and_then(|rest| rest.split_once('\u{1f}'))
        {
            let mut counts = Map::new();
            for (writer, value) in &row.fields {
                let n = value
                    .parse::<u64>()
                    .map_err(|_| damaged("a counter is not a number"))?;
                counts.insert(writer.clone(), Value::from(n));
            }
            object.insert("request_counts".to_owned(), Value::Object(counts));
            entries.push((pool.to_owned(), Value::Object(object)));
        } else {
            return Err(damaged("a row with an unknown member"));
        }
    }
    if pools.is_empty() && entries.is_empty() {
        return Ok(None);
    }
    for (pool, entry) in entries {
        if !pools.contains_key(&pool)
            && let Some(Value::Object(mut object)) = held(&pool)
        {
            object.insert("entries".to_owned(), Value::Array(Vec::new()));
            object.remove("round_robin");
            pools.insert(pool.clone(), Value::Object(object));
        }
        let Some(Value::Array(list)) = pools
            .get_mut(&pool)
            .and_then(|p| p.as_object_mut())
            .and_then(|p| p.get_mut("entries"))
        else {
            return Err(damaged("an entry row names a pool that has no row"));
        };
        list.push(entry);
    }
    Ok(Some(crate::store::state_of(pools)))
}

/// The latest selection among the cursors read, in core's merge order (the later
/// selection wins, ties by position), so every reader picks the same one.
pub(super) fn latest_cursor(fields: &[(String, String)]) -> Result<Option<Cursor>> {
    let mut best: Option<Cursor> = None;
    for (_, text) in fields {
        let cursor: Cursor =
            serde_json::from_str(text).map_err(|_| damaged("a cursor is not a cursor"))?;
        let order = |c: &Cursor| (c.at, c.priority, c.entry_id.clone());
        if best.as_ref().is_none_or(|b| order(&cursor) > order(b)) {
            best = Some(cursor);
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latest_cursor_wins_and_ties_are_broken_alike() {
        let fields = vec![
            (
                "w1".to_owned(),
                r#"{"priority":0,"entry_id":"a","at":5}"#.to_owned(),
            ),
            (
                "w2".to_owned(),
                r#"{"priority":1,"entry_id":"b","at":9}"#.to_owned(),
            ),
            (
                "w3".to_owned(),
                r#"{"priority":2,"entry_id":"c","at":9}"#.to_owned(),
            ),
        ];
        let best = latest_cursor(&fields).unwrap().unwrap();
        assert_eq!(best.entry_id.as_str(), "c");
        let mut reversed = fields.clone();
        reversed.reverse();
        assert_eq!(latest_cursor(&reversed).unwrap().unwrap(), best);
    }

    #[test]
    fn a_pull_reply_parses_and_damage_is_refused() {
        let reply = [
            "7",
            "2",
            "0",
            "p\u{1f}x",
            "{}",
            "1",
            "0",
            "e\u{1f}x\u{1f}a",
            "{}",
            "3",
            "1",
            "w",
            "4",
        ];
        let pulled = parse_pull(reply.iter().map(|s| (*s).to_owned()).collect()).unwrap();
        assert_eq!(pulled.stamp, 7);
        assert_eq!(pulled.rows.len(), 2);
        assert_eq!(
            pulled.rows[1].fields,
            vec![("w".to_owned(), "4".to_owned())]
        );
        let truncated = ["7", "2", "0", "p\u{1f}x", "{}"];
        let e = parse_pull(truncated.iter().map(|s| (*s).to_owned()).collect()).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidState);
        let orphan = parse_pull(
            ["1", "2", "0", "e\u{1f}x\u{1f}a", "{}", "1", "0"]
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        )
        .unwrap();
        assert_eq!(
            fragment(&orphan.rows, |_| None).unwrap_err().code(),
            ErrorCode::InvalidState
        );
    }
}
