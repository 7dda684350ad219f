"""The test suite's fake Immich as a standalone server for the benchmark: `python bench/fake_server.py PORT KEY`.

It accepts the given API key (all permissions). Like Immich, it writes an upload to a temporary file
and hashes it while it arrives (tests/fake_multer.py), so a 1 GB video costs it disk, not memory, and
its checksum is ready with the last byte.
"""

import sys
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from fake_immich import FakeImmich  # noqa: E402

if __name__ == "__main__":
    port, key = int(sys.argv[1]), sys.argv[2]
    fake = FakeImmich()
    fake.keys[key] = ("bench-user", {"all"})
    uvicorn.run(fake, host="127.0.0.1", port=port, log_level="warning", access_log=False)
