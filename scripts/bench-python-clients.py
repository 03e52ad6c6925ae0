#!/usr/bin/env python3
"""Calls per second of the Python Odoo clients, for scripts/bench-rpc.sh.

Usage: bench-python-clients.py URL DB LOGIN CLIENT N CONCURRENCY
CLIENT is `odoorpc` (OdooRPC: /web/session/authenticate + /web/dataset/call_kw),
`odoolib` (odoo-client-lib: /jsonrpc), or `raw`: the same /jsonrpc request sent as
fixed bytes over one keep-alive socket with minimal parsing, which measures the
server's own floor (what any client must wait for) rather than a client. The password comes from ODOO_PASSWORD. Each call is
a `search_read` of 10 `res.partner` records with fields name and email, as in the Rust
load generator. Concurrency uses threads, each with its own connection, as a Python user
would. Prints one line: `calls=N concurrency=C failed=F elapsed_ms=T calls_per_sec=R`.
Bounded: stops after N calls or 120 s, whichever comes first.
"""
import os
import sys
import threading
import time
from urllib.parse import urlparse

TIME_LIMIT = 120.0


def make_caller(client, url, db, login, password):
    parsed = urlparse(url)
    host, port = parsed.hostname, parsed.port or 80
    if client == "odoorpc":
        import odoorpc

        odoo = odoorpc.ODOO(host, port=port, timeout=60)
        odoo.login(db, login, password)

        def call():
            return odoo.execute_kw(
                "res.partner", "search_read", [[]], {"fields": ["name", "email"], "limit": 10}
            )

        return call
    if client == "odoolib":
        import odoolib

        conn = odoolib.get_connection(
            hostname=host, port=port, database=db, login=login, password=password, protocol="jsonrpc"
        )
        model = conn.get_model("res.partner")

        def call():
            return model.search_read([], ["name", "email"], limit=10)

        return call
    if client == "raw":
        import json
        import socket

        body = json.dumps(
            {
                "jsonrpc": "2.0",
                "method": "call",
                "id": 1,
                "params": {
                    "service": "object",
                    "method": "execute_kw",
                    "args": [db, 2, password, "res.partner", "search_read", [[]],
                             {"fields": ["name", "email"], "limit": 10}],
                },
            }
        ).encode()
        request = (
            b"POST /jsonrpc HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % (host.encode(), len(body))
        ) + body
        sock = socket.create_connection((host, port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def call():
            sock.sendall(request)
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed")
                buf += chunk
            head, _, rest = buf.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            while len(rest) < length:
                rest += sock.recv(65536)
            return json.loads(rest)["result"]

        return call
    raise SystemExit(f"unknown client {client}")


def main():
    url, db, login, client, total, concurrency = sys.argv[1:7]
    total, concurrency = int(total), int(concurrency)
    password = os.environ.get("ODOO_PASSWORD", "")
    callers = [make_caller(client, url, db, login, password) for _ in range(concurrency)]
    for call in callers[:10]:
        call()  # warm up
    lock = threading.Lock()
    state = {"issued": 0, "failed": 0}
    start = time.perf_counter()

    def worker(call):
        while True:
            with lock:
                if state["issued"] >= total or time.perf_counter() - start > TIME_LIMIT:
                    return
                state["issued"] += 1
            try:
                if len(call()) != 10:
                    raise ValueError("short page")
            except Exception:  # noqa: BLE001 - counted, not hidden
                with lock:
                    state["failed"] += 1

    threads = [threading.Thread(target=worker, args=(c,)) for c in callers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    done = state["issued"]
    print(
        f"calls={done} concurrency={concurrency} failed={state['failed']} "
        f"elapsed_ms={elapsed * 1000:.0f} calls_per_sec={done / elapsed:.0f}"
    )


if __name__ == "__main__":
    main()
