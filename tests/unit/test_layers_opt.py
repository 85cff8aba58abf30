"""The merged /opt tree: order, overrides, links, content addressing (fast tier)."""

from __future__ import annotations

import os
from pathlib import Path

from hearth.layers import OptTrees, parse_layer_arn, tree_size


def _tree(root: Path, files: dict[str, str], links: dict[str, str] | None = None) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    for rel, target in (links or {}).items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, p)
    return root


def test_later_layers_override_earlier(tmp_path: Path) -> None:
    layers = {
        "a": _tree(tmp_path / "a", {"python/m.py": "a", "bin/tool": "a", "only_a/x": "a"}),
        "b": _tree(
            tmp_path / "b",
            {"python/m.py": "b", "bin/tool/inner": "dir over file", "only_b": "file"},
            {"python/link.py": "m.py"},
        ),
    }
    trees = OptTrees(tmp_path / "opt", lambda sha: str(layers[sha]))
    merged = Path(trees.tree(["a", "b"]))
    assert (merged / "python/m.py").read_text() == "b"
    assert (merged / "bin/tool/inner").read_text() == "dir over file"
    assert (merged / "only_a/x").read_text() == "a"
    assert os.readlink(merged / "python/link.py") == "m.py"
    # Hard links: no copy of the layer's bytes.
    assert (merged / "only_a/x").stat().st_ino == (layers["a"] / "only_a/x").stat().st_ino
    # Other order, other tree; same order, same tree (content-addressed, built once).
    other = Path(trees.tree(["b", "a"]))
    assert other != merged and (other / "python/m.py").read_text() == "a"
    assert (other / "bin/tool").read_text() == "a"  # a file replaced the directory
    assert trees.tree(["a", "b"]) == str(merged)
    assert not list((tmp_path / "opt").glob(".tmp-*"))


def test_tree_size_counts_files_and_links(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t", {"a": "12345", "d/b": "678"}, {"l": "a"})
    assert tree_size(str(root)) == 5 + 3 + len("a")


def test_parse_layer_arn() -> None:
    parsed = parse_layer_arn("arn:aws:lambda:us-east-1:123456789012:layer:my-layer:3")
    assert parsed is not None
    assert (parsed.region, parsed.account_id, parsed.name, parsed.version) == (
        "us-east-1",
        "123456789012",
        "my-layer",
        3,
    )
    unversioned = parse_layer_arn("arn:aws:lambda:us-east-1:123456789012:layer:my-layer")
    assert unversioned is not None and unversioned.version is None
    assert parse_layer_arn("arn:aws:lambda:us-east-1:123:layer:x:1") is None
    assert parse_layer_arn("my-layer") is None
