"""The built-in OAuth refresher against a mock token endpoint on 127.0.0.1 (mock_oauth.py):
core builds each request and reads each answer, the helpers only carry out the HTTP. No
refresh token is ever sent twice, also with processes refreshing one login concurrently."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

import credpool
from credpool import CredentialPool, Registry, Store

from mock_oauth import MockOAuth


@pytest.fixture
def oauth() -> Iterator[MockOAuth]:
    mock = MockOAuth()
    mock.seed("rt-0")
    yield mock
    mock.close()
    assert mock.replays == [], f"refresh tokens replayed: {mock.replays}"


def login(pool: str, url: str, **extra: Any) -> Dict[str, Any]:
    """An OAuth entry whose token expired, whose login recorded the mock's endpoint."""
    return {
        "id": "o",
        "auth_type": "oauth",
        "access_token": "at-0",
        "refresh_token": "rt-0",
        "expires_at": 1000,
        "extra": {"token_url": url, **extra},
    }


def test_the_built_in_providers_are_core_s() -> None:
    assert credpool.oauth_providers() == [
        "anthropic", "openai-codex", "xai-oauth", "nous", "qwen-oauth", "minimax-oauth",
    ]  # fmt: skip


def test_an_expired_anthropic_login_refreshes_with_no_host_code(oauth: MockOAuth) -> None:
    r = Registry(writer="w1", seed=1)
    r.add_entry("anthropic", login("anthropic", oauth.url), now=0)
    pool = CredentialPool(r, "anthropic", clock=lambda: 10_000)
    with pool.lease() as lease:
        assert lease.access_token == "at-1" and lease.reason == "refreshed"
    [sent] = oauth.requests
    assert sent["fields"] == {
        "grant_type": "refresh_token",
        "refresh_token": "rt-0",
        "client_id": "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
    }
    assert sent["headers"]["content-type"] == "application/json"
    cred = r.credential("anthropic", "o", now=10_001)
    assert (cred["refresh_token"], cred["generation"], cred["expires_at"]) == ("rt-1", 1, 10_000 + 3_600_000)
    assert "rt-" not in repr(lease) + str(lease)


def test_nous_sends_its_refresh_token_in_a_header_and_a_form(oauth: MockOAuth) -> None:
    r = Registry(writer="w1", seed=1)
    r.add_entry("nous", login("nous", oauth.url), now=0)
    with CredentialPool(r, "nous", clock=lambda: 10_000).lease() as lease:
        assert lease.access_token == "at-1"
    [sent] = oauth.requests
    assert sent["fields"] == {"grant_type": "refresh_token", "client_id": "hermes-cli"}
    assert sent["headers"]["x-nous-refresh-token"] == "rt-0"


def test_a_revoked_login_is_marked_dead_and_the_call_goes_on_with_the_next_key(oauth: MockOAuth) -> None:
    oauth.revoked.add("rt-0")
    r = Registry(writer="w1", seed=1)
    r.add_entry("openai-codex", login("openai-codex", oauth.url), now=0)
    r.add_entry("openai-codex", {"id": "k", "access_token": "sk-test-k"}, now=0)
    with CredentialPool(r, "openai-codex", clock=lambda: 10_000).lease() as lease:
        assert lease.entry_id == "k" and lease.reason == "refresh_failed"
    [entry] = [e for e in r.status("openai-codex", now=10_001)["pools"][0]["entries"] if e["id"] == "o"]
    assert entry["health"] == "dead"
    state = r.export_state()["state"]["pools"]["openai-codex"]["entries"][0]
    assert state["last_error"]["reason"] == "invalid_grant" and "rt-0" not in json.dumps(state["last_error"])


def test_an_unreachable_token_endpoint_benches_the_login_without_consuming_it(oauth: MockOAuth) -> None:
    r = Registry(writer="w1", seed=1)
    r.add_entry("qwen-oauth", login("qwen-oauth", "http://127.0.0.1:9/oauth/token"), now=0)
    r.add_entry("qwen-oauth", {"id": "k", "access_token": "sk-test-k"}, now=0)
    with CredentialPool(r, "qwen-oauth", clock=lambda: 10_000).lease() as lease:
        assert lease.entry_id == "k"
    entry = r.export_state()["state"]["pools"]["qwen-oauth"]["entries"][0]
    assert entry["status"] == "exhausted" and entry["last_error"]["reason"] == "network_error"
    assert entry["refresh_token"] == "rt-0" and entry["token_generation"] == 0


WORKER = textwrap.dedent(
    """
    import sys
    import credpool

    path, calls = sys.argv[1], int(sys.argv[2])
    store = credpool.Store.open(path)
    pool = store.pool("openai-codex")
    for _ in range(calls):
        with pool.lease() as lease:
            assert lease.access_token.startswith("at-"), lease.access_token
    print("ok")
    """
)


def test_processes_refreshing_one_login_never_replay_its_refresh_token(tmp_path: Path) -> None:
    # Tokens expire within the refresh skew, so every call of every process refreshes or
    # adopts the token another process just rotated.
    mock = MockOAuth(expires_in=60)
    mock.seed("rt-0")
    try:
        path = tmp_path / "pools.sqlite"
        store = Store.open(path, writer="setup")
        store.add_entry("openai-codex", login("openai-codex", mock.url), now=0)
        workers = [
            subprocess.Popen([sys.executable, "-c", WORKER, str(path), "6"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(4)
        ]
        for worker in workers:
            out, err = worker.communicate(timeout=120)
            assert worker.returncode == 0 and out.decode().strip() == "ok", err.decode()[-2000:]
        assert mock.replays == []
        cred = Store.open(path, writer="reader").credential("openai-codex", "o")
        assert mock.issued >= 1 and cred["generation"] == mock.issued
        assert cred["refresh_token"] == f"rt-{mock.issued}"
    finally:
        mock.close()


def test_a_hermes_imported_login_keeps_working_past_its_expiry(oauth: MockOAuth) -> None:
    """A Codex login imported from Hermes's auth.json: when the provider answers 401 (the
    access token expired), the built-in refresher rotates it with no host code. (The
    imported entry is pointed at the mock endpoint; the default is OpenAI's.)"""
    auth = json.loads((Path(__file__).resolve().parents[2] / "tests/hermes/openai-codex.json").read_text())
    now = 1_800_000_000_000  # after every stamp in the file
    state = credpool.import_hermes(auth, now=now)
    entries = state["pools"]["openai-codex"]["entries"]
    [login_row] = [e for e in entries if e["id"] == "3b4c5d"]
    login_row.setdefault("extra", {})["token_url"] = oauth.url
    oauth.seed(login_row["refresh_token"])
    r = Registry(writer="w1", seed=1, state=state)
    pool = CredentialPool(r, "openai-codex", clock=lambda: now)
    with pool.lease() as lease:
        assert lease.entry_id == "3b4c5d"
        lease.report({"status": 401, "body": {"error": {"code": "token_expired"}}})
    with pool.lease(after=lease) as again:
        assert (again.entry_id, again.access_token, again.reason) == ("3b4c5d", "at-1", "refreshed")
    [sent] = oauth.requests
    assert sent["fields"]["client_id"] == "app_EMoamEEZ73f0CkXaXp7hrann"
