"""Remote GGUF headers (recommend.fetch_header / fetch_shape) read from a real local HTTP server
by range requests that grow until the header parses: ranges ignored, files replaced between
rounds, truncated files, offline mode, hf:// URLs and the shape cache."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from tests.gguf_py_files import VT, tiny_gguf, write_gguf
from tests.servers.http_server import HTTPTestServer

from iris_models import gguf
from iris_models.catalog import read_catalog
from iris_models.errors import GGUFError, NetworkError, OfflineError
from iris_models.recommend import cached_shape, fetch_header, fetch_shape
from iris_models.shape import ModelShape

pytestmark = pytest.mark.usefixtures("clean_network_environment")


TOKENS = [f"token{i:06d}" for i in range(20_000)]


@pytest.fixture(scope="module")
def big_gguf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A GGUF file with a header of about 340 kB (a large vocabulary) and 4 MiB of data."""
    path = write_gguf(
        tmp_path_factory.mktemp("gguf") / "model.gguf",
        [
            ("llama.block_count", 2, VT.UINT32, None),
            ("llama.embedding_length", 64, VT.UINT32, None),
            ("llama.attention.head_count", 4, VT.UINT32, None),
            ("llama.context_length", 512, VT.UINT32, None),
            ("tokenizer.ggml.model", "llama", VT.STRING, None),
            ("tokenizer.ggml.tokens", TOKENS, VT.ARRAY, VT.STRING),
        ],
        [("token_embd.weight", np.zeros((1024, 1024), dtype=np.float32), None)],
    )
    return path.read_bytes()


def header_size(data: bytes) -> int:
    return gguf.parse(data).data_offset


def test_remote_header_is_read_with_growing_contiguous_ranges_and_if_range(
    server: HTTPTestServer, big_gguf: bytes
):
    url = server.serve("/model.gguf", big_gguf, etag='"g1"')
    header = fetch_header(url, first_bytes=4096)
    assert list(header.model.metadata["tokenizer.ggml.tokens"]) == TOKENS
    assert header.file_size == len(big_gguf)
    assert header.etag == '"g1"'
    assert header_size(big_gguf) <= header.bytes_fetched < len(big_gguf) // 4
    requests = server.requests("/model.gguf")
    assert header.requests == len(requests) >= 3
    spans = [
        tuple(map(int, r.headers["range"].removeprefix("bytes=").split("-"))) for r in requests
    ]
    assert spans[0] == (0, 4095)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start == end + 1  # each round asks only for the bytes still missing
    lengths = [end + 1 for _, end in spans]
    assert all(later >= 2 * earlier for earlier, later in itertools.pairwise(lengths))
    assert "if-range" not in requests[0].headers
    assert all(r.headers["if-range"] == '"g1"' for r in requests[1:])


def test_remote_header_from_a_server_that_ignores_ranges(server: HTTPTestServer, big_gguf: bytes):
    url = server.serve("/model.gguf", big_gguf, ranges=False)
    header = fetch_header(url, first_bytes=4096)
    assert list(header.model.metadata["tokenizer.ggml.tokens"]) == TOKENS
    assert (header.requests, header.file_size) == (1, len(big_gguf))
    assert header_size(big_gguf) <= header.bytes_fetched < len(big_gguf)
    assert server.count() == 1


def test_remote_header_restarts_when_if_range_says_the_file_changed(
    tmp_path: Path, server: HTTPTestServer, big_gguf: bytes
):
    # The file is replaced right after the first answer: If-Range then gets the whole new
    # file (200), and the header must come from it, not be stitched onto the old bytes.
    url = server.serve("/model.gguf", big_gguf, etag='"old"')
    replacement = tiny_gguf(tmp_path / "new.gguf", "replacement").read_bytes()

    def replace_file(response: httpx.Response) -> None:
        server.serve("/model.gguf", replacement, etag='"new"')

    with httpx.Client(event_hooks={"response": [replace_file]}) as client:
        header = fetch_header(url, client=client, first_bytes=4096)
    assert header.model.metadata["general.name"] == "replacement"
    assert (header.file_size, header.etag, header.requests) == (len(replacement), '"new"', 2)
    assert server.requests("/model.gguf")[1].headers["if-range"] == '"old"'


@pytest.mark.parametrize("ranges", [True, False], ids=["ranges", "no-ranges"])
def test_a_file_that_ends_inside_its_header_raises_gguf_error(
    server: HTTPTestServer, big_gguf: bytes, ranges: bool
):
    url = server.serve("/cut.gguf", big_gguf[: header_size(big_gguf) // 2], ranges=ranges)
    with pytest.raises(GGUFError):
        fetch_header(url, first_bytes=4096)


def test_an_http_error_is_a_network_error_with_the_status(server: HTTPTestServer):
    with pytest.raises(NetworkError) as caught:
        fetch_header(server.url("/missing.gguf"))
    assert caught.value.status == 404


def test_remote_header_offline_raises_offline_error_without_a_request(
    server: HTTPTestServer, big_gguf: bytes, monkeypatch: pytest.MonkeyPatch
):
    url = server.serve("/model.gguf", big_gguf)
    monkeypatch.setenv("IRIS_MODELS_OFFLINE", "1")
    with pytest.raises(OfflineError):
        fetch_header(url)
    assert server.count() == 0


def test_fetch_shape_caches_the_shape_that_cached_shape_returns(
    tmp_path: Path, server: HTTPTestServer, big_gguf: bytes
):
    url = server.serve("/model.gguf", big_gguf, etag='"g1"')
    entry = {"id": "remote-gguf", "name": "Remote", "type": "llm", "downloadUrl": url,
             "deviceRequirements": {"minRAM": 1 << 30}}  # fmt: skip
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"version": "1", "models": {"llm": [entry]}}), encoding="utf-8")
    (model,), _ = read_catalog(path, allow_http=True)
    cache_dir = tmp_path / "cache"
    assert cached_shape(model, cache_dir) is None
    shape = fetch_shape(model, cache_dir)
    assert shape == ModelShape.from_gguf(gguf.parse(big_gguf))
    assert (shape.architecture, shape.block_count, shape.vocab_size) == ("llama", 2, len(TOKENS))
    assert shape.weights_bytes == shape.token_embedding_bytes == 4 << 20
    requests = server.count()
    assert cached_shape(model, cache_dir) == shape
    assert server.count() == requests


def test_hf_header_fetch_goes_to_HF_ENDPOINT_and_only_it_gets_the_token(
    server: HTTPTestServer, big_gguf: bytes, monkeypatch: pytest.MonkeyPatch
):
    path = "/owner/repo/resolve/main/model.gguf"
    server.serve(path, big_gguf)
    monkeypatch.setenv("HF_ENDPOINT", server.base_url)
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    header = fetch_header("hf://owner/repo/model.gguf", first_bytes=1 << 16)
    assert header.url == server.url(path)
    assert all(r.headers["authorization"] == "Bearer hf_test_token" for r in server.requests())
    monkeypatch.setenv("HF_ENDPOINT", "https://huggingface.co")
    before = server.count()
    fetch_header(server.url(path), first_bytes=1 << 16)
    assert all("authorization" not in r.headers for r in server.requests()[before:])
