"""The command line: `migrate`, and logs that are one line per event, JSON when asked, and never a secret."""

import json
import os
import subprocess
import sys

import httpx

from conftest import Process, free_port


def test_migrate_command(tmp_path):
    env = {**os.environ, "DATA_DIR": str(tmp_path), "PORT": "8080"}
    result = subprocess.run([sys.executable, "-m", "immich_drop", "migrate"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stderr.strip().endswith("database is up to date")
    assert (tmp_path / "state.db").is_file()
    wrong = subprocess.run([sys.executable, "-m", "immich_drop", "frobnicate"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert wrong.returncode == 2 and wrong.stderr == "usage: immich-drop [serve | migrate]\n"


def test_json_logs_without_secrets(tmp_path, fake):
    key = fake.add_user()
    env = {"DATA_DIR": str(tmp_path), "IMMICH_BASE_URL": fake.url, "IMMICH_API_KEY": key, "HOST": "127.0.0.1",
           "PUBLIC_UPLOAD_PAGE_ENABLED": "true", "LOG_FORMAT": "json", "SESSION_SECRET": "very-secret-value"}
    process = Process(env, free_port(), keep_log=True)
    try:
        token = "TOKENshouldNOTbeLOGGED123456"
        assert httpx.get(f"{process.url}/i/{token}").status_code == 404
        assert httpx.get(f"{process.url}/api/i/{token}").status_code == 404
        assert httpx.post(f"{process.url}/api/i/{token}/unlock", json={"password": "p4ssw0rd-guess"}).status_code == 404
        assert httpx.post(f"{process.url}/api/login", json={"email": "a@b.c", "password": "hunter2-pw"}).status_code == 401
    finally:
        process.stop()
    lines = [line for line in process.log if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any("/i/…" in e["message"] for e in entries) and any("/api/login" in e["message"] for e in entries)
    text = "\n".join(lines)
    for secret in (token, key, "very-secret-value", "p4ssw0rd-guess", "hunter2-pw"):
        assert secret not in text


def test_the_served_status_channel_does_not_compress(tmp_path, fake):
    """Status events are tiny JSON; per-message deflate only cost CPU (bench/), so the server declines it."""
    from websockets.sync.client import connect

    env = {"DATA_DIR": str(tmp_path), "IMMICH_BASE_URL": fake.url, "IMMICH_API_KEY": fake.add_user(),
           "HOST": "127.0.0.1", "PUBLIC_UPLOAD_PAGE_ENABLED": "true"}
    process = Process(env, free_port())
    try:
        page = httpx.get(process.url + "/")
        cookie = "; ".join(f"{k}={v}" for k, v in page.cookies.items())
        with connect(process.url.replace("http", "ws") + "/ws", additional_headers={"Cookie": cookie}) as ws:
            assert ws.request.headers.get("Sec-WebSocket-Extensions", "").startswith("permessage-deflate")  # offered
            assert ws.response.status_code == 101
            assert ws.response.headers.get("Sec-WebSocket-Extensions") is None  # and declined
    finally:
        process.stop()
