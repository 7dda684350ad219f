"""A file's first bytes, checked against what its name says before any of them is written.

Immich v3.1.0 checks only a file's extension: a text file named `notes.jpg` becomes an "image"
asset with no thumbnail in the owner's album and timeline, and the guest hears "done".
`first_bytes(receive, want)` reads the first body messages of the PATCH that brings the last of a
file's first bytes until it holds `want` bytes (or the body ends), and returns them with a
`receive` that hands the same messages to tuspyserver again, then the rest. `media.matches_name` says whether they fit the name.
"""

from __future__ import annotations

DISCONNECT = {"type": "http.disconnect"}


async def first_bytes(receive, want: int):
    """(`want` first bytes of the body or fewer if it is shorter, a receive that replays what was
    read). None for the bytes when the client went away first: the replay then holds only the
    disconnect, so not a byte of an unchecked start is written (its PATCH at offset 0 comes again)."""
    messages, head = [], b""
    while len(head) < want:
        message = await receive()
        if message["type"] != "http.request":
            return None, _replay([DISCONNECT], receive)
        messages.append(message)
        head += message.get("body", b"")[: want - len(head)]
        if not message.get("more_body", False):
            break
    return head, _replay(messages, receive)


def _replay(messages: list[dict], receive):
    async def again():
        return messages.pop(0) if messages else await receive()

    return again
