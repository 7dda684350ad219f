"""Drop targets: who may upload, and where their files go.

A drop target answers two questions. `open_for_upload` decides whether bytes may still arrive for it
(checked at creation and at every PATCH). `delivery` says whose Immich library and which album the
received files go to; it holds even after a target closes, so what was received is still delivered.

Now there is one kind, the public page (server key, IMMICH_ALBUM_NAME). Invites add a second kind
behind the same two calls.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .config import Settings
from .models import Upload

PUBLIC = "public"


class TargetClosed(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass(frozen=True)
class Delivery:
    owner: str  # groups the duplicate cache by Immich owner
    api_key: str
    album_name: str


class Targets:
    def __init__(self, settings: Settings):
        self.settings = settings

    def resolve(self, metadata: dict[str, str]) -> tuple[str, str | None]:
        """The (kind, id) a new upload binds to, from its tus metadata; raises TargetClosed."""
        if metadata.get("invite"):
            raise TargetClosed(404, "This upload link is not valid.")
        self.open_for_upload(PUBLIC, None)
        return PUBLIC, None

    def open_for_upload(self, kind: str, target_id: str | None) -> None:
        if kind == PUBLIC and self.settings.public_upload_page_enabled:
            return
        raise TargetClosed(403, "Uploads are not open here.")

    def delivery(self, upload: Upload) -> Delivery:
        key = self.settings.immich_api_key
        owner = "key:" + hashlib.sha256(key.encode()).hexdigest()[:24]
        return Delivery(owner=owner, api_key=key, album_name=self.settings.immich_album_name)
