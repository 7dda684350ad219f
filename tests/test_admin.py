"""Admin sign-in (password and API key), sessions, CSRF, rate limits, albums, and who sees what."""

import sqlalchemy as sa

from conftest import Admin


def test_password_login_mints_a_least_privilege_key(drop, fake):
    user_id = fake.add_account("ada@example.org", "correct horse", "Ada")
    admin = Admin(drop.url)
    response = admin.login(email="ada@example.org", password="correct horse")
    assert response.status_code == 200
    assert response.json()["user"] == {"id": user_id, "email": "ada@example.org", "name": "Ada"}
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("drop_admin=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    minted = [perms for key, (owner, perms) in fake.keys.items() if owner == user_id]
    assert minted == [{"asset.upload", "album.read", "album.create", "albumAsset.create"}]
    # Neither the Immich session token nor the minted key ever reaches the browser.
    secrets = list(fake.sessions) + [k for k, (owner, _) in fake.keys.items() if owner == user_id]
    session = admin.http.get("/api/session")
    for text in (response.text, cookie, session.text):
        assert not any(secret in text for secret in secrets)
    assert session.json()["keyValid"] is True
    # ...and the key is sealed at rest.
    with drop.services.store.engine.connect() as conn:
        stored = conn.execute(sa.text("select api_key_enc from account")).scalar_one()
    assert not any(secret in stored for secret in secrets)
    admin.close()


def test_api_key_login_for_oauth_accounts(drop, fake):
    user_id = fake.add_account("oidc@example.org", "unused")
    admin = Admin(drop.url)
    assert admin.login(apiKey="not-a-key").status_code == 401
    weak = fake.key_for(user_id, permissions=("user.read", "asset.upload"))
    refused = admin.login(apiKey=weak)
    assert refused.status_code == 403 and "apiKey.create" in refused.json()["message"]
    strong = fake.key_for(user_id, permissions=("all",))
    assert admin.login(apiKey=strong).status_code == 200
    assert admin.http.get("/api/session").json()["user"]["id"] == user_id
    admin.close()


def test_each_sign_in_remembers_the_admins_language(drop, fake):
    """For their notifications: the console's choice, else the browser's Accept-Language, else English."""
    fake.add_account("ada@example.org", "correct horse")
    credentials = {"email": "ada@example.org", "password": "correct horse"}

    def stored() -> str | None:
        with drop.services.store.engine.connect() as conn:
            return conn.execute(sa.text("select lang from account")).scalar_one()

    with Admin(drop.url) as admin:
        for lang in ("klingon", "DE", 7, ["de"]):  # not one of our seven: refused, not a 500
            refused = admin.http.post("/api/login", json={**credentials, "lang": lang})
            assert refused.status_code == 400 and refused.json()["code"] == "bad_request", lang
        assert admin.login(**credentials).status_code == 200 and stored() == "en"
        admin.http.headers["Accept-Language"] = "de-AT,de;q=0.9,en;q=0.5"
        assert admin.login(**credentials).status_code == 200 and stored() == "de"
        assert admin.login(**credentials, lang="fr").status_code == 200 and stored() == "fr"  # the console's pick wins


def test_logout_ends_both_sessions(drop, admin_of, fake):
    admin = admin_of(drop)
    [immich_token] = list(fake.sessions)
    assert admin.call("POST", "/api/logout", headers={"X-CSRF-Token": "wrong"}).status_code == 403
    response = admin.call("POST", "/api/logout")
    assert response.status_code == 204 and "Max-Age=0" in response.headers["set-cookie"]
    assert immich_token not in fake.sessions
    assert admin.http.get("/api/session").status_code == 401


def test_session_expiry(drop, admin_of):
    admin = admin_of(drop)
    with drop.services.store.engine.begin() as conn:
        conn.execute(sa.text("update adminsession set expires_at = '2000-01-01 00:00:00'"))
    assert admin.http.get("/api/session").status_code == 401
    assert admin.call("GET", "/api/invites").status_code == 401


def test_forged_cookie_is_no_session(drop, admin_of):
    admin = admin_of(drop)
    value = admin.http.cookies["drop_admin"]
    forged = Admin(drop.url)
    forged.http.cookies.set("drop_admin", value[:-3] + "abc")
    assert forged.http.get("/api/session").status_code == 401
    forged.close()


def test_wrong_passwords_are_rate_limited(drop, fake):
    fake.add_account("ada@example.org", "correct horse")
    admin = Admin(drop.url)
    for _ in range(5):
        assert admin.login(email="ada@example.org", password="wrong").status_code == 401
    limited = admin.login(email="ada@example.org", password="correct horse")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    wait = int(limited.headers["Retry-After"])
    assert limited.json()["params"] == {"wait": wait} and wait > 90
    assert limited.json()["message"] == f"Too many attempts. Try again in {-(-wait // 60)} minutes."
    # Per address too: many accounts from one address.
    for i in range(15):
        admin.login(email=f"other{i}@example.org", password="x")
    assert admin.login(email="fresh@example.org", password="x").status_code == 429
    admin.close()


def test_csrf_and_origin_on_every_change(drop, admin_of):
    admin = admin_of(drop)
    assert admin.http.post("/api/invites", json={"label": "x"}).status_code == 403  # no token
    assert admin.call("POST", "/api/invites", json={"label": "x"}, headers={"X-CSRF-Token": "nope"}).status_code == 403
    assert admin.call("POST", "/api/invites", json={"label": "x"},
                      headers={"Origin": "https://evil.example"}).status_code == 403
    assert admin.call("POST", "/api/invites", content="label=x",
                      headers={"Content-Type": "application/x-www-form-urlencoded"}).status_code == 415
    assert admin.call("POST", "/api/invites", json={"label": "x"}).status_code == 201
    assert admin.http.post("/api/login", json={"email": "a", "password": "b"},
                           headers={"Origin": "https://evil.example"}).status_code == 403


def test_albums(drop, admin_of, fake):
    admin = admin_of(drop)
    created = admin.call("POST", "/api/albums", json={"name": "Wedding"})
    assert created.status_code == 201
    listed = admin.call("GET", "/api/albums").json()
    assert [a["albumName"] for a in listed] == ["Wedding"] and listed[0]["id"] == created.json()["id"]
    assert admin.call("POST", "/api/albums", json={"name": ""}).status_code == 400


def test_each_admin_sees_only_their_own_invites(drop, admin_of):
    ada, bob = admin_of(drop, "ada@example.org"), admin_of(drop, "bob@example.org")
    mine = ada.invite(label="Ada's party")
    assert [i["id"] for i in ada.call("GET", "/api/invites").json()] == [mine["id"]]
    assert bob.call("GET", "/api/invites").json() == []
    for method in ("GET", "PATCH", "DELETE"):
        kwargs = {"json": {"disabled": True}} if method == "PATCH" else {}
        assert bob.call(method, f"/api/invites/{mine['id']}", **kwargs).status_code == 404
    assert bob.call("GET", f"/api/invites/{mine['id']}/uploads").status_code == 404
    assert ada.call("GET", f"/api/invites/{mine['id']}").json()["state"] == "active"


def test_admin_console_is_served(drop):
    page = Admin(drop.url).http.get("/admin")
    assert page.status_code == 200 and "/static/admin/admin.js" in page.text


def login_with_headers(drop, fake, **headers):
    """Sign Ada in to `drop` with extra request headers (as a proxy or a browser would add them)."""
    fake.add_account("ada@example.org", "correct horse")
    with Admin(drop.url) as admin:
        return admin.http.post("/api/login", json={"email": "ada@example.org", "password": "correct horse"},
                               headers=headers)


def test_admin_cookie_is_secure_behind_https(make_drop, fake):
    response = login_with_headers(make_drop(TRUSTED_PROXIES="127.0.0.1/32"), fake, **{"X-Forwarded-Proto": "https"})
    assert response.status_code == 200 and "Secure" in response.headers["set-cookie"]


def test_public_base_url_with_a_path_is_same_origin(make_drop, fake):
    drop = make_drop(PUBLIC_BASE_URL="https://photos.example.org/drop")
    host = {"Host": "photos.example.org"}
    assert login_with_headers(drop, fake, Origin="https://photos.example.org", **host).status_code == 200
    assert login_with_headers(drop, fake, Origin="https://photos.example.org.evil", **host).status_code == 403
