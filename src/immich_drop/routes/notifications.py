"""The signed-in admin's notification addresses: Apprise URLs, stored sealed like the minted key.

    GET    /api/notifications            → {"urls": [{"index", "shown"}]}   secrets masked by Apprise
    POST   /api/notifications {"url"}    → 201 the same list; 400 with errors.url when Apprise cannot use it
    DELETE /api/notifications/{index}    → the list without that URL; with ?shown=<the listed text>, 409
                                           if the address there is no longer that one
    POST   /api/notifications/test       → 200 {"sent": true}; 400 with no URLs; 502 naming (masked) the
                                           addresses whose service refused it; sent in the owner's stored
                                           language, as their notices are

A URL is never shown back in full: it usually holds a token or password of the service.
"""

from __future__ import annotations

import asyncio
import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..models import aware
from ..notify import MAX_URL_LENGTH, MAX_URLS, account_lang, check_url, refused_by, sample_message, url_problem
from .admin import require_admin
from .errors import ApiError, FieldErrors, json_body


async def _listed(services, account) -> list[dict]:
    urls = services.notifier.urls(account)
    shown = await asyncio.to_thread(lambda: [check_url(u) or "…" for u in urls])
    return [{"index": i, "shown": text} for i, text in enumerate(shown)]


async def urls(request: Request) -> Response:
    services = request.app.state.services
    if request.method == "GET":
        _, account = await require_admin(request)
        return JSONResponse({"urls": await _listed(services, account), "lastFailure": _last_failure(account)},
                            headers={"Cache-Control": "no-store"})
    _, account = await require_admin(request, write=True)
    sent = (await json_body(request)).get("url")
    url = sent.strip() if isinstance(sent, str) else ""
    problem, shown = await asyncio.to_thread(lambda: (url_problem(url), check_url(url))) \
        if url and len(sent) <= MAX_URL_LENGTH else (None, None)
    problem, said = problem or (None, {})
    for _ in range(RETRIES):  # another tab's change came first: its list, read again, with this one added
        current = services.notifier.urls(account)
        bad = FieldErrors()
        if not url:
            bad.add("url", "notify_url_missing", "Paste an Apprise URL, e.g. ntfy://ntfy.sh/my-topic.")
        elif len(sent) > MAX_URL_LENGTH:
            bad.add("url", "text_too_long", f"At most {MAX_URL_LENGTH} characters.", max=MAX_URL_LENGTH)
        elif len(current) >= MAX_URLS:
            bad.add("url", "notify_url_count", f"At most {MAX_URLS} addresses.", max=MAX_URLS)
        elif problem == "notify_url_space":
            bad.add("url", problem, "An address may not contain spaces: Apprise would read two addresses, or two topics.")
        elif problem == "notify_topic_invalid":
            bad.add("url", problem, "The topic of this address would be dropped: an ntfy topic may hold only letters, "
                                    "digits, - and _.")
        elif problem == "notify_url_refused":
            bad.add("url", problem, f"Apprise knows this service but not this address: {said['reason']}", **said)
        elif problem or shown is None:
            bad.add("url", "notify_url_invalid", "Apprise does not know how to send to this URL. For a web address "
                                                 "taking JSON, write json:// or jsons:// instead of http:// or https://.")
        elif url in current or shown.rstrip("/") in {i["shown"].rstrip("/") for i in await _listed(services, account)}:
            # the same service and place, however written ("NTFY://", a trailing slash, which Apprise
            # keeps in a web hook's path: owner walk): each test arrived twice
            bad.add("url", "notify_url_twice", "This address is in the list already.")
        bad.raise_if_any()
        if await _store(services, account, [*current, url]):
            return JSONResponse({"urls": await _listed(services, account)}, status_code=201)
        account = await services.store.get_account(account.user_id)
    raise _changed()


async def remove(request: Request) -> Response:
    services = request.app.state.services
    _, account = await require_admin(request, write=True)
    current = services.notifier.urls(account)
    index = request.path_params["index"]
    if not 0 <= index < len(current):
        raise ApiError(404, "No such notification address.", code="no_such_notification")
    # `shown`, what the owner's tab listed at that index: a tab left open while another removed an
    # address would otherwise remove the one that moved into its place (cold review)
    seen = request.query_params.get("shown")
    if seen is not None and seen != (await asyncio.to_thread(check_url, current[index]) or "…"):
        raise _changed()
    del current[index]
    # not tried again: after another tab's change, this index may name another address
    if not await _store(services, account, current):
        raise _changed()
    listed = await _listed(services, account)
    # the last failure names only addresses still listed: "did not reach X" stood on after X went
    failure = _last_failure(account)
    if failure:
        kept = {item["shown"] for item in listed}
        still = [address for address in failure["addresses"] if address in kept]
        await services.store.set_notify_failed(account.user_id, json.dumps(still) if still else "",
                                               account.notify_failed_at if still else None)
        failure = {**failure, "addresses": still} if still else None
    return JSONResponse({"urls": listed, "lastFailure": failure})


# Each round another change wins, and a list holds at most MAX_URLS: more rounds can only be more
# removals, a race a person at two tabs does not keep up.
RETRIES = MAX_URLS + 2


async def _store(services, account, urls: list[str]) -> bool:
    """Seal and store `urls` if the account's list is still the one read; True if it was stored."""
    sealed = services.notifier.seal(urls)
    if not await services.store.set_notify_urls(account.user_id, sealed, account.notify_urls_enc):
        return False
    account.notify_urls_enc = sealed
    return True


def _last_failure(account) -> dict | None:
    """The last notification's addresses that did not take it (as listed), and when; None once one
    reached them all."""
    if not account.notify_failed or account.notify_failed_at is None:
        return None
    return {"at": aware(account.notify_failed_at).isoformat(), "addresses": json.loads(account.notify_failed)}


def _changed() -> ApiError:
    return ApiError(409, "The list was changed meanwhile, in another tab or window. Look at it again.",
                    code="notification_list_changed")


async def test(request: Request) -> Response:
    services = request.app.state.services
    _, account = await require_admin(request, write=True)
    current = services.notifier.urls(account)
    if not current:
        raise ApiError(400, "Add a notification address first.", code="notification_missing")
    listed = await _listed(services, account)  # named from the list sent to (another tab may change it)
    testing = services.notifier.testing
    if account.user_id in testing:  # a second click, or a script: Apprise's threads are for everyone
        raise ApiError(429, "A test message is still on its way. Wait for its answer.", code="notification_testing")
    testing.add(account.user_id)
    try:
        failed = await refused_by(current, *sample_message(account_lang(account)))  # in the owner's notices' language
    finally:
        testing.discard(account.user_id)
    if failed:
        shown = [item["shown"] for item in listed if item["index"] in failed]
        raise ApiError(502, f"These addresses did not accept the test message: {', '.join(shown)}. Check them.",
                       code="notification_refused", params={"addresses": ", ".join(shown)})
    if account.notify_failed:  # every address took it: the last failure's line goes, as it asks
        await services.store.set_notify_failed(account.user_id, "", None)
    return JSONResponse({"sent": True, "lastFailure": None})


routes = [
    Route("/api/notifications", urls, methods=["GET", "POST"]),
    Route("/api/notifications/test", test, methods=["POST"]),
    Route("/api/notifications/{index:int}", remove, methods=["DELETE"]),
]
