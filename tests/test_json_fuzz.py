"""Malformed and hostile JSON at every JSON endpoint: always a 4xx with a message, never a 5xx."""

import json

import pytest

from conftest import invite_token
from immich_drop import i18n

NESTED = b"[" * 1900 + b"]" * 1900  # fits the 4 KiB sign-in limit and is far past any sane depth
HOSTILE = [
    NESTED,
    b'{"a":' * 600 + b"1" + b"}" * 600,
    b"[]", b'"text"', b"null", b"17", b"{", b"", b'{"email": "\xff\xfe"}',
    b'{"email": "\\ud800@example.org", "password": "x"}',
    b'{"password": "\\udfff"}',
    b'{"apiKey": "\\ud83d"}',
    b'{"name": "\\udc00 album"}',
    b'{"label": "\\ud800"}',
    '{"apiKey": "schlüssel€"}'.encode(),
    b'{"apiKey": ["a"], "email": {"x": 1}, "password": 5}',
    b'{"expiresInDays": NaN}', b'{"expiresInDays": Infinity}', b'{"expiresInDays": 1e400}',
    b'{"maxUses": 9223372036854775808}', b'{"maxFiles": 9223372036854775807}',
    b'{"maxFileSize": 99999999999999999999999999}', b'{"maxTotalBytes": -9223372036854775809}',
    b'{"maxUses": 2147483648}',
    b'{"album": {"id": ["a", "b"]}}', b'{"album": {"id": {"nested": 1}}}', b'{"album": {"name": ["x"]}}',
    b'{"album": "Holidays"}', b'{"album": {"name": {"a": 1}}}',
    b'{"expiresAt": "0001-01-01T00:00:00+14:00"}', b'{"expiresAt": "9999-12-31T23:59:59-14:00"}',
    b'{"expiresAt": ["2030-01-01T00:00:00Z"]}', b'{"expiresAt": 12345}',
    b'{"mediaKind": ["all"]}', b'{"disabled": "yes"}', b'{"label": 7}', b'{"password": ["x"]}',
]


@pytest.fixture
def endpoints(make_drop, admin_of):
    drop = make_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    admin = admin_of(drop)
    invite = admin.invite(password="open sesame")
    guest = drop.guest()
    guest.http.get(f"/i/{invite_token(invite)}")
    return drop, [
        (guest.http, "POST", "/api/login", {}),
        (admin.http, "POST", "/api/albums", {"X-CSRF-Token": admin.csrf}),
        (admin.http, "POST", "/api/invites", {"X-CSRF-Token": admin.csrf}),
        (admin.http, "PATCH", f"/api/invites/{invite['id']}", {"X-CSRF-Token": admin.csrf}),
        (guest.http, "POST", f"/api/i/{invite_token(invite)}/unlock", {}),
    ]


def test_hostile_json_gets_a_4xx_with_a_message_everywhere(endpoints):
    drop, targets = endpoints
    for client, method, path, headers in targets:
        for body in HOSTILE:
            response = client.request(method, path, content=body,
                                      headers={"Content-Type": "application/json", **headers})
            assert response.status_code < 500, (path, body[:80], response.status_code, response.text[:200])
            if response.status_code >= 400:
                assert response.json()["message"], (path, body[:80])
        # ...and the endpoint still works afterwards
    assert targets[3][0].request("PATCH", targets[3][2], json={"label": "still fine"},
                                 headers=targets[3][3]).json()["label"] == "still fine"


@pytest.mark.parametrize("body", [NESTED, b'{"email": "\\ud800", "password": "x"}',
                                  b'{"email": "a@b.c", "password": "x", "n": 9223372036854775808}',
                                  b'{"email": "a@b.c", "password": NaN}'])
def test_sign_in_refuses_with_400_and_a_code(drop, body):
    response = drop.guest().http.post("/api/login", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["code"] == "bad_request"
    assert json.dumps(response.json())  # a message a page can show


def test_api_addresses_that_do_not_exist_answer_in_the_api_shape(drop):
    """No route, or a method the route does not take: JSON with a code a page can put in the reader's
    language, as every other API refusal, not Starlette's bare "Not Found"."""
    client = drop.guest().http
    for method, path, status, code in [("GET", "/api/nonexistent", 404, "no_such_address"),
                                       ("GET", "/api/invites/x/y/z", 404, "no_such_address"),
                                       ("DELETE", "/api/login", 405, "method_not_allowed")]:
        response = client.request(method, path)
        assert response.status_code == status, (method, path, response.text)
        body = response.json()
        assert body["code"] == code and body["params"] == {} and body["message"], (method, path, body)
        assert i18n.text("en", f"server.{code}") != f"server.{code}", code  # the page's text for it


def test_an_api_key_that_cannot_be_one_is_refused_in_its_own_words(drop):
    """Owner walk: a key pasted with a stray character ("garbage🙂") answered "The request was not
    understood. Reload the page and try again." It says what is wrong with the key."""
    for key in ("schlüssel", "garbage🙂", "abc def"):
        response = drop.guest().http.post("/api/login", json={"apiKey": key})
        assert response.status_code == 400, key
        assert response.json()["code"] == "api_key_invalid" and response.json()["params"] == {"field": "apiKey"}
