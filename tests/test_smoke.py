from conftest import MEDIA, sha1_of


def test_photo_arrives(drop):
    guest = drop.guest()
    guest.watch()
    uid = guest.upload(MEDIA / "exif_offset.jpg")
    event = guest.wait_for(uid, ["done", "failed", "duplicate"])
    assert event["state"] == "done", event
    [received] = drop.fake.uploads
    assert received.sha1 == sha1_of(MEDIA / "exif_offset.jpg")
