"""The fd vault (hearth.worker.fd_vault): descriptors out to a vault process and back,
the same open files; a vault process that dies reports what it held."""

from __future__ import annotations

import asyncio
import os
import signal
import socket

import pytest

from hearth.worker.fd_vault import FdVault, VaultLost


def test_descriptors_come_back_as_the_same_open_files() -> None:
    async def main() -> None:
        vault = FdVault()
        a, b = socket.socketpair()
        r, w = os.pipe()
        try:
            ticket = await vault.put([a.fileno(), r], lambda: None)
            a.close()  # the server's copies go: the vault keeps the files open
            os.close(r)
            b.sendall(b"still there")
            os.write(w, b"piped")
            fds = await vault.take(ticket)
            assert len(fds) == 2
            back = socket.socket(fileno=fds[0])
            assert back.recv(64) == b"still there"
            assert os.read(fds[1], 64) == b"piped"
            back.close()
            os.close(fds[1])
            assert vault.statistics()["vault_fds"] == 0
        finally:
            b.close()
            os.close(w)
            await vault.aclose()

    asyncio.run(main())


def test_a_dropped_ticket_closes_the_files_in_the_vault() -> None:
    async def main() -> None:
        vault = FdVault()
        r, w = os.pipe()
        try:
            ticket = await vault.put([w], lambda: None)
            os.close(w)
            vault.drop(ticket)
            loop = asyncio.get_running_loop()
            # The last write end is gone: the read end sees EOF.
            assert await asyncio.wait_for(loop.run_in_executor(None, os.read, r, 1), 5) == b""
            with pytest.raises(VaultLost):
                await vault.take(ticket)
        finally:
            os.close(r)
            await vault.aclose()

    asyncio.run(main())


def test_a_vault_process_that_dies_reports_its_tickets_and_a_new_one_starts() -> None:
    async def main() -> None:
        vault = FdVault()
        lost: list[int] = []
        r, w = os.pipe()
        try:
            t1 = await vault.put([w], lambda: lost.append(1))
            await vault.put([r], lambda: lost.append(2))
            (pid,) = vault.pids()
            os.kill(pid, signal.SIGKILL)
            for _ in range(500):
                if len(lost) == 2:
                    break
                await asyncio.sleep(0.01)
            assert sorted(lost) == [1, 2]
            with pytest.raises(VaultLost):
                await vault.take(t1)
            assert vault.statistics()["vault_lost"] == 2
            t3 = await vault.put([w], lambda: None)  # a new process
            assert vault.pids() and vault.pids() != [pid]
            (fd,) = await vault.take(t3)
            os.close(fd)
        finally:
            os.close(r)
            os.close(w)
            await vault.aclose()

    asyncio.run(main())
