"""Hearth: a self-hosted, AWS Lambda-compatible serverless platform.

Layout (imports point one way, down this list):

- ``api/``       HTTP server, SigV4, AWS wire formats (Lambda REST, Logs JSON)
- ``invoke/``    the router: resolve a function, admit, acquire an environment
- ``worker/``    execution environments, their lifecycle and the Runtime API endpoint
- ``sandbox/``   isolation backends (namespaces + cgroups + seccomp)
- ``runtimes/``  interpreter discovery (server side) and bootstraps (sandbox side,
  standard library only, never importing the server)

Leaves used by the layers above and importing none of them: ``store/`` (state),
``code/`` (packages), ``observe/`` (logs), ``errors``, ``types``, ``config``.
``cli/`` talks to the server over HTTP only.
"""

__version__ = "0.1.0"
