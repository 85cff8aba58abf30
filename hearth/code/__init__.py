"""Deployment packages: validation of untrusted zips, a content-addressed store and a
read-only cache of unpacked trees.

``CodeStore.put`` accepts zip bytes from a request, ``CodeStore.unpacked`` gives the
directory a sandbox mounts as ``/var/task``. See :mod:`hearth.code._validate` for what
an archive may contain and which errors (with AWS Lambda's own messages where it has
them) a bad one produces.
"""

from hearth.code._limits import CodeLimits
from hearth.code._store import CodeRef, CodeStore
from hearth.code._validate import UNZIP_FAILED

__all__ = ["UNZIP_FAILED", "CodeLimits", "CodeRef", "CodeStore"]
