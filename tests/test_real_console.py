"""Against the real Immich v3.1.0 peer (../shared/immich/peer/): a link set to "review before the
timeline" delivers its files archived, still in the link's album, with the key minted at sign-in
(INVITE_PERMISSIONS: nothing more). What Immich then holds is
asked of Immich itself. Skipped, with the reason, when the peer is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from conftest import MEDIA, Admin, Drop, ServerThread, invite_token, settings_for
from immich_drop.accounts import INVITE_PERMISSIONS
from immich_drop.app import create_app

ROOT = Path(os.environ.get("IMMICH_PEER_ROOT", "/tmp/immich"))


def _credentials() -> dict[str, str] | None:
    path = ROOT / "CREDENTIALS.txt"
    if not path.is_file():
        return None
    found = {}
    for line in path.read_text().splitlines():
        name, sep, value = line.strip().partition("=")
        if sep and not name.startswith("#"):
            found[name.removeprefix("export ").strip()] = value.strip().strip("'\"")
    return found


@pytest.fixture
def immich():
    """The peer's credentials, or a skip saying why there is none."""
    creds = _credentials()
    if creds is None:
        pytest.skip(f"no Immich peer: {ROOT}/CREDENTIALS.txt is missing (run bash ../shared/immich/peer/setup.sh)")
    try:
        httpx.get(creds["IMMICH_URL"] + "/api/server/ping", timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        pytest.skip(f"the Immich peer does not answer ({type(exc).__name__})")
    return creds


@pytest.fixture
def real_drop(tmp_path, immich):
    settings = settings_for(tmp_path, immich["IMMICH_URL"] + "/api", PUBLIC_UPLOAD_PAGE_ENABLED="false",
                            DATABASE_URL=f"sqlite:///{tmp_path}/state.db", RETRY_BASE_SECONDS="0.5",
                            RETRY_MAX_SECONDS="2", IMMICH_TIMEOUT_SECONDS="60")
    app = create_app(settings)
    drop = Drop(ServerThread(app), app, None, "", settings)
    yield drop
    for guest in drop.guests:
        guest.close()
    drop.server.stop()


def fresh_copy(source: Path, target: Path) -> Path:
    """The JPEG with random bytes after its end marker: new bytes (a new SHA-1) for Immich every run."""
    target.write_bytes(source.read_bytes() + os.urandom(16))
    return target


def test_review_links_deliver_archived_into_the_album_with_the_least_key(real_drop, immich, tmp_path):
    admin = Admin(real_drop.url)
    assert admin.login(email=immich["OWNER_EMAIL"], password=immich["OWNER_PASSWORD"]).status_code == 200
    album = "Drop review " + os.urandom(3).hex()
    review = admin.invite(title="Review", album={"name": album}, archive=True)
    straight = admin.invite(title="Straight")
    guest = real_drop.guest()
    held = fresh_copy(MEDIA / "exif_offset.jpg", tmp_path / "held.jpg")
    shown = fresh_copy(MEDIA / "no_date.jpg", tmp_path / "shown.jpg")
    first = guest.invite_upload(held, invite_token(review))
    second = guest.invite_upload(shown, invite_token(straight))
    for uid in (first, second):
        assert guest.wait_for(uid, ["done", "duplicate", "failed"], timeout=120)["state"] == "done"

    token = httpx.post(immich["IMMICH_URL"] + "/api/auth/login", timeout=30,
                       json={"email": immich["OWNER_EMAIL"], "password": immich["OWNER_PASSWORD"]}).json()["accessToken"]
    with httpx.Client(base_url=immich["IMMICH_URL"] + "/api", headers={"Authorization": f"Bearer {token}"},
                      timeout=60) as owner:
        archived = owner.get(f"/assets/{real_drop.upload_row(first).asset_id}").json()
        timeline = owner.get(f"/assets/{real_drop.upload_row(second).asset_id}").json()
        assert archived["visibility"] == "archive" and archived["originalFileName"] == "held.jpg"
        assert timeline["visibility"] == "timeline"
        albums = owner.get("/albums", params={"assetId": archived["id"]}).json()
        assert [a["albumName"] for a in albums] == [album]  # in its album though not in the timeline
        minted = max((k for k in owner.get("/api-keys").json() if k["name"] == "Immich Drop invites"),
                     key=lambda k: k["createdAt"])  # this sign-in's key (earlier runs left theirs)
        assert sorted(minted["permissions"]) == sorted(INVITE_PERMISSIONS)  # archiving asks for nothing more
    admin.close()
