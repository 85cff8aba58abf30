"""``hearth server``: api + router + one local worker in one asyncio process on SQLite.

Start order: data dir → store → code store → logs → sandbox backend → worker → router →
API listener. Shutdown runs it backwards and leaves no sandbox process, mount or cgroup
behind (the backend sweeps leftovers of a crashed earlier run at start).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import secrets
import signal
from pathlib import Path

from hearth.api.app import App, LogsService, too_large
from hearth.api.concurrency import ConcurrencyApi
from hearth.api.function_settings import FunctionSettingsApi
from hearth.api.functions import AccountDefaults, FunctionsApi
from hearth.api.http import HttpServer
from hearth.api.invoke_variants import InvokeVariants
from hearth.api.keys import DEFAULT_TEST_KEY, load_access_keys
from hearth.api.lambda_api import LambdaApi
from hearth.api.session_keys import LIFETIME as SESSION_LIFETIME
from hearth.api.session_keys import SessionKeys
from hearth.api.sigv4 import SigV4Verifier
from hearth.api.tags import TagsApi
from hearth.api.types import Response
from hearth.code import CodeStore
from hearth.config import Config, default_disk_capacity_mb, is_loopback
from hearth.events.wiring import QueueFeatures
from hearth.events.wiring import install as install_queue_features
from hearth.gateway import Gateway
from hearth.invoke.admission import AccountLimits, Admission
from hearth.invoke.provisioned import Provisioned
from hearth.invoke.router import Router
from hearth.layers import install as install_layers
from hearth.observe.logs_api import handle_logs
from hearth.observe.logstore import LogStore
from hearth.runtimes.registry import BOOTSTRAP_DIR, PythonRuntime, RuntimeRegistry
from hearth.sandbox import make_backend
from hearth.sandbox.base import BackendConfig
from hearth.sandbox.merging import start_ksmd
from hearth.sandbox.process import ProcessBackend
from hearth.sandbox.zygote import python_zygote
from hearth.sandbox.zygotes import Zygotes
from hearth.store.sqlite import SqliteStore
from hearth.types import FunctionConfig
from hearth.versions import Versions
from hearth.worker.environment import EnvLimits
from hearth.worker.fd_budget import raise_nofile, sandbox_limit
from hearth.worker.fd_vault import FdVault
from hearth.worker.worker import Worker, WorkerConfig

log = logging.getLogger("hearth")

MAX_REQUEST_BODY = 72 * 1024 * 1024  # a 50 MB zip, base64-encoded in JSON, fits


class _Invalidator:
    """Tells the router and the worker that a function's snapshot changed."""

    def __init__(self) -> None:
        self.router: Router | None = None
        self.worker: Worker | None = None
        self.concurrency: ConcurrencyApi | None = None
        self.versions: Versions | None = None
        self.gateway: Gateway | None = None
        self.queue_features: QueueFeatures | None = None

    def code_busy(self, sha256_hex: str) -> bool:
        return self.worker is not None and self.worker.uses_code(sha256_hex)

    async def function_changed(
        self, cfg: FunctionConfig | None, account_id: str, name: str
    ) -> None:
        if self.router is not None:
            self.router.invalidate(account_id, name)
        if self.worker is not None:
            await self.worker.retire(
                account_id, name, cfg.revision_id if cfg else None, cfg.version if cfg else None
            )
            if cfg is not None:
                self.worker.prepare(cfg)  # its runtime's zygote and stems, ahead
        if cfg is None and self.concurrency is not None:
            await self.concurrency.function_deleted(account_id, name)
        if cfg is None and self.versions is not None:
            await self.versions.function_deleted(account_id, name)
        if cfg is None and self.gateway is not None:
            await self.gateway.function_deleted(account_id, name)
        if cfg is None and self.queue_features is not None:
            await self.queue_features.function_deleted(account_id, name)


def _url_secret(data_dir: Path) -> bytes:
    path = data_dir / "url-secret"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        secret = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secret)
        return secret


