"""What every network call shares: the offline switch, ``hf://`` URLs, one configured httpx
client (TLS verified, redirects followed, proxies from the environment) and HTTP failures
turned into :class:`~iris_models.errors.NetworkError` with a message that says what to do."""

from __future__ import annotations

import base64
import os
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

from .errors import NetworkError, OfflineError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "ENV_OFFLINE",
    "check_response",
    "display_url",
    "hf_endpoint",
    "is_offline",
    "make_client",
    "network_error",
    "require_online",
    "resolve_url",
    "status_error",
]

ENV_OFFLINE = "IRIS_MODELS_OFFLINE"
DEFAULT_HF_ENDPOINT = "https://huggingface.co"
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 30.0


def is_offline() -> bool:
    """True when IRIS_MODELS_OFFLINE (or HF_HUB_OFFLINE) asks for no network calls at all."""
    return any(
        os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
        for name in (ENV_OFFLINE, "HF_HUB_OFFLINE")
    )


def require_online(what: str, url: str | None = None) -> None:
    if is_offline():
        message = f"cannot {what}: offline mode is on ({ENV_OFFLINE}=1); unset it to go online"
        raise OfflineError(message, url=url)


def hf_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_HF_ENDPOINT).rstrip("/")


def resolve_url(url: str) -> str:
    """An ``hf://owner/repo[@revision]/path`` URL as the Hugging Face endpoint's resolve URL
    (HF_ENDPOINT respected, revision ``main`` by default); other URLs unchanged."""
    parts = urlsplit(url)
    if parts.scheme != "hf":
        return url
    owner = parts.netloc
    repo_and_revision, _, path = parts.path.lstrip("/").partition("/")
    repo, _, revision = repo_and_revision.partition("@")
    if not owner or not repo or not path:
        message = f"{url!r} is not an hf://owner/repo[@revision]/path URL"
        raise ValueError(message)
    return (
        f"{hf_endpoint()}/{owner}/{repo}/resolve/{quote(revision or 'main', safe='')}/"
        f"{quote(path, safe='/')}"
    )


def _auth_headers(url: str) -> dict[str, str]:
    """HTTP Basic for a URL that carries ``user:password@`` (sent to that URL only: a redirect
    elsewhere asks again without them, as curl does), else the user's Hugging Face token,
    sent only to the Hugging Face endpoint."""
    parts = urlsplit(url)
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode("ascii")}
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    if token and parts.netloc == urlsplit(hf_endpoint()).netloc:
        return {"Authorization": f"Bearer {token}"}
    return {}


def display_url(url: str) -> str:
    """`url` fit for a message or a log: a password in it shown as ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user_info, _, host = parts.netloc.rpartition("@")
    user = user_info.partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def make_client(*, timeout_s: float = READ_TIMEOUT_S) -> httpx.Client:
    import httpx

    from . import __version__

    return httpx.Client(
        follow_redirects=True,
        timeout=httpx.Timeout(timeout_s, connect=CONNECT_TIMEOUT_S),
        headers={"User-Agent": f"iris-models/{__version__}"},
    )


def request_headers(url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**_auth_headers(url), **(extra or {})}


def network_error(error: Exception, url: str) -> NetworkError:
    """A NetworkError for an httpx transport failure (no connection, TLS, timeout)."""
    import httpx

    if isinstance(error, httpx.TimeoutException):
        what = "timed out"
    elif isinstance(error, httpx.ConnectError) and "CERTIFICATE" in str(error).upper():
        what = f"TLS certificate check failed ({error})"
    elif isinstance(error, httpx.ConnectError):
        what = f"could not connect ({str(error) or 'connection refused'})"
    elif isinstance(error, httpx.TooManyRedirects):
        what = "too many redirects"
    else:
        what = f"failed: {str(error) or type(error).__name__}"
    return NetworkError(f"request to {display_url(url)} {what}", url=url)


_STATUS_ADVICE = {
    401: (
        "the server wants credentials: set HF_TOKEN for a gated Hugging Face model, or put "
        "user:password@ in the URL"
    ),
    403: "access denied: accept the model's licence on its page, or check HF_TOKEN",
    404: "not found: check the URL, or the catalog entry that gave it",
    429: "rate limited: try again later",
}


def check_response(response: httpx.Response, url: str) -> None:
    """Raises NetworkError for an error status."""
    if response.status_code >= 400:
        raise status_error(url, response.status_code)


def status_error(url: str, status: int) -> NetworkError:
    """The NetworkError for an HTTP error status, with what to do about it."""
    if status == 401 and urlsplit(url).username is not None:
        advice = "the user and password in the URL were refused: check them"
    else:
        advice = _STATUS_ADVICE.get(status) or (
            "the server failed: try again later" if status >= 500 else "the request was refused"
        )
    message = f"{display_url(url)} answered HTTP {status}: {advice}"
    return NetworkError(message, url=url, status=status)
