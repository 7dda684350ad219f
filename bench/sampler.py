"""Samples a URL every 20 ms until its standard input closes, then prints the latencies (ms) as JSON
(after a line `ready` once the first sample is taken).

A process of its own, so the benchmark's busy client loop does not add its own lag to what is measured:
for our /healthz the number is the server's event-loop lag (plus the machine's scheduling), nothing
else. The direct upload runs with one too, pointed at Immich's ping, so both runs bear the same load.
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
            http.get(url)
            latencies.append((time.perf_counter() - started) * 1000)
            if len(latencies) == 1:
                print("ready", flush=True)  # the run starts only once the sampler is sampling
            stop.wait(0.02)
    print(json.dumps(latencies))


if __name__ == "__main__":
    main(sys.argv[1])
