"""GGUF headers of remote files, read with HTTP range requests that grow until the header
parses (never the tensor data), and the shapes taken from them, cached on disk by URL and
digest so a recommendation needs the network once per model."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _http
from ..errors import GGUFError, GGUFNeedMoreDataError, NetworkError
from ..shape import ModelShape

if TYPE_CHECKING:
    import httpx

    from ..catalog import ModelDescriptor
    from ..gguf import GGUFFile

__all__ = [
    "FIRST_FETCH_BYTES",
    "MAX_HEADER_BYTES",
    "RemoteHeader",
    "cached_shape",
    "fetch_header",
    "fetch_shape",
]

FIRST_FETCH_BYTES = 1 << 20
MAX_HEADER_BYTES = 256 << 20  # the largest vocabularies give headers of tens of MB
MAX_REQUESTS = 64
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class RemoteHeader:
    """A remote file's parsed header and what fetching it cost."""

    model: GGUFFile
    url: str
    file_size: int | None
    etag: str | None
    bytes_fetched: int
    requests: int


def fetch_header(
    url: str,
    *,
    client: httpx.Client | None = None,
    first_bytes: int = FIRST_FETCH_BYTES,
    max_bytes: int = MAX_HEADER_BYTES,
) -> RemoteHeader:
    """Fetches the first bytes of a remote GGUF file until its header parses.

    Each round asks for the missing bytes only (``Range: bytes=have-want``), with ``want``
    at least doubling, so a 6.5 MB header costs four requests and about 8 MB. A server that
    ignores ranges is read as a stream and closed once the header is complete.
    """
    _http.require_online("fetch a GGUF header", url)
    resolved = _http.resolve_url(url)
    own_client = client is None
    active = client if client is not None else _http.make_client()
    try:
        return _fetch(active, resolved, first_bytes, max_bytes)
    finally:
        if own_client:
            active.close()


def _fetch(client: httpx.Client, url: str, first_bytes: int, max_bytes: int) -> RemoteHeader:
    import httpx

    from .. import gguf

    buffer = bytearray()
    want = first_bytes
    requests = 0
    file_size: int | None = None
    etag: str | None = None
    while True:
        headers = _http.request_headers(url, {"Range": f"bytes={len(buffer)}-{want - 1}"})
        if etag and buffer:
            headers["If-Range"] = etag  # a file replaced between rounds must not be stitched
        requests += 1
        try:
            with client.stream("GET", url, headers=headers) as response:
                _http.check_response(response, url)
                if response.status_code == 206:
                    start, total = _content_range(response, url)
                    if start != len(buffer):
                        message = f"{url}: asked for bytes from {len(buffer)}, got from {start}"
                        raise NetworkError(message, url=url)
                    file_size = total if total is not None else file_size
                    etag = etag or response.headers.get("ETag")
                    for chunk in response.iter_bytes():
                        buffer += chunk
                        if len(buffer) >= want:
                            break
                else:  # 200: no ranges; read the stream from the start as far as needed
                    header_length = response.headers.get("Content-Length")
                    file_size = int(header_length) if header_length else None
                    etag = response.headers.get("ETag")
                    return _parse_stream(response, url, file_size, etag, max_bytes, requests)
        except httpx.HTTPError as error:
            raise _http.network_error(error, url) from None
        try:
            model = gguf.parse(bytes(buffer), file_size=file_size, name=url)
        except GGUFNeedMoreDataError as error:
            # A short answer is the end of the file unless the size says there is more.
            ended = len(buffer) >= file_size if file_size is not None else len(buffer) < want
            if ended:
                message = f"{url}: the file ends before its GGUF header does"
                raise GGUFError(message, path=url) from None
            if requests >= MAX_REQUESTS:
                message = f"{url}: the header was not complete after {requests} requests"
                raise NetworkError(message, url=url) from None
            want = _next_fetch_end(error, len(buffer), max_bytes, url)
            continue
        return RemoteHeader(model, url, file_size, etag, len(buffer), requests)


