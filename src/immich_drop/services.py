"""`Services`: the long-lived objects one app instance shares, built by the app factory.

Routes reach them as `request.app.state.services`; nothing imports `app` to find them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .accounts import Accounts
from .config import Settings
from .crypto import Box, Hasher
from .events import EventBus, OpenChannels
from .immich import ImmichClient, ImmichUnavailable
from .notify import Notifier
from .pipeline import Pipeline
from .ratelimit import RateLimiter
from .sessions import Sessions
from .store import Store
from .targets import Targets
from .tus.storage import StagingStorage
from .tus.room import Room

# Immich takes these, but not from a guest: an SVG drawing can carry a script, and Immich v3.1.0
# serves the original as it came, inline, to the owner's browser (probe: `<script>` kept, served as
# `image/svg`). Phones and cameras never make one.
NOT_FROM_GUESTS = frozenset({".svg"})
# Used when Immich cannot be asked for its list: Immich v3.1.0's own list, less NOT_FROM_GUESTS.
FALLBACK_MEDIA_TYPES = frozenset(
    ".3fr .3gp .3gpp .ari .arw .avi .avif .bmp .cap .cin .cr2 .cr3 .crw .dcr .dng .erf .fff .flv .gif .heic "
    ".heif .hif .iiq .insp .insv .jp2 .jpe .jpeg .jpg .jxl .k25 .kdc .m2t .m2ts .m4v .mkv .mov .mp4 .mpe .mpeg "
    ".mpg .mpo .mrw .mts .mxf .nef .nrw .orf .ori .pef .png .psd .raf .raw .rw2 .rwl .sr2 .srf .srw .tif .tiff "
    ".ts .vob .webm .webp .wmv .x3f".split()
)


@dataclass
class Services:
    settings: Settings
    store: Store
    immich: ImmichClient
    storage: StagingStorage
    targets: Targets
    sessions: Sessions
    bus: EventBus
    pipeline: Pipeline
    box: Box
    accounts: Accounts
    login_limiter: RateLimiter
    invite_limiter: RateLimiter
    hasher: Hasher
    notifier: Notifier
    channels: OpenChannels = field(default_factory=OpenChannels)
    room: Room | None = None  # the tus guard's: may a new upload start?

    async def media_types(self) -> frozenset[str]:
        """The extensions a guest may send: Immich's list, less NOT_FROM_GUESTS."""
        try:
            return await self.immich.media_types() - NOT_FROM_GUESTS
        except ImmichUnavailable:
            return FALLBACK_MEDIA_TYPES
