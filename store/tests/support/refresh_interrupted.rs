//! A process that dies between sending a refresh token and recording the answer, for
//! every backend: each `Store` stands for one process sharing one store.

use credpool_core::{Decision, EntryId, Millis, PoolKey, REFRESH_INTERRUPTED};
use credpool_store::{RefreshStart, Store};
use serde_json::json;

/// The dying process recorded the send before its token left; a later process's refresh
/// of the same generation never sends it again (its refresh is not even called) and the
/// entry asks for a new login (dead, reason `refresh_interrupted`).
pub(crate) fn an_interrupted_refresh_is_never_sent_again(open: &dyn Fn(&str) -> Store) {
    let mut dying = open("dying");
    dying
        .handle_value(
            Millis(0),
            json!({"type": "add_entry", "pool": "anthropic", "entry": {"id": "o", "auth_type": "oauth",
                   "access_token": "at-0", "refresh_token": "rt-0", "expires_at": 1000}}),
        )
        .unwrap();
    let (pool, id) = (
        PoolKey::parse("anthropic").unwrap(),
        EntryId::parse("o").unwrap(),
    );
    let RefreshStart::Needed(ticket) = dying
        .begin_refresh(Millis(2_000), &pool, &id, 0, None)
        .unwrap()
    else {
        panic!("a refresh is needed");
    };
    let RefreshStart::Needed(ticket) = dying.confirm_refresh(Millis(2_001), ticket).unwrap() else {
        panic!("the lock is still held");
    };
    assert_eq!(
        ticket.credential().refresh_token.as_ref().unwrap().expose(),
        "rt-0"
    );
    // It sends rt-0 and dies before `finish_refresh` (its locks go with it).
    drop(ticket);
    drop(dying);

    let mut next = open("next");
    let decision = next
        .refresh(
            || Millis(3_000),
            &pool,
            &id,
            0,
            None,
            |_| panic!("the interrupted refresh token was sent again"),
        )
        .unwrap();
    assert!(matches!(decision, Decision::Fail { .. }), "{decision:?}");
    let state = serde_json::to_value(next.registry().export_state()).unwrap();
    let entry = &state["pools"]["anthropic"]["entries"][0];
    assert_eq!(entry["status"], "dead", "{entry}");
    assert_eq!(
        entry["last_error"]["reason"], REFRESH_INTERRUPTED,
        "{entry}"
    );
}
