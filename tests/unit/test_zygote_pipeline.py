"""Fork requests to a zygote are pipelined: each caller gets the answer to its own request."""

from __future__ import annotations

import asyncio
import marshal
import os
import socket
from types import SimpleNamespace

import pytest

from hearth.errors import SandboxError
from hearth.sandbox.zygote import Zygote, ZygoteSpec


def _zygote() -> tuple[Zygote, socket.socket]:
    """A Zygote whose process is the test: the returned socket is the zygote's end."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    z = Zygote(ZygoteSpec("/usr/bin/python3", (), "/dev/null"), ("python3",))
    z._ctl = ours
    z._proc = SimpleNamespace(poll=lambda: None)  # type: ignore[assignment]
    z.ready = True
    return z, theirs


def _request(theirs: socket.socket) -> tuple[str, list[int]]:
    data, fds, _, _ = socket.recv_fds(theirs, 4096, 3)
    for fd in fds:
        os.close(fd)
    return marshal.loads(data)["op"], fds


def test_concurrent_forks_get_their_own_answers() -> None:
    async def main() -> None:
        z, theirs = _zygote()
        r, w = os.pipe()
        try:
            forks = [asyncio.ensure_future(z.fork([r, w, w], op)) for op in ("fork", "stem") * 3]
            await asyncio.sleep(0.05)  # all six sent before the first answer
            ops = []
            for pid in range(100, 106):
                op, fds = await asyncio.get_running_loop().run_in_executor(None, _request, theirs)
                ops.append(op)
                assert len(fds) == 3
                theirs.send(marshal.dumps({"pid": pid}))
            assert await asyncio.gather(*forks) == list(range(100, 106))
            assert ops == ["fork", "stem"] * 3
            assert z.ready
        finally:
            theirs.close()
            z._proc = None  # no process to kill
            await z.aclose()
            os.close(r)
            os.close(w)

    asyncio.run(main())


def test_a_zygote_that_goes_away_fails_every_waiting_request() -> None:
    async def main() -> None:
        z, theirs = _zygote()
        r, w = os.pipe()
        try:
            forks = [asyncio.ensure_future(z.fork([r, w, w])) for _ in range(3)]
            await asyncio.sleep(0.05)
            for _ in forks:  # taken (unread ones would reset the connection)
                await asyncio.get_running_loop().run_in_executor(None, _request, theirs)
            theirs.send(marshal.dumps({"pid": 7}))
            theirs.close()
            assert await forks[0] == 7
            for fork in forks[1:]:
                with pytest.raises(SandboxError, match="exited"):
                    await fork
            assert not z.ready
            with pytest.raises(SandboxError, match="not running"):
                await z.fork([r, w, w])
        finally:
            z._proc = None  # no process to kill
            await z.aclose()
            os.close(r)
            os.close(w)

    asyncio.run(main())
