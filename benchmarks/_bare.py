"""The baseline server: bare asyncio on uvloop, the hello handler called in-process.

It parses just enough HTTP/1.1 (keep-alive, Content-Length) to answer the same POSTs the
benchmarks send to Hearth. Run as ``python -m benchmarks._bare PORT``.
"""

from __future__ import annotations

import asyncio
import json
import sys

import uvloop

from benchmarks._common import HELLO


def main(port: int) -> None:
    ns: dict[str, object] = {}
    exec(HELLO, ns)
    handler = ns["handler"]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                writer.close()
                return
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length) if length else b"{}"
            out = json.dumps(handler(json.loads(body), None)).encode()  # type: ignore[operator]
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(out), out)
            )

    async def run() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    uvloop.run(run())


if __name__ == "__main__":
    main(int(sys.argv[1]))