def _zygotes(runtimes: RuntimeRegistry, cfg: Config) -> Zygotes:
    """A zygote per account and Python runtime: its cold starts fork (see
    hearth.sandbox.zygote), let go after ``cfg.zygote_idle_timeout`` without a fork or
    past ``cfg.max_zygotes``; ``cfg.memory_merge``: opted into KSM (hearth.sandbox.merging)."""
    memory_merge = cfg.memory_merge
    zygotes = Zygotes(cfg.zygote_idle_timeout, cfg.max_zygotes)
    for name in runtimes.names:
        rt = runtimes.get(name)
        if isinstance(rt, PythonRuntime):
            launch = rt.launch()
            mounts = [(m.host_path, m.sandbox_path) for m in launch.mounts]
            bootstrap = os.path.join(BOOTSTRAP_DIR, "bootstrap.py")
            zygotes.register(
                launch.argv, python_zygote(rt.interpreter, mounts, bootstrap, memory_merge)
            )
    return zygotes


class Server:
    def __init__(self, config: Config, environ: dict[str, str] | None = None) -> None:
        self.config = config
        self._environ = dict(os.environ if environ is None else environ)
        self._stack = contextlib.AsyncExitStack()
        self.http: HttpServer | None = None

    def _cgroup_root(self) -> str:
        """HEARTH_CGROUP_ROOT: the cgroup subtree of this server's sandboxes (default
        ``hearth``). Servers that share a name see each other's sandboxes at start-up and
        leave those whose owner is alive; a name of its own keeps a server's tree apart."""
        name = self._environ.get("HEARTH_CGROUP_ROOT", "hearth")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name):
            raise SystemExit(f"HEARTH_CGROUP_ROOT must be a plain directory name, not {name!r}")
        return name

    async def start(self) -> None:
        cfg = self.config
        keys = load_access_keys(self._environ, cfg.keys_file)
        if not keys:
            if not is_loopback(cfg.host):
                raise SystemExit(
                    f"refusing to listen on {cfg.host}: no access keys are configured"
                    " (set HEARTH_ACCESS_KEYS or --keys-file), and the default test/test"
                    " key is only accepted on a loopback address"
                )
            keys = {DEFAULT_TEST_KEY.key_id: DEFAULT_TEST_KEY}
        data = Path(cfg.data_dir).resolve()
        data.mkdir(parents=True, exist_ok=True)
        os.chmod(data, 0o700)
        stack = self._stack

        store = SqliteStore(data / "hearth.db")
        await store.open()
        stack.push_async_callback(store.aclose)

        code = CodeStore(data / "code")
        for sha in code.shas():  # packages left unreferenced when the last run stopped
            if not await store.code_in_use(sha):
                code.remove(sha)
        logs = LogStore(data)
        stack.push_async_callback(logs.aclose)

        # Measured before the backend makes its first /tmp images: what is free at start.
        disk_capacity_mb = cfg.disk_capacity_mb or default_disk_capacity_mb(str(data))
        log.info("disk capacity for sandbox /tmp: %d MB", disk_capacity_mb)
        if disk_capacity_mb < 512:
            log.warning(
                "disk capacity for sandbox /tmp is %d MB: starts of functions with more"
                " EphemeralStorage are throttled (free disk, or set --disk-capacity-mb)",
                disk_capacity_mb,
            )
        backend = make_backend(
            "process",
            BackendConfig(
                state_dir=str(data / "sandbox"),
                cgroup_root_name=self._cgroup_root(),
                # ready pre-made sandboxes per runtime (hearth.sandbox.stems); 0: none
                extra={"stem_pool": self._environ.get("HEARTH_STEM_POOL", "4")},
            ),
        )
        stack.push_async_callback(backend.aclose)

        runtimes = RuntimeRegistry.discover(self._environ)
        log.info("runtimes: %s", ", ".join(runtimes.names) or "none")
        if isinstance(backend, ProcessBackend) and self._environ.get("HEARTH_ZYGOTE") != "0":
            backend.zygotes = _zygotes(runtimes, cfg)
            if cfg.memory_merge and (why := start_ksmd()) is not None:
                log.warning("memory merging asked for, but %s", why)

        def code_dir_of(fc: FunctionConfig) -> str:
            return code.unpacked(fc.code_sha256_hex)

        # Environments are recycled before their credentials expire (Lambda renews
        # AWS_SESSION_TOKEN by recycling environments); tests shorten it.
        max_age = float(self._environ.get("HEARTH_ENV_MAX_AGE") or SESSION_LIFETIME - 3600)
        # Parked environments' descriptors live in vault processes (hearth.worker.fd_vault);
        # HEARTH_FD_VAULT=0 keeps them all in the server; HEARTH_PARK_AT: see WorkerConfig.
        vault: FdVault | None = None
        if self._environ.get("HEARTH_FD_VAULT") != "0":
            vault = FdVault()
            stack.push_async_callback(vault.aclose)  # after the worker's (LIFO)
        worker = Worker(
            backend,
            runtimes,
            logs,
            code_dir_of,
            WorkerConfig(
                memory_capacity_mb=cfg.memory_capacity_mb,
                disk_capacity_mb=disk_capacity_mb,
                idle_timeout=cfg.idle_timeout,
                reap_interval=min(5.0, max(0.2, min(cfg.idle_timeout, max_age) / 2)),
                limits=EnvLimits(network="egress" if cfg.egress else "none"),
                snapstart_latest=self._environ.get("HEARTH_SNAPSTART_LATEST") == "1",
                max_age=max_age,
                max_sandboxes=sandbox_limit(raise_nofile()),
                park_at=float(self._environ.get("HEARTH_PARK_AT") or 0.5),
            ),
            vault=vault,
        )
        await worker.start()
        stack.push_async_callback(worker.aclose)

        admission = Admission(
            AccountLimits(cfg.account_concurrency, cfg.min_unreserved_concurrency)
        )
        router = Router(store, worker, admission)
        stack.push_async_callback(router.events.aclose)
        invalidator = _Invalidator()
        invalidator.router = router
        invalidator.worker = worker
        functions = FunctionsApi(
            store, code, runtimes, invalidator, _url_secret(data), AccountDefaults()
        )

        async def logs_handler(account_id: str, region: str, target: str, body: bytes) -> Response:
            return await handle_logs(logs, account_id, region, target, body)

        lambda_api = LambdaApi(functions, router)
        provisioned = Provisioned(store, worker, router.resolve, admission)
        await provisioned.open()
        stack.push_async_callback(provisioned.aclose)
        concurrency = ConcurrencyApi(store, functions, admission, provisioned, router.resolve)
        await concurrency.open()
        concurrency.install(lambda_api)
        TagsApi(functions).register(lambda_api.add_route)
        FunctionSettingsApi(functions).register(lambda_api.add_route)
        InvokeVariants(lambda_api).register(lambda_api.add_route)
        invalidator.concurrency = concurrency
        versions = Versions(store)
        await versions.open()
        versions.register(lambda_api.add_route)
        functions.qualifiers = versions
        router.alias_resolver = versions.pick
        router.alias_cached = versions.pick_cached
        invalidator.versions = versions
        versions.versions.on_publish.append(worker.prepare_snapshot)
        verifier = SigV4Verifier(keys)
        # Functions get temporary credentials of their account (Lambda's execution-role
        # session variables), which this verifier accepts; never an operator's key.
        sessions = SessionKeys(_url_secret(data))
        verifier.sessions = sessions
        worker.credentials_of = lambda fc: sessions.issue(fc.account_id)
        app = App(verifier, lambda_api)
        gateway = Gateway(store, router, verifier)
        await gateway.open()
        gateway.install(lambda_api.add_route, app)
        invalidator.gateway = gateway
        versions.aliases.on_delete.append(gateway.alias_deleted)
        app.add_service(LogsService(logs_handler))
        secret = _url_secret(data)
        await install_layers(data, store, code, functions, worker, lambda_api, app, secret)
        invalidator.queue_features = await install_queue_features(
            stack, data, store, router, lambda_api, app, self._environ
        )
        self.http = HttpServer(app, max_body=MAX_REQUEST_BODY, on_too_large=too_large)
        await self.http.start(cfg.host, cfg.port)
        stack.push_async_callback(self.http.aclose)
        log.info("hearth listening on http://%s:%d (data in %s)", cfg.host, self.http.port, data)

    async def aclose(self) -> None:
        await self._stack.aclose()


async def _serve(config: Config) -> None:
    server = Server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        print(f"hearth: serving on http://{config.host}:{config.port}", flush=True)
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await asyncio.shield(server.aclose())


def run(config: Config) -> None:
    logging.basicConfig(
        level=getattr(logging, config.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        import uvloop

        runner = functools.partial(uvloop.run, _serve(config))
    except ImportError:  # pragma: no cover - uvloop is a dependency
        runner = functools.partial(asyncio.run, _serve(config))
    runner()
