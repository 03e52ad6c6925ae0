#!/usr/bin/env python3
"""A bounded keep-alive load through the proxy, for scripts/demo.sh.

Usage: demo-load.py URL STOPFILE [THREADS] [MAX_SECONDS] [MAX_REQUESTS]

THREADS workers (default 4) each hold one keep-alive HTTP/1.1 connection and send
`GET <path>` back to back until STOPFILE exists, MAX_SECONDS (default 120) pass or
MAX_REQUESTS (default 400000) are sent in all. A request fails when it gets no
response or a status other than 200; a worker whose connection broke opens a new one
(that request still counts as failed). At the end one line goes to stdout:

    sent N failed F slots blue=B green=G

(the slots counted from the X-Deploy-Slot response header the proxy sets).
Loopback only: the URL must name 127.0.0.1 or localhost.
"""

import http.client
import os
import sys
import threading
import time
import urllib.parse


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    url = urllib.parse.urlsplit(sys.argv[1])
    stop_file = sys.argv[2]
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    max_seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 120.0
    max_requests = int(sys.argv[5]) if len(sys.argv) > 5 else 400_000
    if url.hostname not in ("127.0.0.1", "localhost"):
        print(f"demo-load: {url.hostname} is not loopback", file=sys.stderr)
        return 2
    path = url.path or "/web/health"
    deadline = time.monotonic() + max_seconds
    lock = threading.Lock()
    totals = {"sent": 0, "failed": 0, "blue": 0, "green": 0}
    errors: dict[str, int] = {}

    def worker() -> None:
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=5)
        sent = failed = blue = green = 0
        while time.monotonic() < deadline and not os.path.exists(stop_file):
            with lock:
                if totals["sent"] + sent >= max_requests:
                    break
            sent += 1
            try:
                conn.request("GET", path, headers={"Host": "localhost"})
                response = conn.getresponse()
                response.read()
                slot = response.getheader("X-Deploy-Slot", "")
                if response.status != 200:
                    failed += 1
                    key = f"HTTP {response.status}"
                    with lock:
                        errors[key] = errors.get(key, 0) + 1
                elif slot == "blue":
                    blue += 1
                elif slot == "green":
                    green += 1
            except (OSError, http.client.HTTPException) as e:
                failed += 1
                with lock:
                    errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                conn.close()
                conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=5)
            # Flush counts now and then so the limit holds across workers.
            if sent % 500 == 0:
                with lock:
                    for k, v in (("sent", sent), ("failed", failed), ("blue", blue), ("green", green)):
                        totals[k] += v
                sent = failed = blue = green = 0
        with lock:
            for k, v in (("sent", sent), ("failed", failed), ("blue", blue), ("green", green)):
                totals[k] += v
        conn.close()

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print(
        f"sent {totals['sent']} failed {totals['failed']} "
        f"slots blue={totals['blue']} green={totals['green']}"
    )
    if errors:
        print(f"demo-load: failures: {errors}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
