"""Samples `URL/healthz` every 20 ms until its standard input closes, then prints the latencies (ms) as JSON.

A process of its own, so the benchmark's busy client loop does not add its own lag to what is measured:
the number is the server's event-loop lag (plus the machine's scheduling), nothing else.
"""

import json
import sys
import threading
import time

import httpx


def main(url: str) -> None:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    latencies: list[float] = []
    with httpx.Client(timeout=10) as http:
        while not stop.is_set():
            started = time.perf_counter()
            http.get(url + "/healthz")
            latencies.append((time.perf_counter() - started) * 1000)
            stop.wait(0.02)
    print(json.dumps(latencies))


if __name__ == "__main__":
    main(sys.argv[1])
