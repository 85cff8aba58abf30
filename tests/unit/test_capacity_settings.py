"""The disk capacity's default and the zygote settings, from environment and flags."""

from __future__ import annotations

from typing import Any

from hearth.config import DISK_RESERVE_MB, default_disk_capacity_mb, load_config


def test_the_default_is_the_free_space_minus_a_reserve(tmp_path: Any, monkeypatch: Any) -> None:
    class St:
        f_frsize = 4096
        f_bavail = (100 * 1024 << 20) // 4096  # 100 GiB free

    monkeypatch.setattr("os.statvfs", lambda path: St)
    assert default_disk_capacity_mb(str(tmp_path)) == 100 * 1024 - 10 * 1024  # a tenth
    St.f_bavail = (20 * 1024 << 20) // 4096  # 20 GiB: the fixed reserve is larger
    assert default_disk_capacity_mb(str(tmp_path)) == 20 * 1024 - DISK_RESERVE_MB
    St.f_bavail = (1024 << 20) // 4096
    assert default_disk_capacity_mb(str(tmp_path)) == 0
    assert load_config({"HEARTH_DISK_CAPACITY_MB": "2048"}).disk_capacity_mb == 2048
    assert load_config({}, disk_capacity_mb=4096).disk_capacity_mb == 4096
    assert load_config({}).disk_capacity_mb == 0  # measured by the server at start


def test_zygote_settings_load_from_environment_and_flags() -> None:
    cfg = load_config({"HEARTH_ZYGOTE_IDLE_TIMEOUT": "30", "HEARTH_MAX_ZYGOTES": "4"})
    assert (cfg.zygote_idle_timeout, cfg.max_zygotes) == (30.0, 4)
    cfg = load_config({"HEARTH_MAX_ZYGOTES": "4"}, max_zygotes=8, zygote_idle_timeout=1.5)
    assert (cfg.zygote_idle_timeout, cfg.max_zygotes) == (1.5, 8)
    assert (load_config({}).zygote_idle_timeout, load_config({}).max_zygotes) == (600.0, 32)
