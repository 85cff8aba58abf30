"""Memory merging (KSM): off unless asked for; the server's part in starting ksmd."""

from __future__ import annotations

from pathlib import Path

from hearth.config import load_config
from hearth.sandbox.merging import ksm_stats, start_ksmd


def test_memory_merge_is_off_by_default() -> None:
    assert load_config({}).memory_merge is False
    assert load_config({"HEARTH_MEMORY_MERGE": ""}).memory_merge is False
    assert load_config({"HEARTH_MEMORY_MERGE": "0"}).memory_merge is False


def test_memory_merge_from_environment_and_flag() -> None:
    assert load_config({"HEARTH_MEMORY_MERGE": "1"}).memory_merge is True
    assert load_config({"HEARTH_MEMORY_MERGE": "on"}).memory_merge is True
    assert load_config({}, memory_merge=True).memory_merge is True
    assert load_config({"HEARTH_MEMORY_MERGE": "1"}, memory_merge=None).memory_merge is True


def test_cli_flag_reaches_the_config() -> None:
    from hearth.cli.main import build_parser

    args = build_parser().parse_args(["server", "--memory-merge"])
    assert args.memory_merge is True
    assert build_parser().parse_args(["server"]).memory_merge is False


def test_start_ksmd_turns_it_on_and_leaves_an_operators_choice(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.write_text("0\n")
    assert start_ksmd(str(tmp_path)) is None
    assert run.read_text() == "1"
    assert start_ksmd(str(tmp_path)) is None  # already running
    run.write_text("2\n")  # "unmerge everything": not overridden
    assert start_ksmd(str(tmp_path)) == "ksmd is set to run=2"
    assert run.read_text() == "2\n"
    missing = start_ksmd(str(tmp_path / "nothing"))
    assert missing is not None and "cannot start ksmd" in missing


def test_ksm_stats_reads_the_counters(tmp_path: Path) -> None:
    (tmp_path / "pages_sharing").write_text("12\n")
    (tmp_path / "advisor_mode").write_text("[none] scan-time\n")
    assert ksm_stats(str(tmp_path)) == {"pages_sharing": 12}
    assert ksm_stats(str(tmp_path / "nothing")) == {}
