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
from dataclasses import dataclass, field
from typing import Any

from .._frozen import frozen
from ..device import DeviceProfile
from ..shape import ModelShape

__all__ = ["EFFICIENCY_MEASURED", "EFFICIENCY_SPEC", "SpeedEstimate", "estimate_speed"]

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
    inputs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tokens_per_s": round(self.tokens_per_s, 2),
            "source": self.source,
            "roofline_tokens_per_s": _rounded(self.roofline_tokens_per_s),
            "catalog_tokens_per_s": self.catalog_tokens_per_s,
            "inputs": dict(self.inputs),
        }


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
    bandwidth = device.memory.bandwidth_bytes_per_s
    roofline = None
    inputs: dict[str, Any] = {}
    if shape is not None:
        per_token: int | None = bytes_per_token(shape, kv_cache_bytes)
        basis = "header"
    else:
        per_token, basis = file_size_bytes, "file size"
    if per_token and bandwidth:
        measured = device.memory.bandwidth_source == "measured"
        efficiency = EFFICIENCY_MEASURED if measured else EFFICIENCY_SPEC
        roofline = efficiency * bandwidth / per_token
        inputs = {
            "bandwidth_bytes_per_s": bandwidth,
            "bandwidth_source": device.memory.bandwidth_source or "unknown",
            "efficiency": efficiency,
            "bytes_per_token": per_token,
            "bytes_per_token_from": basis,
        }
    if catalog_prior is not None:
        inputs["catalog_tokens_per_s"] = catalog_prior
    if roofline is not None and catalog_prior is not None:
        combined = math.sqrt(roofline * catalog_prior)
        return _speed(combined, "roofline+catalog", roofline, catalog_prior, inputs)
    if roofline is not None:
        return _speed(roofline, "roofline", roofline, None, inputs)
    if catalog_prior is not None:
        return _speed(catalog_prior, "catalog", None, catalog_prior, inputs)
    return None


def _speed(
    tokens_per_s: float,
    source: str,
    roofline: float | None,
    catalog: float | None,
    inputs: dict[str, Any],
) -> SpeedEstimate:
    return frozen(
        SpeedEstimate,
        {
            "tokens_per_s": tokens_per_s,
            "source": source,
            "roofline_tokens_per_s": roofline,
            "catalog_tokens_per_s": catalog,
            "inputs": inputs,
        },
    )
