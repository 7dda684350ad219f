"""Settings: defaults, validation with one-line messages naming the variable, *_FILE secrets."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from immich_drop.config import ConfigError, Settings


def settings(tmp_path, **env):
    return Settings.from_env({"DATA_DIR": str(tmp_path), **env}, dotenv=None)


def test_defaults(tmp_path):
    s = settings(tmp_path)
    assert s.public_upload_page_enabled is False
    assert s.port == 8080 and s.max_concurrent == 6 and s.chunk_size == 8 * 1024 * 1024
    assert s.max_request_body == 16 * 1024 * 1024
    assert s.immich_base_url == "http://127.0.0.1:2283/api"
    assert s.db_url == f"sqlite:///{tmp_path}/state.db"
    # Without SESSION_SECRET a random one is kept in DATA_DIR, so it survives restarts.
    assert s.session_secret and settings(tmp_path).session_secret == s.session_secret
    assert oct((tmp_path / "session_secret").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    "env, named",
    [
        ({"IMMICH_BASE_URL": "immich:2283"}, "IMMICH_BASE_URL"),
        ({"PUBLIC_UPLOAD_PAGE_ENABLED": "maybe"}, "PUBLIC_UPLOAD_PAGE_ENABLED"),
        ({"PUBLIC_UPLOAD_PAGE_ENABLED": "true"}, "IMMICH_API_KEY"),
        ({"PORT": "http"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"MAX_CONCURRENT": "0"}, "MAX_CONCURRENT"),
        ({"CHUNK_SIZE": "200MB"}, "CHUNK_SIZE"),
        ({"MAX_UPLOAD_SIZE": "lots"}, "MAX_UPLOAD_SIZE"),
        ({"TRUSTED_PROXIES": "10.0.0.0/8, nonsense"}, "TRUSTED_PROXIES"),
        ({"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ({"IMMICH_API_KEY_FILE": "/nonexistent/key"}, "IMMICH_API_KEY_FILE"),
        ({"UPLOAD_EXPIRY_HOURS": "-1"}, "UPLOAD_EXPIRY_HOURS"),
        ({"STREAM_MIN_SIZE": "big"}, "STREAM_MIN_SIZE"),
        ({"STREAM_STALL_SECONDS": "0"}, "STREAM_STALL_SECONDS"),
    ],
)
def test_bad_settings_name_the_variable(tmp_path, env, named):
    with pytest.raises(ConfigError) as err:
        settings(tmp_path, **env)
    message = str(err.value)
    assert message.startswith(named + ":") and "\n" not in message


def test_sizes_and_secret_files(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("secret-key\n")
    s = settings(tmp_path, CHUNK_SIZE="16MiB", MAX_UPLOAD_SIZE="2GB", IMMICH_API_KEY_FILE=str(key_file),
                 PUBLIC_UPLOAD_PAGE_ENABLED="yes", TRUSTED_PROXIES="10.0.0.0/8,::1")
    assert s.chunk_size == 16 * 1024 * 1024 and s.max_upload_size == 2 * 1000**3
    assert s.immich_api_key == "secret-key" and s.public_upload_page_enabled
    assert len(s.trusted_proxies) == 2
    assert s.stream_min_size == 64 * 1024 * 1024
    assert settings(tmp_path, STREAM_MIN_SIZE="off").stream_min_size == 0
    assert settings(tmp_path, STREAM_MIN_SIZE="1GiB").stream_min_size == 1024**3


def test_dotenv_is_read_and_environment_wins(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("PORT=9000\nIMMICH_ALBUM_NAME=From dotenv\n")
    s = Settings.from_env({"DATA_DIR": str(tmp_path), "PORT": "9100"}, dotenv=dotenv)
    assert s.port == 9100 and s.immich_album_name == "From dotenv"


def test_env_example_copied_with_its_data_dir_changed_keeps_everything_there(tmp_path):
    """An owner copied .env.example and changed DATA_DIR: the uploads went there, the database stayed
    in ./data (STATE_DB was set in it), and a backup of DATA_DIR would have missed it (owner walk)."""
    example = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    dotenv = tmp_path / ".env"
    dotenv.write_text(example.replace("DATA_DIR=./data", f"DATA_DIR={tmp_path / 'mine'}"))
    s = Settings.from_env({}, dotenv=dotenv)
    assert s.data_dir == tmp_path / "mine" and s.state_db == tmp_path / "mine" / "state.db"


def test_cli_reports_bad_config_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IMMICH_", "PUBLIC_"))}
    env.update({"DATA_DIR": str(tmp_path), "PORT": "not-a-port"})
    result = subprocess.run([sys.executable, "-m", "immich_drop"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr == "immich-drop: configuration error: PORT: 'not-a-port' is not a whole number\n"


@pytest.mark.parametrize("env, named", [
    ({"MAX_HEADER_SIZE": "1KiB"}, "MAX_HEADER_SIZE"), ({"MAX_HEADER_SIZE": "lots"}, "MAX_HEADER_SIZE"),
    ({"HEADER_TIMEOUT_SECONDS": "0"}, "HEADER_TIMEOUT_SECONDS"), ({"UPLOAD_STALL_SECONDS": "soon"}, "UPLOAD_STALL_SECONDS"),
    ({"MAX_CONNECTIONS_PER_ADDRESS": "0"}, "MAX_CONNECTIONS_PER_ADDRESS"),
    ({"PUBLIC_PENDING_FILES": "0"}, "PUBLIC_PENDING_FILES"), ({"PUBLIC_PENDING_BYTES": "-1"}, "PUBLIC_PENDING_BYTES"),
    ({"PUBLIC_PENDING_FILES_PER_ADDRESS": "x"}, "PUBLIC_PENDING_FILES_PER_ADDRESS"),
    ({"PUBLIC_PENDING_BYTES_PER_ADDRESS": "1 potato"}, "PUBLIC_PENDING_BYTES_PER_ADDRESS"),
    ({"MAX_CONNECTIONS": "4"}, "MAX_CONNECTIONS"), ({"INVITE_PENDING_FILES": "0"}, "INVITE_PENDING_FILES"), ({"INVITE_PENDING_BYTES": "much"}, "INVITE_PENDING_BYTES"),
    ({"INVITE_PENDING_FILES_PER_ADDRESS": "1.5"}, "INVITE_PENDING_FILES_PER_ADDRESS"),
    ({"INVITE_PENDING_BYTES_PER_ADDRESS": "-2GiB"}, "INVITE_PENDING_BYTES_PER_ADDRESS"),
    ({"MIN_FREE_SPACE": "plenty"}, "MIN_FREE_SPACE"),
])
def test_limit_settings_name_the_variable(tmp_path, env, named):
    with pytest.raises(ConfigError) as err:
        settings(tmp_path, **env)
    assert str(err.value).startswith(named + ":") and "\n" not in str(err.value)


def test_limit_defaults(tmp_path):
    s = settings(tmp_path)
    assert (s.max_header_size, s.header_timeout_seconds, s.upload_stall_seconds) == (32 * 1024, 10.0, 20.0)
    assert (s.public_pending_files, s.public_pending_bytes) == (200, 50 * 1024**3)
    assert (s.public_pending_files_per_address, s.public_pending_bytes_per_address) == (1000, 200 * 1024**3)
    assert s.min_free_space == 1024**3 and settings(tmp_path, MIN_FREE_SPACE="0").min_free_space == 0
    assert (s.max_connections, s.max_connections_per_address) == (2048, 512)  # a quarter, unless set
    assert settings(tmp_path, MAX_CONNECTIONS="100").max_connections_per_address == 25
    assert settings(tmp_path, MAX_CONNECTIONS_PER_ADDRESS="7").max_connections_per_address == 7
