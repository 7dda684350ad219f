"""Settings: read once from the environment (and an optional `.env`), validated, then passed around.

`Settings.from_env(environ)` takes a mapping of variable names to strings and returns a frozen
`Settings`, or raises `ConfigError` whose message is one line naming the variable and what is
wrong with it. Nothing here is global: the app factory receives the object it should use.

Secrets also accept a `*_FILE` variant (Docker/Podman secrets): `IMMICH_API_KEY_FILE=/run/secrets/key`.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

MiB = 1024 * 1024
GiB = 1024 * MiB


class ConfigError(ValueError):
    """A setting is missing or invalid; `str(err)` is a one-line message naming it."""


@dataclass(frozen=True)
class Settings:
    immich_base_url: str = "http://127.0.0.1:2283/api"
    immich_api_key: str = ""
    immich_album_name: str = ""
    public_upload_page_enabled: bool = False
    public_base_url: str = ""
    session_secret: str = ""
    data_dir: Path = Path("./data")
    state_db: Path = Path("./data/state.db")
    database_url: str = ""
    max_concurrent: int = 6
    # Videos at least this large go on to Immich while they arrive (relay); 0 turns that off.
    stream_min_size: int = 64 * MiB
    stream_stall_seconds: float = 20.0
    max_upload_size: int = 50 * GiB
    chunk_size: int = 8 * MiB
    upload_expiry_hours: float = 24.0
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    host: str = "0.0.0.0"
    port: int = 8080
    log_level: str = "info"
    # Delivery retry: first wait and ceiling, in seconds (tests shorten them).
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 300.0
    immich_timeout_seconds: float = 60.0
    media_types_ttl_seconds: float = 3600.0
    admin_session_hours: float = 12.0
    log_format: str = "text"
    metrics_token: str = ""
    # What an outsider can make us hold (README, Security): request headers, a PATCH that stops
    # sending, unfinished uploads (public page, invite links), and the staging disk's reserve.
    max_header_size: int = 32 * 1024
    header_timeout_seconds: float = 10.0
    upload_stall_seconds: float = 20.0
    max_connections: int = 2048
    max_connections_per_address: int = 512  # a quarter of max_connections unless set
    public_pending_files: int = 200
    public_pending_bytes: int = 50 * GiB
    public_pending_files_per_address: int = 1000
    public_pending_bytes_per_address: int = 200 * GiB
    invite_pending_files: int = 200
    invite_pending_bytes: int = 100 * GiB
    invite_pending_files_per_address: int = 1000
    invite_pending_bytes_per_address: int = 200 * GiB
    min_free_space: int = 1 * GiB
    # Owner notifications: a link's digest goes once no file of it finished for this long; expiry checks.
    notify_settle_seconds: float = 300.0
    notify_check_seconds: float = 60.0

    @property
    def staging_dir(self) -> Path:
        return self.data_dir / "uploads"

    @property
    def max_request_body(self) -> int:
        """The largest PATCH body accepted: two chunks leave room for client-side rounding."""
        return 2 * self.chunk_size

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_db}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, dotenv: str | os.PathLike | None = ".env") -> "Settings":
        """Build settings from `environ` (default `os.environ`) over the values in `dotenv` if it exists."""
        env: dict[str, str] = {}
        if dotenv and Path(dotenv).is_file():
            from dotenv import dotenv_values

            env.update({k: v for k, v in dotenv_values(dotenv).items() if v is not None})
        env.update(os.environ if environ is None else environ)
        r = _Reader(env)

        data_dir = Path(r.text("DATA_DIR", "./data"))
        base_url = r.text("IMMICH_BASE_URL", cls.immich_base_url).rstrip("/")
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"IMMICH_BASE_URL: {base_url!r} is not an http(s) URL (expected e.g. http://immich:2283/api)")
        public_base = r.text("PUBLIC_BASE_URL", "").rstrip("/")
        if public_base and urlsplit(public_base).scheme not in ("http", "https"):
            raise ConfigError(f"PUBLIC_BASE_URL: {public_base!r} is not an http(s) URL")
        public_enabled = r.boolean("PUBLIC_UPLOAD_PAGE_ENABLED", False)
        api_key = r.secret("IMMICH_API_KEY")
        if public_enabled and not api_key:
            raise ConfigError("IMMICH_API_KEY: required when PUBLIC_UPLOAD_PAGE_ENABLED=true (the public page uploads with it)")
        chunk = r.size("CHUNK_SIZE", 8 * MiB)
        if not 256 * 1024 <= chunk <= 95 * MiB:
            raise ConfigError("CHUNK_SIZE: must be between 256KiB and 95MiB (proxies such as Cloudflare cap bodies at 100 MB)")
        log_level = r.choice("LOG_LEVEL", "info", ("critical", "error", "warning", "info", "debug"))
        max_connections = r.integer("MAX_CONNECTIONS", 2048, low=8, high=10**6)
        return cls(
            immich_base_url=base_url,
            immich_api_key=api_key,
            immich_album_name=r.text("IMMICH_ALBUM_NAME", ""),
            public_upload_page_enabled=public_enabled,
            public_base_url=public_base,
            session_secret=r.secret("SESSION_SECRET") or _persistent_secret(data_dir),
            data_dir=data_dir,
            state_db=Path(r.text("STATE_DB", str(data_dir / "state.db"))),
            database_url=database_url(r.secret("DATABASE_URL")),
            max_concurrent=r.integer("MAX_CONCURRENT", 6, low=1, high=64),
            max_upload_size=r.size("MAX_UPLOAD_SIZE", 50 * GiB),
            stream_min_size=0 if r.text("STREAM_MIN_SIZE", "").lower() in ("0", "off")
            else r.size("STREAM_MIN_SIZE", 64 * MiB),
            stream_stall_seconds=r.number("STREAM_STALL_SECONDS", 20.0, low=0.01),
            chunk_size=chunk,
            upload_expiry_hours=r.number("UPLOAD_EXPIRY_HOURS", 24.0, low=0.01),
            trusted_proxies=r.networks("TRUSTED_PROXIES"),
            host=r.text("HOST", "0.0.0.0"),
            port=r.integer("PORT", 8080, low=1, high=65535),
            log_level=log_level,
            retry_base_seconds=r.number("RETRY_BASE_SECONDS", 2.0, low=0.001),
            retry_max_seconds=r.number("RETRY_MAX_SECONDS", 300.0, low=0.001),
            immich_timeout_seconds=r.number("IMMICH_TIMEOUT_SECONDS", 60.0, low=0.1),
            admin_session_hours=r.number("ADMIN_SESSION_HOURS", 12.0, low=0.01),
            log_format=r.choice("LOG_FORMAT", "text", ("text", "json")),
            metrics_token=r.secret("METRICS_TOKEN"),
            max_header_size=r.size("MAX_HEADER_SIZE", 32 * 1024, low=8 * 1024),
            header_timeout_seconds=r.number("HEADER_TIMEOUT_SECONDS", 10.0, low=0.05),
            upload_stall_seconds=r.number("UPLOAD_STALL_SECONDS", 20.0, low=0.05),
            max_connections=max_connections,
            max_connections_per_address=r.integer("MAX_CONNECTIONS_PER_ADDRESS", max(1, max_connections // 4),
                                                  low=1, high=10**6),
            public_pending_files=r.integer("PUBLIC_PENDING_FILES", 200, low=1, high=10**6),
            public_pending_bytes=r.size("PUBLIC_PENDING_BYTES", 50 * GiB),
            public_pending_files_per_address=r.integer("PUBLIC_PENDING_FILES_PER_ADDRESS", 1000, low=1, high=10**7),
            public_pending_bytes_per_address=r.size("PUBLIC_PENDING_BYTES_PER_ADDRESS", 200 * GiB),
            invite_pending_files=r.integer("INVITE_PENDING_FILES", 200, low=1, high=10**6),
            invite_pending_bytes=r.size("INVITE_PENDING_BYTES", 100 * GiB),
            invite_pending_files_per_address=r.integer("INVITE_PENDING_FILES_PER_ADDRESS", 1000, low=1, high=10**7),
            invite_pending_bytes_per_address=r.size("INVITE_PENDING_BYTES_PER_ADDRESS", 200 * GiB),
            min_free_space=0 if r.text("MIN_FREE_SPACE", "") == "0" else r.size("MIN_FREE_SPACE", 1 * GiB),
            notify_settle_seconds=r.number("NOTIFY_SETTLE_SECONDS", 300.0, low=0.01),
            notify_check_seconds=r.number("NOTIFY_CHECK_SECONDS", 60.0, low=0.01),
        )


class _Reader:
    """Typed access to raw strings; every failure names its variable."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env

    def text(self, name: str, default: str) -> str:
        value = self.env.get(name, "").strip()
        return value if value else default

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in allowed:
            raise ConfigError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
        return value

    def secret(self, name: str) -> str:
        path = self.env.get(f"{name}_FILE", "").strip()
        if path:
            try:
                return Path(path).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"{name}_FILE: cannot read {path!r} ({exc.strerror})") from None
        return self.env.get(name, "").strip()

    def boolean(self, name: str, default: bool) -> bool:
        value = self.text(name, "").lower()
        if not value:
            return default
        if value in ("1", "true", "yes", "on"):
            return True
        if value in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name}: {value!r} is not a boolean (use true or false)")

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.text(name, "")
        if not value:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{name}: {value!r} is not a whole number") from None
        if not low <= number <= high:
            raise ConfigError(f"{name}: {number} is outside {low}..{high}")
        return number

    def number(self, name: str, default: float, low: float) -> float:
        value = self.text(name, "")
        if not value:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{name}: {value!r} is not a number") from None
        if number < low:
            raise ConfigError(f"{name}: {number} is below {low}")
        return number

    def size(self, name: str, default: int, low: int = 1) -> int:
        """A byte count: `1048576`, `8MiB`, `8MB`, `2GiB`, `512k`; at least `low`."""
        value = self.text(name, "").replace(" ", "")
        if not value:
            return default
        units = {"": 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": MiB, "mb": 1000**2, "mib": MiB,
                 "g": GiB, "gb": 1000**3, "gib": GiB, "t": 1024 * GiB, "tb": 1000**4, "tib": 1024 * GiB}
        digits = value.rstrip("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        unit = value[len(digits):].lower()
        try:
            number = float(digits)
        except ValueError:
            number = -1
        if unit not in units or number <= 0:
            raise ConfigError(f"{name}: {value!r} is not a size (e.g. 8MiB, 2GiB or a byte count)")
        if int(number * units[unit]) < low:
            raise ConfigError(f"{name}: {value!r} is below the least allowed, {low} bytes")
        return int(number * units[unit])

    def networks(self, name: str) -> tuple:
        value = self.text(name, "")
        nets = []
        for item in filter(None, (part.strip() for part in value.split(","))):
            try:
                nets.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigError(f"{name}: {item!r} is not an IP address or network") from None
        return tuple(nets)


def database_url(url: str) -> str:
    """SQLAlchemy's spelling of a database URL: `postgres://` and `postgresql://` use psycopg 3."""
    if not url:
        return ""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError("DATABASE_URL: expected a URL such as postgresql://user:password@host:5432/immich_drop")
    if scheme in ("postgres", "postgresql", "postgresql+psycopg"):
        return f"postgresql+psycopg://{rest}"
    if scheme == "sqlite":
        return url
    raise ConfigError(f"DATABASE_URL: {scheme!r} is not supported (use postgresql:// or sqlite://)")


def _persistent_secret(data_dir: Path) -> str:
    """Without SESSION_SECRET, keep a random one in DATA_DIR so sessions survive restarts."""
    path = data_dir / "session_secret"
    try:
        if path.is_file():
            return path.read_text().strip()
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(value)
        return value
    except FileExistsError:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigError(f"DATA_DIR: cannot keep a session secret in {str(data_dir)!r} ({exc.strerror}); set SESSION_SECRET") from None
