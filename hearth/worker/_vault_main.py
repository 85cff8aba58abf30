"""The fd vault process: holds descriptors the server handed it until it asks for them back.

Run as ``python -I -S _vault_main.py FD`` by :mod:`hearth.worker.fd_vault`; imports nothing
of Hearth (standard library only: it starts in ~20 ms and holds no server state). ``FD`` is
its end of a ``SOCK_SEQPACKET`` socket pair with the server. One message, one reply, in
order (the server matches replies to requests first in, first out):

* ``P`` + key, with descriptors (SCM_RIGHTS): hold them under ``key``; reply ``P`` + key
  (``p`` + key if the kernel could not hand them all over: they are closed then);
* ``G`` + key: reply ``G`` + key with the descriptors, and close its own copies (``g`` +
  key: unknown key);
* ``D`` + key: close them; reply ``D`` + key.

The first message it sends is ``R`` + its ``RLIMIT_NOFILE`` (the soft limit, raised to the
hard one first), so that the server never sends more than it can receive (a receiver past
its limit gets the message with its descriptors cut off and closed by the kernel).

At EOF (the server closed its end, or died) it exits, closing everything it held: the
sandboxes whose descriptors it held are the server's, which kills them when it goes.
"""

import contextlib
import os
import resource
import signal
import socket
import struct
import sys

_KEY = struct.Struct("<Q")
MAX_FDS = 253  # SCM_MAX_FD: the most a single message carries


def main() -> None:
    # Ctrl-C in the server's terminal is the server's to handle (it stops the vault).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(OSError, ValueError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if limit == resource.RLIM_INFINITY:
        limit = 1 << 20
    sock = socket.socket(fileno=int(sys.argv[1]))
    sock.setblocking(True)
    sock.send(b"R" + _KEY.pack(limit))
    held: dict[int, list[int]] = {}
    while True:
        try:
            data, fds, flags, _ = socket.recv_fds(sock, 64, MAX_FDS)
        except InterruptedError:
            continue
        except OSError:
            break
        if not data:
            break
        op, key = data[:1], data[1:9]
        (k,) = _KEY.unpack(key)
        if op == b"P":
            if flags & socket.MSG_CTRUNC:
                for fd in fds:
                    os.close(fd)
                sock.send(b"p" + key)
            else:
                held[k] = fds
                sock.send(b"P" + key)
        elif op == b"G":
            got = held.pop(k, None)
            if got is None:
                sock.send(b"g" + key)
            else:
                socket.send_fds(sock, [b"G" + key], got)
                for fd in got:
                    os.close(fd)
        elif op == b"D":
            for fd in held.pop(k, ()):
                os.close(fd)
            sock.send(b"D" + key)
        else:
            for fd in fds:
                os.close(fd)
            sock.send(b"?" + key)


if __name__ == "__main__":
    main()
