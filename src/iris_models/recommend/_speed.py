"""Decode speed from a roofline: generating a token streams the weights it uses and the K/V
cache once, so

    tokens_per_s = efficiency * memory_bandwidth / bytes_per_token
    bytes_per_token = weights - token_embd (a row lookup; counted when the output matrix is
                      tied to it) - the experts a token skips (MoE) + the K/V cache at the
                      requested context

``efficiency`` is 0.7 against bandwidth measured on the device (a multi-threaded read, which
llama.cpp's matrix-vector kernels approach but do not reach) and 0.5 against a datasheet
peak (which no CPU cluster reaches); both are assumptions to calibrate with real decode
runs. Where the catalog gives tokens per second for the backend and device class, that
figure is a prior: the estimate is the geometric mean of the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

from .._frozen import builder
from ..device import DeviceProfile
from ..shape import ModelShape

__all__ = [
    "EFFICIENCY_MEASURED",
    "EFFICIENCY_SPEC",
    "DeviceBandwidth",
    "SpeedEstimate",
    "bytes_per_token",
    "decode_tokens_per_s",
    "device_bandwidth",
    "estimate_speed",
    "speed_from",
]

EFFICIENCY_MEASURED = 0.7
EFFICIENCY_SPEC = 0.5


@dataclass(frozen=True)
class SpeedEstimate:
    """Expected decode tokens per second, with where the figure came from."""

    tokens_per_s: float
    source: str
    """``roofline``, ``catalog`` or ``roofline+catalog``."""
    roofline_tokens_per_s: float | None = None
    catalog_tokens_per_s: float | None = None
    bandwidth_bytes_per_s: int | None = None
    """The roofline's inputs, None without a roofline: the device's memory bandwidth, ..."""
    bandwidth_source: str | None = None
    """... where that figure came from (``measured``, ``spec``, ...), ..."""
    efficiency: float | None = None
    """... the share of it a decode reaches, ..."""
    bytes_per_token: int | None = None
    """... the bytes read per token, ..."""
    bytes_per_token_from: str | None = None
    """... and what they were worked out from (``header`` or ``file size``)."""

    @property
    def inputs(self) -> dict[str, Any]:
        """The figures the estimate used, by name, for ``explain``."""
        inputs: dict[str, Any] = {}
        if self.roofline_tokens_per_s is not None:
            inputs["bandwidth_bytes_per_s"] = self.bandwidth_bytes_per_s
            inputs["bandwidth_source"] = self.bandwidth_source
            inputs["efficiency"] = self.efficiency
            inputs["bytes_per_token"] = self.bytes_per_token
            inputs["bytes_per_token_from"] = self.bytes_per_token_from
        if self.catalog_tokens_per_s is not None:
            inputs["catalog_tokens_per_s"] = self.catalog_tokens_per_s
        return inputs

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokens_per_s": round(self.tokens_per_s, 2),
            "source": self.source,
            "roofline_tokens_per_s": _rounded(self.roofline_tokens_per_s),
            "catalog_tokens_per_s": self.catalog_tokens_per_s,
            "inputs": self.inputs,
        }


_new_speed = builder(SpeedEstimate)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def bytes_per_token(shape: ModelShape, kv_cache_bytes: int) -> int:
    weights = shape.weights_bytes - shape.token_embedding_bytes
    if shape.tied_output:
        weights += shape.token_embedding_bytes  # the output matrix is the embedding table
    if shape.expert_bytes and shape.expert_count and shape.expert_used_count:
        skipped = 1 - shape.expert_used_count / shape.expert_count
        weights -= int(shape.expert_bytes * skipped)
    return max(weights, 1) + kv_cache_bytes


def estimate_speed(
    shape: ModelShape | None,
    device: DeviceProfile,
    *,
    kv_cache_bytes: int = 0,
    catalog_prior: float | None = None,
    file_size_bytes: int | None = None,
) -> SpeedEstimate | None:
    """The decode speed of `shape` on `device`, or None with neither a bandwidth and a size
    nor a catalog figure to go on. Without a shape, `file_size_bytes` stands in for the
    bytes read per token (the K/V cache then left out)."""
    if shape is not None:
        per_token: int | None = bytes_per_token(shape, kv_cache_bytes)
        basis = "header"
    else:
        per_token, basis = file_size_bytes, "file size"
    return speed_from(per_token, basis, catalog_prior, device_bandwidth(device))


class DeviceBandwidth(NamedTuple):
    """The roofline's inputs that come from the device."""

    bytes_per_s: int
    source: str
    efficiency: float


def device_bandwidth(device: DeviceProfile) -> DeviceBandwidth | None:
    """`device`'s memory bandwidth, where that figure came from and the efficiency that goes
    with it, or None without a bandwidth. Worked out once per device when many models are
    assessed on it."""
    bandwidth = device.memory.bandwidth_bytes_per_s
    if not bandwidth:
        return None
    source = device.memory.bandwidth_source
    efficiency = EFFICIENCY_MEASURED if source == "measured" else EFFICIENCY_SPEC
    return DeviceBandwidth(bandwidth, source or "unknown", efficiency)


def decode_tokens_per_s(
    per_token: int | None, catalog_prior: float | None, bandwidth: DeviceBandwidth | None
) -> float | None:
    """The figure :func:`speed_from`'s estimate gives (it calls this), without the
    estimate: ranking a catalog needs only the figure."""
    if not per_token or bandwidth is None:
        return catalog_prior
    bytes_per_s, _, efficiency = bandwidth
    roofline = efficiency * bytes_per_s / per_token
    return roofline if catalog_prior is None else math.sqrt(roofline * catalog_prior)


def speed_from(
    per_token: int | None,
    basis: str,
    catalog_prior: float | None,
    bandwidth: DeviceBandwidth | None,
) -> SpeedEstimate | None:
    """:func:`estimate_speed` once the bytes read per token (and what they came from) and
    the device's :func:`device_bandwidth` are known."""
    tokens_per_s = decode_tokens_per_s(per_token, catalog_prior, bandwidth)
    if tokens_per_s is None:
        return None
    if not per_token or bandwidth is None:
        return _new_speed(
            catalog_prior,  # tokens_per_s
            "catalog",  # source
            None,  # roofline_tokens_per_s
            catalog_prior,  # catalog_tokens_per_s
            None,  # bandwidth_bytes_per_s
            None,  # bandwidth_source
            None,  # efficiency
            None,  # bytes_per_token
            None,  # bytes_per_token_from
        )
    bytes_per_s, source, efficiency = bandwidth
    roofline = decode_tokens_per_s(per_token, None, bandwidth)
    return _new_speed(
        tokens_per_s,  # tokens_per_s
        "roofline" if catalog_prior is None else "roofline+catalog",  # source
        roofline,  # roofline_tokens_per_s
        catalog_prior,  # catalog_tokens_per_s
        bytes_per_s,  # bandwidth_bytes_per_s
        source,  # bandwidth_source
        efficiency,  # efficiency
        per_token,  # bytes_per_token
        basis,  # bytes_per_token_from
    )
