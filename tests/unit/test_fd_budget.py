"""The file-descriptor budget: how many sandboxes a server's RLIMIT_NOFILE lets it hold."""

from __future__ import annotations

import resource

import pytest

from hearth.worker import fd_budget
from hearth.worker.fd_budget import (
    FDS_PER_SANDBOX,
    RESERVE,
    environment_limit,
    raise_nofile,
    sandbox_limit,
)


def test_sandbox_limit_leaves_the_reserve() -> None:
    assert sandbox_limit(8_000) == (8_000 - RESERVE) // FDS_PER_SANDBOX
    # a tenth when that is more: room for the statistics files of many busy ones
    assert sandbox_limit(20_000) == 18_000 // FDS_PER_SANDBOX
    assert sandbox_limit(1_048_576) == (1_048_576 - 104_857) // FDS_PER_SANDBOX


def test_a_small_limit_keeps_half_for_the_server() -> None:
    assert sandbox_limit(400) == 200 // FDS_PER_SANDBOX
    assert sandbox_limit(1) == 1  # never zero: the server still serves one


def test_parked_environments_cost_one_descriptor_each_in_the_server() -> None:
    # 18,000 descriptors here: one environment resident, the rest at 1 each (the vaults'
    # sockets aside); 16 vaults of 19,968 descriptors hold 4 of each.
    assert environment_limit(20_000) == 18_000 - 16 - 5 + 1
    assert environment_limit(400, vault_processes=1) == (400 - 32) // 4 + 1
    assert environment_limit(400) > sandbox_limit(400)


def test_raise_nofile_lifts_the_soft_limit_to_the_hard_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(fd_budget.resource, "getrlimit", lambda _: (1024, 524_288))
    monkeypatch.setattr(fd_budget.resource, "setrlimit", lambda _, lim: calls.append(lim))
    assert raise_nofile() == 524_288
    assert calls == [(524_288, 524_288)]


def test_raise_nofile_with_no_hard_limit_uses_the_kernels_ceiling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, int]] = []
    inf = resource.RLIM_INFINITY
    monkeypatch.setattr(fd_budget.resource, "getrlimit", lambda _: (1024, inf))
    monkeypatch.setattr(fd_budget.resource, "setrlimit", lambda _, lim: calls.append(lim))
    monkeypatch.setattr(fd_budget, "_nr_open", lambda: 1_048_576)
    assert raise_nofile() == 1_048_576
    assert calls == [(1_048_576, inf)]


def test_raise_nofile_keeps_the_soft_limit_when_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_: int, __: tuple[int, int]) -> None:
        raise ValueError("not allowed to raise maximum limit")

    monkeypatch.setattr(fd_budget.resource, "getrlimit", lambda _: (1024, 4096))
    monkeypatch.setattr(fd_budget.resource, "setrlimit", refuse)
    assert raise_nofile() == 1024


def test_raise_nofile_leaves_a_soft_limit_already_at_the_hard_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(fd_budget.resource, "getrlimit", lambda _: (20_000, 20_000))
    monkeypatch.setattr(fd_budget.resource, "setrlimit", lambda _, lim: calls.append(lim))
    assert raise_nofile() == 20_000
    assert calls == []
