"""Panic safety across FFI, for a Python build made WITH the `test-panic` feature
(scripts/test-panic.sh puts it first on PYTHONPATH): `handle({"type": "__test_panic"})`
panics inside the registry lock, where core runs."""

import credpool
import pytest

PANIC = {"type": "__test_panic"}


def test_feature_build_is_loaded():
    with pytest.raises(credpool.CredpoolError):
        credpool.Registry(writer="w", seed=1).handle(PANIC, now=0)


def test_panic_becomes_internal_error():
    reg = credpool.Registry(writer="w", seed=1)
    with pytest.raises(credpool.CredpoolError) as info:
        reg.handle(PANIC, now=0)
    assert info.value.code == "internal"
    assert type(info.value) is credpool.CredpoolError


def test_panic_is_an_exception_not_a_pyo3_panic():
    reg = credpool.Registry(writer="w", seed=1)
    try:
        reg.handle(PANIC, now=0)
    except Exception as e:  # PanicException would derive from BaseException only
        assert e.code == "internal"
    else:
        pytest.fail("no error")


def test_same_registry_is_poisoned_but_answers_with_typed_errors():
    # The panic unwinds while the registry's Mutex is held: the lock is poisoned, and every
    # later call on that registry raises CredpoolError(code="internal"), never crashes.
    reg = credpool.Registry(writer="w", seed=1)
    reg.add_entry("p", {"id": "a", "access_token": "sk-test"}, now=0)
    with pytest.raises(credpool.CredpoolError):
        reg.handle(PANIC, now=0)
    for _ in range(3):
        with pytest.raises(credpool.CredpoolError) as info:
            reg.acquire("p", now=1)
        assert info.value.code == "internal"
        assert "poisoned" in str(info.value)
    assert "poisoned" in repr(reg)


def test_process_stays_usable_new_registry_works():
    for _ in range(100):
        with pytest.raises(credpool.CredpoolError):
            credpool.Registry(writer="w", seed=1).handle(PANIC, now=0)
    reg = credpool.Registry(writer="w2", seed=2)
    reg.add_entry("p", {"id": "a", "access_token": "sk-test"}, now=0)
    assert reg.acquire("p", now=1)["type"] == "use"
