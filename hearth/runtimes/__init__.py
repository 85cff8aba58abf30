"""Runtimes: what runs inside a sandbox, and how the server starts it.

Inside the sandbox (standard library only, nothing of the server):
``python/bootstrap.py`` (Python 3.9-3.13), ``node/bootstrap.js`` (Node.js 18/20/22) and
``launcher/launch.sh`` (bash: starts external extensions from ``/opt/extensions``, then
the runtime; for ``provided.*`` finds ``/var/task/bootstrap`` or ``/opt/bootstrap``).

Server side: :mod:`hearth.runtimes.registry` discovers what the host offers and gives
each runtime's launch spec (argv, read-only mounts, environment); :mod:`.node` and
:mod:`.provided` describe the Node and custom runtimes.
"""
