"""The idle-connection client of the memory test.

`python3 idle_client.py HOST PORT COUNT` opens COUNT connections (200 at a
time), sends one GET /small on each and reads the answer, prints
`ready N` (or `failed ...`), then holds every connection open until its
standard input is closed. A process of its own, so bench.py can pin it to
the load generator's core.
"""

import asyncio
import sys


async def idle_client(host, port, count):
    request = f"GET /small HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    writers = []
    gate = asyncio.Semaphore(200)

    async def one():
        async with gate:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
            writer.write(request)
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await asyncio.wait_for(reader.readexactly(length), 10)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
            writers.append(writer)

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        print(f"failed {len(failures)} of {count}: {failures[0]!r}", flush=True)
    else:
        print(f"ready {len(writers)}", flush=True)
    # Hold the connections until the parent closes our stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for writer in writers:
        writer.close()


if __name__ == "__main__":
    asyncio.run(idle_client(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