def _next_fetch_end(error: GGUFNeedMoreDataError, have: int, max_bytes: int, url: str) -> int:
    """How far the next round reads: at least what the parser needs, at least twice what is
    in hand (so a large vocabulary costs a few rounds, not one per token), at most
    `max_bytes`."""
    want = max(error.bytes_needed, 2 * have)
    if want > max_bytes:
        message = f"{url}: the GGUF header is over {max_bytes >> 20} MiB; not fetched"
        raise GGUFError(message, path=url) from None
    return want


def _parse_stream(
    response: httpx.Response,
    url: str,
    file_size: int | None,
    etag: str | None,
    max_bytes: int,
    requests: int,
) -> RemoteHeader:
    from .. import gguf

    buffer = bytearray()
    want = FIRST_FETCH_BYTES
    for chunk in response.iter_bytes():
        buffer += chunk
        if len(buffer) < want:
            continue
        try:
            model = gguf.parse(bytes(buffer), file_size=file_size, name=url)
        except GGUFNeedMoreDataError as error:
            want = _next_fetch_end(error, len(buffer), max_bytes, url)
            continue
        return RemoteHeader(model, url, file_size, etag, len(buffer), requests)
    model = gguf.parse(bytes(buffer), file_size=file_size or len(buffer), name=url)
    return RemoteHeader(model, url, file_size, etag, len(buffer), requests)


def _content_range(response: httpx.Response, url: str) -> tuple[int, int | None]:
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    if match is None:
        message = f"{url}: a 206 answer without a valid Content-Range"
        raise NetworkError(message, url=url)
    total = match.group(3)
    return int(match.group(1)), (None if total == "*" else int(total))


def _cache_path(cache_dir: Path, model: ModelDescriptor) -> Path:
    identity = "|".join(f"{spec.url}#{spec.sha256 or ''}" for spec in model.files)
    key = hashlib.sha256(identity.encode()).hexdigest()[:24]
    return cache_dir / "headers" / f"{key}.json"


def cached_shape(model: ModelDescriptor, cache_dir: Path) -> ModelShape | None:
    """The shape cached for `model`'s files, if a header was fetched before."""
    try:
        data = json.loads(_cache_path(cache_dir, model).read_text(encoding="utf-8"))
        return ModelShape.from_dict(data["shape"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def fetch_shape(
    model: ModelDescriptor, cache_dir: Path, *, client: httpx.Client | None = None
) -> ModelShape:
    """Fetches the headers of `model`'s GGUF files (all shards), and caches the shape."""
    parts = [spec for spec in model.files if spec.role in ("model", "shard")]
    headers = [fetch_header(spec.url, client=client) for spec in parts]
    try:
        shape = ModelShape.from_gguf(headers[0].model)
    except ValueError as error:
        message = f"{headers[0].url}: {error}"
        raise GGUFError(message, path=headers[0].url) from None
    for header in headers[1:]:
        shape = add_shard_tensors(shape, header.model)
    path = _cache_path(cache_dir, model)
    path.parent.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "model_id": model.id,
        "urls": [spec.url for spec in parts],
        "fetched_at": time.time(),
        "bytes_fetched": sum(header.bytes_fetched for header in headers),
        "shape": shape.to_dict(),
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(record), encoding="utf-8")
    temporary.replace(path)
    return shape


def add_shard_tensors(shape: ModelShape, shard: GGUFFile) -> ModelShape:
    """`shape` with the tensors of another shard of the same model added."""
    weights = token_embedding = expert = parameters = 0
    for tensor in shard.tensors:
        size = tensor.nbytes or 0
        weights += size
        parameters += tensor.n_elements
        token_embedding += size if tensor.name.startswith("token_embd.") else 0
        expert += size if "_exps" in tensor.name else 0
    has_output = any(tensor.name.startswith("output.") for tensor in shard.tensors)
    return dataclasses.replace(
        shape,
        weights_bytes=shape.weights_bytes + weights,
        token_embedding_bytes=shape.token_embedding_bytes + token_embedding,
        expert_bytes=shape.expert_bytes + expert,
        parameter_count=shape.parameter_count + parameters,
        tensor_count=shape.tensor_count + len(shard.tensors),
        header_bytes=shape.header_bytes + shard.data_offset,
        tied_output=shape.tied_output and not has_output,
    )
