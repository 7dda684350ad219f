"""The fake Immich's reading of `POST /assets`, done the way Immich's multer storage does it.

Immich (FileUploadInterceptor) streams the file part to disk and feeds a SHA-1 with the same bytes as
they arrive, so its checksum is ready when the last byte is; it does not read the file back. Starlette's
`request.form()` instead hands every socket read to a thread and leaves the hashing to a second pass,
which gave the benchmark a tail after the last byte and a fake far busier than Immich (bench/).

`read_asset_form(request)` returns the text fields in arrival order and the file part's name, size and
SHA-1; the file's bytes go to a temporary file (what Immich pays in disk), written and hashed in
pieces of `PIECE` bytes in a worker thread. Raises `ClientDisconnect` if the client goes away and
`ValueError` for a body that is not multipart/form-data.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

PIECE = 1024 * 1024


@dataclass
class AssetForm:
    order: list[str] = field(default_factory=list)  # every part's name, as they came
    fields: dict[str, str] = field(default_factory=dict)
    file_field: str | None = None
    filename: str | None = None
    size: int = 0
    sha1: str = ""
    sidecar: bytes | None = None  # an XMP sidecar part (`sidecarData`), kept whole (it is small)
    sidecar_name: str | None = None  # the name multer checks: `filename` if that field came before it


async def read_asset_form(request: Request) -> AssetForm:
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or b"boundary" not in options:
        raise ValueError("expected multipart/form-data")
    form = AssetForm()
    digest = hashlib.sha1()
    pending: list[bytes] = []  # file bytes parsed but not yet written
    pending_size = [0]
    part: dict = {}

    def on_part_begin():
        part.clear()
        part.update(headers=[], name=b"", value=b"", data=bytearray(), file=False, sidecar=False)

    def on_header_field(data, start, end):
        part["name"] += data[start:end]

    def on_header_value(data, start, end):
        part["value"] += data[start:end]

    def on_header_end():
        part["headers"].append((part["name"].lower(), part["value"]))
        part["name"] = part["value"] = b""

    def on_headers_finished():
        disposition = next((v for k, v in part["headers"] if k == b"content-disposition"), b"")
        _, params = parse_options_header(disposition)
        part["field"] = params.get(b"name", b"").decode()
        if b"filename" in params and part["field"] == "sidecarData":
            part["sidecar"] = True
            form.sidecar = b""
            form.sidecar_name = form.fields.get("filename") or params[b"filename"].decode()
        elif b"filename" in params and form.file_field is None:
            part["file"] = True
            form.file_field, form.filename = part["field"], params[b"filename"].decode()

    def on_part_data(data, start, end):
        if part["sidecar"]:
            form.sidecar += data[start:end]
        elif part["file"]:
            pending.append(data[start:end])
            pending_size[0] += end - start
            form.size += end - start
        else:
            part["data"] += data[start:end]

    def on_part_end():
        form.order.append(part["field"])
        if not part["file"] and not part["sidecar"]:
            form.fields[part["field"]] = part["data"].decode()

    parser = MultipartParser(options[b"boundary"], {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end})

    with tempfile.TemporaryFile() as sink:
        def store(pieces: list[bytes]) -> None:
            sink.writelines(pieces)
            for piece in pieces:
                digest.update(piece)

        async for chunk in request.stream():
            parser.write(chunk)
            if pending_size[0] >= PIECE:
                batch, pending[:], pending_size[0] = list(pending), [], 0
                await asyncio.to_thread(store, batch)
        parser.finalize()
        if pending:
            await asyncio.to_thread(store, list(pending))
    form.sha1 = digest.hexdigest()
    return form
