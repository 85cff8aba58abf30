"""The ``hearth`` command: ``hearth server`` runs the platform; the other commands are
clients of its HTTP API, like any AWS client (see :mod:`hearth.cli.client`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence


def _server(args: argparse.Namespace) -> int:
    from hearth.config import load_config
    from hearth.server import run

    config = load_config(
        os.environ,
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        region=args.region,
        keys_file=args.keys_file,
        idle_timeout=args.idle_timeout,
        memory_capacity_mb=args.memory_capacity_mb,
        disk_capacity_mb=args.disk_capacity_mb,
        zygote_idle_timeout=args.zygote_idle_timeout,
        max_zygotes=args.max_zygotes,
        egress=False if args.no_egress else None,
        memory_merge=True if args.memory_merge else None,
    )
    run(config)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hearth", description="Self-hosted AWS Lambda.")
    sub = parser.add_subparsers(dest="command", required=True)
    srv = sub.add_parser("server", help="run the Hearth server (api, router, local worker)")
    srv.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    srv.add_argument("--port", type=int, help="port to listen on (default 8910)")
    srv.add_argument("--data-dir", help="state directory (default ./.hearth)")
    srv.add_argument("--region", help="region reported in ARNs (default us-east-1)")
    srv.add_argument("--keys-file", help="JSON file of access keys")
    srv.add_argument(
        "--idle-timeout", type=float, help="seconds before an idle environment is reaped"
    )
    srv.add_argument("--memory-capacity-mb", type=int, help="memory the worker may commit")
    srv.add_argument(
        "--disk-capacity-mb",
        type=int,
        help="disk the sandboxes' /tmp may take in all (each environment and SnapStart "
        "template reserves its EphemeralStorage; past it idle ones are evicted, else 429); "
        "default: free space of the data directory's filesystem minus max(4 GB, a tenth)",
    )
    srv.add_argument(
        "--zygote-idle-timeout",
        type=float,
        help="seconds without a cold start after which an account's runtime zygote is let "
        "go (its environments live on; default 600)",
    )
    srv.add_argument(
        "--max-zygotes",
        type=int,
        help="runtime zygotes (one per account and Python runtime) kept at once; the least "
        "recently used goes for a new one (default 32)",
    )
    srv.add_argument("--no-egress", action="store_true", help="functions get no outbound network")
    srv.add_argument(
        "--memory-merge",
        action="store_true",
        help="let the kernel merge identical memory pages of Python sandboxes (KSM): "
        "denser, but a cross-tenant timing side channel; off by default (README)",
    )
    srv.set_defaults(func=_server)
    try:
        from hearth.cli.client import add_client_commands
    except ImportError:  # the client commands are optional at this layer
        pass
    else:
        add_client_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
