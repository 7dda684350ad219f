"""`SecurityHeaders`: the same strict headers on every HTTP response; `HostCheck`: only our host name.

Every answer that does not say otherwise is `Cache-Control: no-store`, static files aside: an error
is the state of a moment (a link turned off, a limit reached), and a browser may keep a 404 or 410
it was given no rule for, and show it again after the owner has turned the link back on.

No inline script or style anywhere in `web/`, so the CSP can forbid them; `connect-src 'self'`
covers the tus endpoint and the status WebSocket on the same origin.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from . import i18n

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# The hashing worker compiles the vendored hash-wasm: WebAssembly, and nothing else, for that script alone.
WORKER_PATH = "/static/hash-worker.js"
WORKER_CSP = CSP.replace("script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'")
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
NO_STORE = (b"cache-control", b"no-store")  # where the answer sets no caching of its own


def same_origin(scheme: str, host: str, origin: str | None, public_base_url: str = "") -> bool:
    """Is a browser's `Origin` this site, as reached (`scheme://host`) or as PUBLIC_BASE_URL names it?

    No Origin means no browser cross-site request: browsers send it on every cross-origin write.
    """
    if not origin:
        return True
    allowed = {f"{scheme}://{host}".lower()}
    if public_base_url:
        parts = urlsplit(public_base_url)
        allowed.add(f"{parts.scheme}://{parts.netloc}".lower())
    return origin.rstrip("/").lower() in allowed


class HostCheck:
    """With PUBLIC_BASE_URL set, only requests for its host are served (DNS rebinding: a page on another
    name that resolves to this server would otherwise be same-origin with it). `/healthz` and `/readyz`
    answer on any host, for health checks that call the container by its address. 421 otherwise."""

    OPEN = ("/healthz", "/readyz")

    def __init__(self, app, public_base_url: str):
        self.app = app
        self.host = urlsplit(public_base_url).netloc.lower().encode() if public_base_url else b""
        self.url = public_base_url.rstrip("/")
        default_port = b":443" if public_base_url.startswith("https") else b":80"
        self.hosts = {self.host, self.host + default_port} if self.host else set()

    async def __call__(self, scope, receive, send):
        if not self.hosts or scope["type"] not in ("http", "websocket") or scope.get("path") in self.OPEN:
            return await self.app(scope, receive, send)
        host = next((v for k, v in scope.get("headers", []) if k == b"host"), b"").lower()
        if host in self.hosts:
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await send({"type": "websocket.close", "code": 4421})
        # read by a person who opened the server by another name (http://localhost:8080 while
        # trying it out): where to go instead, and the setting that says so, in their language
        lang = i18n.choose(next((v for k, v in scope["headers"] if k == b"accept-language"), b"").decode("latin-1"))
        body = i18n.text(lang, "server.wrong_host", url=self.url).encode()
        await send({"type": "http.response.start", "status": 421, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class SecurityHeaders:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        path = scope.get("path", "")
        headers = HEADERS if path.startswith("/static/") else HEADERS + [NO_STORE]
        if path == WORKER_PATH:
            headers = [(b"content-security-policy", WORKER_CSP.encode()), *HEADERS[1:]]

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + [h for h in headers if h[0] not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)
