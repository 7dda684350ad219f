"""What can be checked of the image and the compose file without a container engine (none runs here).

The files parse; the image's command, user, volume, health check and copied paths fit the package;
compose passes exactly the documented settings; and the wheel the image installs, in a fresh virtual
environment outside this checkout, starts with nothing but documented variables set.
"""

import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import free_port

ROOT = Path(__file__).resolve().parents[1]


def documented() -> set[str]:
    names = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^#?\s*([A-Z][A-Z0-9_]+)=", line)
        if match:
            names.add(match.group(1))
    return names


def containerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Containerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Containerfile").read_text())
    steps = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            steps.append((word.upper(), rest.strip()))
    return steps


def test_containerfile_fits_the_package():
    steps = containerfile()
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM"):]
    values = lambda word: [rest for w, rest in final if w == word]  # noqa: E731
    assert [w for w, _ in steps if w == "FROM"] == ["FROM", "FROM"]  # multi-stage
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert values("CMD") == ['["immich-drop"]'] and "immich-drop" in scripts
    assert values("USER") == ["drop"] and "useradd" in " ".join(values("RUN"))
    assert values("VOLUME") == ['["/data"]'] and "DATA_DIR=/data" in " ".join(values("ENV"))
    assert "PORT=8080" in " ".join(values("ENV")) and values("EXPOSE") == ["8080"]
    assert "/healthz" in values("HEALTHCHECK")[0]
    assert not any(w == "ENTRYPOINT" for w, _ in final)
    for word, rest in steps:
        if word == "COPY" and not rest.startswith("--from"):
            for source in shlex.split(rest)[:-1]:
                assert (ROOT / source).exists(), source
    assert any("uv sync --locked --no-dev" in rest for w, rest in steps if w == "RUN")


def test_compose_passes_exactly_the_documented_settings():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    service = compose["services"]["immich-drop"]
    assert service["build"]["dockerfile"] == "Containerfile"
    assert "drop-data:/data" in service["volumes"]
    env = set(service["environment"])
    known = documented()
    for name in env:
        assert name in known or name.removesuffix("_FILE") in known, f"{name} is not in .env.example"
    settings_in_config = set(re.findall(r'r\.\w+\("([A-Z_]+)"', (ROOT / "src/immich_drop/config.py").read_text()))
    for name in settings_in_config:
        assert name in env or f"{name}_FILE" in env, f"compose.yaml does not pass {name}"
        assert name in known, f".env.example does not document {name}"
    secrets = compose["secrets"]
    assert {s["environment"] for s in secrets.values()} == {"IMMICH_API_KEY", "SESSION_SECRET"}
    # Compose's own variables, and every ${VAR} it reads, are documented for the .env file too.
    for var in re.findall(r"\$\{([A-Z_]+)", (ROOT / "compose.yaml").read_text()):
        assert var in known, f"{var} is read by compose.yaml but not in .env.example"


def test_the_installed_wheel_starts_with_only_documented_variables(tmp_path, fake):
    wheel_dir, venv = tmp_path / "dist", tmp_path / "venv"
    run = lambda *args: subprocess.run(args, cwd=ROOT, check=True, capture_output=True, text=True, timeout=300)  # noqa: E731
    run("uv", "build", "--wheel", "--out-dir", str(wheel_dir))
    [wheel] = wheel_dir.glob("*.whl")
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"immich_drop/web/index.html", "immich_drop/web/admin/admin.js", "immich_drop/migrations/env.py"} <= names
    run("uv", "venv", "--quiet", str(venv))
    run("uv", "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), str(wheel))

    port = free_port()
    env = {"PATH": f"{venv}/bin:/usr/bin:/bin", "HOME": str(tmp_path), "DATA_DIR": str(tmp_path / "data"),
           "HOST": "127.0.0.1", "PORT": str(port), "IMMICH_BASE_URL": fake.url, "PUBLIC_UPLOAD_PAGE_ENABLED": "false"}
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR"):
        if name in os.environ:
            env[name] = os.environ[name]
    assert set(env) - {"PATH", "HOME", "SSL_CERT_FILE", "SSL_CERT_DIR"} <= documented()
    proc = subprocess.Popen([str(venv / "bin" / "immich-drop")], env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:
            if "Uvicorn running on" in line:
                break
        else:
            pytest.fail("the installed entry point did not start")
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(base + "/healthz").json() == {"status": "ok"}
        assert httpx.get(base + "/admin").status_code == 200  # web/ found inside the installed package
        assert httpx.get(base + "/readyz").json()["checks"]["database"] == "ok"  # migrations ran
    finally:
        proc.terminate()
        proc.wait(10)
