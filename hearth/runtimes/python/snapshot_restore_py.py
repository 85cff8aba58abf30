"""Runtime hooks for SnapStart functions, importable as ``snapshot_restore_py``.

Lambda's Python runtimes ship a module of this name; Hearth's runtime offers the same
two calls (also usable as decorators) so that function code written for Lambda runs
unchanged:

* ``register_before_snapshot(func, *args, **kwargs)``: run after Init, before the
  template of the function version is kept (in the reverse order of registration);
* ``register_after_restore(func, *args, **kwargs)``: run in each execution environment
  forked from that template, before its first invocation (in the order of registration).

Without SnapStart the hooks are registered and never run, as on Lambda. Standard
library only: this file runs inside the sandbox under Python 3.9-3.13.
"""

_before_snapshot = []
_after_restore = []


def register_before_snapshot(func, *args, **kwargs):
    """Register ``func(*args, **kwargs)`` to run before the snapshot; returns ``func``."""
    _before_snapshot.append((func, args, kwargs))
    return func


def register_after_restore(func, *args, **kwargs):
    """Register ``func(*args, **kwargs)`` to run after each restore; returns ``func``."""
    _after_restore.append((func, args, kwargs))
    return func


def get_before_snapshot():
    """The before-snapshot hooks in the order they run (reverse registration)."""
    return list(reversed(_before_snapshot))


def get_after_restore():
    """The after-restore hooks in the order they run (registration)."""
    return list(_after_restore)
