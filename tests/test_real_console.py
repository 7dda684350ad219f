"""Against the real Immich v3.1.0 peer (tests/peer.py): a link set to "review before the timeline"
delivers its files archived, still in the link's album, with the key minted at sign-in
(INVITE_PERMISSIONS: nothing more). What Immich then holds is asked of Immich itself. Skipped, with
the reason, when the peer is absent.
"""

from __future__ import annotations

import os

from conftest import MEDIA, Admin, invite_token
from immich_drop.accounts import INVITE_PERMISSIONS
from peer import unique_copy


def test_review_links_deliver_archived_into_the_album_with_the_least_key(make_real_drop, peer, tmp_path):
    real_drop = make_real_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    admin = Admin(real_drop.url)
    assert admin.login(email=peer.OWNER_EMAIL, password=peer.OWNER_PASSWORD).status_code == 200
    album = "Drop review " + os.urandom(3).hex()
    review = admin.invite(title="Review", album={"name": album}, archive=True)
    straight = admin.invite(title="Straight")
    guest = real_drop.guest()
    held = unique_copy(MEDIA / "exif_offset.jpg", tmp_path / "held.jpg")
    shown = unique_copy(MEDIA / "no_date.jpg", tmp_path / "shown.jpg")
    first = guest.invite_upload(held, invite_token(review))
    second = guest.invite_upload(shown, invite_token(straight))
    for uid in (first, second):
        assert guest.wait_for(uid, ["done", "duplicate", "failed"], timeout=120)["state"] == "done"

    with peer.session(peer.OWNER_EMAIL, peer.OWNER_PASSWORD) as owner:
        archived = peer.asset(real_drop.upload_row(first).asset_id, owner)
        timeline = peer.asset(real_drop.upload_row(second).asset_id, owner)
        assert archived["visibility"] == "archive" and archived["originalFileName"] == "held.jpg"
        assert timeline["visibility"] == "timeline"
        assert [a["albumName"] for a in peer.albums_of(archived["id"], owner)] == [album]  # in its album, not the timeline
        minted = max((k for k in owner.get("/api-keys").json() if k["name"].startswith("Immich Drop invites")),
                     key=lambda k: k["createdAt"])  # this sign-in's key (earlier runs left theirs)
        assert sorted(minted["permissions"]) == sorted(INVITE_PERMISSIONS)  # archiving asks for nothing more
    admin.close()


def test_a_new_album_named_like_one_the_owner_has_is_that_album(make_real_drop, peer, tmp_path):
    """Two links each made with "New album…" and the same name made two albums of that name in
    Immich, each with part of the photos, which the album list could not tell apart (owner walk)."""
    real_drop = make_real_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    admin = Admin(real_drop.url)
    assert admin.login(email=peer.OWNER_EMAIL, password=peer.OWNER_PASSWORD).status_code == 200
    name = "Drop trip " + os.urandom(3).hex()
    first, second = admin.invite(album={"name": name}), admin.invite(album={"name": name})
    assert first["albumId"] == second["albumId"]
    made = admin.call("POST", "/api/albums", json={"name": name})  # the console's album form too
    assert made.status_code == 201 and made.json()["id"] == first["albumId"]
    guest = real_drop.guest()
    uids = [guest.invite_upload(unique_copy(MEDIA / "exif_offset.jpg", tmp_path / "a.jpg"), invite_token(first)),
            guest.invite_upload(unique_copy(MEDIA / "no_date.jpg", tmp_path / "b.jpg"), invite_token(second))]
    for uid in uids:
        assert guest.wait_for(uid, ["done", "duplicate", "failed"], timeout=120)["state"] == "done"
    with peer.session(peer.OWNER_EMAIL, peer.OWNER_PASSWORD) as owner:
        same_name = [a for a in owner.get("/albums").json() if a["albumName"] == name]
        assert [a["id"] for a in same_name] == [first["albumId"]]
        assert owner.get(f"/albums/{first['albumId']}").json()["assetCount"] == 2
    admin.close()


def test_an_album_name_with_control_characters_is_made_as_one_line(make_real_drop, peer):
    """Attack run: Immich refuses a NUL in an album name, and the console said "Immich cannot be
    reached right now" (502), so trying again never helped. Control characters go as spaces."""
    real_drop = make_real_drop(PUBLIC_UPLOAD_PAGE_ENABLED="false")
    admin = Admin(real_drop.url)
    assert admin.login(email=peer.OWNER_EMAIL, password=peer.OWNER_PASSWORD).status_code == 200
    tag = os.urandom(3).hex()
    invite = admin.invite(album={"name": f"Drop\x00{tag}\n"})
    made = admin.call("POST", "/api/albums", json={"name": f"Drop\x07made {tag}"})
    assert made.status_code == 201, made.text
    with peer.session(peer.OWNER_EMAIL, peer.OWNER_PASSWORD) as owner:
        names = {a["id"]: a["albumName"] for a in owner.get("/albums").json()}
    assert (names[invite["albumId"]], names[made.json()["id"]]) == (f"Drop {tag}", f"Drop made {tag}")
    admin.close()
