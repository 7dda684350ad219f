"""Two app processes on one PostgreSQL and one shared DATA_DIR behave as one.

An upload created through one is resumed through the other; the two never write one upload at once
(a flock on the shared folder); every upload reaches Immich exactly once; a guest's status channel on
process A hears what process B did (LISTEN/NOTIFY).
"""

import pytest

from conftest import MEDIA, POSTGRES, Guest, Process, free_port, make_file, sha1_of, start_patch, wait_until

pytestmark = pytest.mark.skipif(not POSTGRES, reason="needs PostgreSQL: set TEST_DATABASE_URL (.ci/run does)")
CHUNK = 1024 * 1024  # the storage writes in 1 MiB pieces: half a chunk must reach the disk


@pytest.fixture
def pair(tmp_path, fake, request):
    import psycopg

    name = "replicas_" + tmp_path.name[-12:].replace("-", "_").lower()
    admin = POSTGRES.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {"DATA_DIR": str(tmp_path / "shared"), "DATABASE_URL": admin.rsplit("/", 1)[0] + "/" + name,
           "IMMICH_BASE_URL": fake.url, "IMMICH_API_KEY": fake.add_user(), "IMMICH_ALBUM_NAME": "Guests",
           "PUBLIC_UPLOAD_PAGE_ENABLED": "true", "SESSION_SECRET": "shared-secret", "CHUNK_SIZE": str(CHUNK),
           "HOST": "127.0.0.1", "RETRY_BASE_SECONDS": "0.05", "RETRY_MAX_SECONDS": "0.2"}
    a = Process(env, free_port())
    b = Process(env, free_port())
    yield a, b
    a.stop()
    b.stop()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def patch(guest, url, uid, offset, body):
    return guest.http.patch(f"{url}/api/uploads/{uid}", content=body, headers=guest.tus_headers(**{
        "Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset)}))


def test_two_processes_behave_as_one(pair, fake, tmp_path):
    a, b = pair
    guest_a = Guest(a.url)
    guest_b = Guest(b.url, session=guest_a.session)  # the same browser, sent to another replica
    guest_a.watch()  # the status channel lives on A

    source = make_file(tmp_path / "party.mp4", 3 * CHUNK + 11, seed=21)
    data = source.read_bytes()
    uid = guest_a.create(len(data), "party.mp4").headers["Location"].rsplit("/", 1)[-1]
    assert patch(guest_a, a.url, uid, 0, data[:CHUNK]).status_code == 204

    # A writes the next chunk slowly; B must refuse to write the same upload meanwhile.
    sock = start_patch(a.url, uid, guest_a.cookie, 2 * CHUNK, offset=CHUNK)
    sock.sendall(data[CHUNK:2 * CHUNK + CHUNK // 2])
    staged = tmp_path / "shared" / "uploads" / uid
    head = lambda: int(guest_b.http.head(f"/api/uploads/{uid}", headers=guest_b.tus_headers()).headers["Upload-Offset"])  # noqa: E731
    wait_until(lambda: staged.stat().st_size > CHUNK, what="A writing")
    assert patch(guest_b, b.url, uid, CHUNK, data[CHUNK:CHUNK + 10]).status_code == 423
    sock.sendall(data[2 * CHUNK + CHUNK // 2:3 * CHUNK])
    assert sock.recv(4096).startswith(b"HTTP/1.1 204")
    sock.close()

    # B sees A's bytes and finishes the upload; B delivers it; A's status channel hears it.
    assert head() == 3 * CHUNK
    assert patch(guest_b, b.url, uid, 3 * CHUNK, data[3 * CHUNK:]).status_code == 204
    assert guest_a.wait_for(uid, ["done", "failed"])["state"] == "done"

    # More uploads, alternating replicas: each reaches Immich exactly once.
    ids = []
    for i, name in enumerate(["exif_offset.jpg", "exif_no_offset.jpg", "no_date.jpg", "creation_time.mp4"]):
        ids.append((guest_a if i % 2 else guest_b).upload(MEDIA / name))
    for other in ids:
        assert guest_a.wait_for(other, ["done", "failed"])["state"] == "done"
    sha1s = [r.sha1 for r in fake.uploads]
    assert len(sha1s) == 5 and len(set(sha1s)) == 5 and sha1_of(source) in sha1s
    assert fake.upload_bodies == 5  # not sent twice and answered "duplicate" the second time
    guest_a.close()
    guest_b.close()
