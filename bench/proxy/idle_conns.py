#!/usr/bin/env python3
"""Memory per idle client connection of a proxy.

  idle_conns.py upstream PORTFILE          a keep-alive HTTP upstream on 127.0.0.1:0
  idle_conns.py clients PORT N PROXY_PID   opens N connections through the proxy, one
                                           request each, keeps them idle, and reports the
                                           proxy's RSS growth per connection
"""
import asyncio
import resource
import sys


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def upstream(portfile):
    async def handle(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    break
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=4096)
    with open(portfile, "w") as f:
        f.write(str(server.sockets[0].getsockname()[1]))
    await server.serve_forever()


async def clients(port, n, pid):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 1000)), hard))
    conns = []

    async def one():
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        await w.drain()
        head = await r.readuntil(b"\r\n\r\n")
        body = await r.readexactly(2)
        assert head.startswith(b"HTTP/1.1 200") and body == b"ok", head
        conns.append((r, w))

    # Warm the proxy's pools with a few connections first, then measure.
    for _ in range(50):
        await one()
    await asyncio.sleep(0.5)
    base = rss_kib(pid)
    for i in range(0, n, 500):
        await asyncio.gather(*(one() for _ in range(min(500, n - i))))
    await asyncio.sleep(1.0)
    after = rss_kib(pid)
    per = (after - base) * 1024 / n
    print(f"idle client connections: {n}; proxy RSS {base} KiB -> {after} KiB; "
          f"{per:.0f} bytes per idle connection ({per / 1024:.2f} KiB)")
    print(f"RESULT bench=memory target=meshdeploy metric=rss_per_idle_conn value={per:.0f} unit=bytes conns={n}")
    for _, w in conns:
        w.close()


if __name__ == "__main__":
    if sys.argv[1] == "upstream":
        asyncio.run(upstream(sys.argv[2]))
    else:
        asyncio.run(clients(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])))
