"""Hearth: a self-hosted, AWS Lambda-compatible serverless platform.

Layout of the core (imports point one way, down this list):

- ``api/``       HTTP server, SigV4, AWS wire formats (Lambda REST, Logs JSON), the seams
  features plug into (``LambdaApi.add_route``, ``App.add_service``, ``App.add_front_door``)
- ``invoke/``    the router: resolve a function, admit (concurrency), hand to a worker
- ``worker/``    execution environments, their lifecycle, the Runtime and Extensions APIs
- ``sandbox/``   isolation backends (namespaces + cgroups + seccomp, zygote fork)
- ``runtimes/``  interpreter discovery (server side) and bootstraps (sandbox side,
  standard library only, never importing the server)

Features on top of the core, each wired in ``server.py`` through the seams and imported
by nothing in the core: ``versions/`` (versions and aliases), ``layers/`` (layers and the
merged ``/opt``), ``gateway/`` (function URLs, HTTP APIs, throttling, usage plans),
``queues/`` (SQS-compatible queues), ``events/`` (durable async invocation, destinations,
DLQs) and ``esm/`` (event source mappings).

Leaves used by the layers above and importing none of them: ``store/`` (state),
``code/`` (packages), ``observe/`` (logs), ``errors``, ``types``, ``config``.
``cli/`` talks to the server over HTTP only.
"""

__version__ = "0.1.0"
