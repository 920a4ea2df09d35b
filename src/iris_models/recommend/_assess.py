"""One model on one device: the specification's compatibility assessment, with the RAM check
replaced by the memory the model really needs at the asked context whenever its shape is
known; a fit level, a speed estimate, a score and category, and the reasons for each."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..catalog import ModelDescriptor, ModelType
from ..device import DeviceProfile
from ..shape import ModelShape
from ._backends import PREFERENCE, available_backends, optimal_backend
from ._memory import MemoryEstimate, estimate_memory
from ._speed import SpeedEstimate, estimate_speed

__all__ = [
    "DEFAULT_CONTEXT",
    "Category",
    "Fit",
    "Recommendation",
    "assess",
    "memory_budget",
    "rank",
]

DEFAULT_CONTEXT = 4096
# Of total RAM, the share one app can hold: Android's low-memory killer acts well before RAM
# is full; a desktop keeps room for the OS and other programs.
USABLE_RAM_FRACTION = {"android": 0.6}
DEFAULT_USABLE_RAM_FRACTION = 0.85
# need / budget: at most COMFORTABLE leaves room for everything else the device runs.
COMFORTABLE = 0.5
GOOD = 0.75
GiB = 1 << 30

# Relative quality kept by each quantization (1.0 = 16-bit), after llama.cpp's perplexity
# tables; an ordering for ranking, not a measurement of any one model.
QUANT_QUALITY = {
    "F32": 1.0,
    "F16": 1.0,
    "BF16": 1.0,
    "Q8_0": 0.99,
    "Q6_K": 0.97,
    "Q5_K_M": 0.95,
    "Q5_K_S": 0.94,
    "Q5_0": 0.94,
    "Q4_K_M": 0.92,
    "Q4_K_S": 0.9,
    "Q4_0": 0.88,
    "IQ4_XS": 0.9,
    "Q3_K_L": 0.85,
    "Q3_K_M": 0.82,
    "Q3_K_S": 0.78,
    "Q2_K": 0.7,
}
UNKNOWN_QUANT_QUALITY = 0.85


class Category(str, enum.Enum):
    """The specification's recommendation categories, by score: 90, 70, 50."""

    RECOMMENDED = "RECOMMENDED"
    COMPATIBLE = "COMPATIBLE"
    EXPERIMENTAL = "EXPERIMENTAL"
    NOT_RECOMMENDED = "NOT_RECOMMENDED"

    @classmethod
    def for_score(cls, score: int) -> Category:
        if score >= 90:
            return cls.RECOMMENDED
        if score >= 70:
            return cls.COMPATIBLE
        if score >= 50:
            return cls.EXPERIMENTAL
        return cls.NOT_RECOMMENDED


class Fit(str, enum.Enum):
    """How the memory a model needs compares with what the device can give it."""

    COMFORTABLE = "comfortable"  # at most half the budget
    GOOD = "good"  # at most three quarters
    TIGHT = "tight"  # fits, with little left for anything else
    TOO_BIG = "too_big"
    UNKNOWN = "unknown"  # no shape known: judged by the catalog's RAM figures only

    @property
    def rank(self) -> int:
        """Lower is better; COMFORTABLE and GOOD both leave headroom, so they tie."""
        return {"comfortable": 0, "good": 0, "unknown": 1, "tight": 2, "too_big": 3}[self.value]


@dataclass(frozen=True)
class Recommendation:
    """What iris-models makes of one model on one device, and why."""

    model: ModelDescriptor
    category: Category
    score: int
    compatible: bool
    fit: Fit
    context_length: int
    reasons: tuple[str, ...]
    backend: str | None
    memory: MemoryEstimate | None
    memory_budget_bytes: int
    speed: SpeedEstimate | None
    shape_source: str | None
    """Where the model's shape came from: ``installed``, ``header-cache``, ``catalog``, or
    None (only the catalog's RAM figures were used)."""

    @property
    def quality(self) -> float:
        """Parameters (in billions) weighted by what the quantization keeps: bigger and less
        quantized ranks higher."""
        parameters = self.model.parameters or 0
        factor = QUANT_QUALITY.get((self.model.quantization or "").upper(), UNKNOWN_QUANT_QUALITY)
        return parameters / 1e9 * factor

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.model.id,
            "name": self.model.name,
            "type": self.model.type.value,
            "category": self.category.value,
            "score": self.score,
            "compatible": self.compatible,
            "fit": self.fit.value,
            "context_length": self.context_length,
            "backend": self.backend,
            "memory": None if self.memory is None else self.memory.to_dict(),
            "memory_budget_bytes": self.memory_budget_bytes,
            "speed": None if self.speed is None else self.speed.to_dict(),
            "quality": round(self.quality, 4),
            "shape_source": self.shape_source,
            "verified": self.model.verified,
            "reasons": list(self.reasons),
        }


def memory_budget(device: DeviceProfile) -> tuple[int, str]:
    """The bytes one model may use on `device`, and how that figure was reached."""
    fraction = USABLE_RAM_FRACTION.get(device.os.system, DEFAULT_USABLE_RAM_FRACTION)
    budget = int(device.memory.total_bytes * fraction)
    how = f"{fraction:.0%} of {_gib(device.memory.total_bytes)} RAM"
    available = device.memory.available_bytes
    if available is not None and available < budget:
        return available, f"{_gib(available)} free now (of {_gib(device.memory.total_bytes)})"
    return budget, how


def _gib(size: int) -> str:
    return f"{size / GiB:.2f} GiB" if size < 10 * GiB else f"{size / GiB:.1f} GiB"


def _largest_fitting_context(shape: ModelShape, budget: int, ceiling: int) -> int | None:
    """The longest context (a multiple of 256, at least 512) whose estimate fits `budget`."""
    low, high = 2, ceiling // 256  # in units of 256 tokens
    if high < low or estimate_memory(shape, low * 256).total_bytes > budget:
        return None
    while low < high:
        middle = (low + high + 1) // 2
        if estimate_memory(shape, middle * 256).total_bytes <= budget:
            low = middle
        else:
            high = middle - 1
    return low * 256


def assess(
    model: ModelDescriptor,
    device: DeviceProfile,
    *,
    context_length: int = DEFAULT_CONTEXT,
    shape: ModelShape | None = None,
    shape_source: str | None = None,
) -> Recommendation:
    """Assess `model` on `device` at `context_length` tokens. `shape` (else the catalog's
    header facts) drives the memory and speed estimates."""
    if shape is None and model.shape is not None:
        shape, shape_source = model.shape, "catalog"
    reasons: list[str] = []
    score = 100
    compatible = True
    requirements = model.requirements

    trained = (shape.context_length if shape else None) or model.context_size
    trained = trained or model.max_sequence_length
    context = context_length
    if trained and context > trained:
        context = trained
        reasons.append(f"context {context_length} is past the model's {trained}: using {trained}")

    budget, budget_how = memory_budget(device)
    memory = estimate_memory(shape, context) if shape is not None else None
    total_ram = device.memory.total_bytes
    if memory is not None:
        need = memory.total_bytes
        ratio = need / budget if budget else math.inf
        parts = (
            f"weights {_gib(memory.weights_bytes)}, K/V cache {_gib(memory.kv_cache_bytes)}, "
            f"compute {_gib(memory.compute_bytes)}, overhead {_gib(memory.overhead_bytes)}"
        )
        reasons.append(
            f"needs {_gib(need)} at {context} tokens ({parts}); budget {_gib(budget)} "
            f"({budget_how})"
        )
        if ratio > 1:
            compatible = False
            fit = Fit.TOO_BIG
            largest = _largest_fitting_context(shape, budget, context) if shape else None
            if largest:
                reasons.append(f"would fit with a context of {largest} tokens or fewer")
        elif ratio > GOOD:
            fit, penalty = Fit.TIGHT, 25
            score -= penalty
            reasons.append(f"tight fit: {ratio:.0%} of the budget (-{penalty})")
        elif ratio > COMFORTABLE:
            fit, penalty = Fit.GOOD, 10
            score -= penalty
            reasons.append(f"fits with headroom: {ratio:.0%} of the budget (-{penalty})")
        else:
            fit = Fit.COMFORTABLE
            reasons.append(f"fits comfortably: {ratio:.0%} of the budget")
        reasons.append(
            f"catalog's minRAM {_gib(requirements.min_ram_bytes)} not used: the header "
            f"({shape_source}) says what this model needs"
        )
    else:
        fit = Fit.UNKNOWN
        reasons.append(
            "no GGUF header known: judged by the catalog's RAM figures "
            "(`iris-models recommend --fetch-headers` reads the real ones)"
        )
        if total_ram < requirements.min_ram_bytes:
            compatible = False
            reasons.append(
                f"insufficient RAM: need {_gib(requirements.min_ram_bytes)}, have {_gib(total_ram)}"
            )
        elif (
            requirements.recommended_ram_bytes is not None
            and total_ram < requirements.recommended_ram_bytes
        ):
            score -= 20
            reasons.append(
                f"below the recommended {_gib(requirements.recommended_ram_bytes)} RAM (-20)"
            )

    api = device.os.android_api_level
    if (
        requirements.min_android_api is not None
        and api is not None
        and (api < requirements.min_android_api)
    ):
        compatible = False
        reasons.append(
            f"Android API level too old: need {requirements.min_android_api}, have {api}"
        )

    classes = requirements.device_classes
    if classes and device.device_class.value not in classes:
        score -= 30
        reasons.append(f"not tuned for {device.device_class.value} devices (-30)")

    available = available_backends(device)
    supported = set(requirements.supported_backends) or set(PREFERENCE)
    usable = supported & available
    backend: str | None = None
    if not usable:
        compatible = False
        wanted = ", ".join(sorted(supported))
        reasons.append(f"no backend in common: the model runs on {wanted}")
    else:
        optimal = optimal_backend(device)
        if optimal in supported:
            backend = optimal
            score += 10
            reasons.append(f"runs on this device's best backend, {optimal} (+10)")
        else:
            backend = next(name for name in PREFERENCE if name in usable)
            reasons.append(f"runs on {backend} (this device's best, {optimal}, is not listed)")

    speed = None
    if model.type is ModelType.EMBEDDING:
        reasons.append("no decode speed: an embedding model encodes, it does not generate")
    elif compatible and backend is not None:
        prior = model.performance.prior(backend, device.device_class) if model.performance else None
        speed = estimate_speed(
            shape,
            device,
            kv_cache_bytes=memory.kv_cache_bytes if memory else 0,
            catalog_prior=prior,
            file_size_bytes=model.total_size_bytes,
        )
        if speed is not None:
            reasons.append(_speed_reason(speed))

    if not model.verified:
        reasons.append("catalog entry not verified: its size and digest are unconfirmed")

    if not compatible:
        score = 0
    category = Category.for_score(score) if compatible else Category.NOT_RECOMMENDED
    return Recommendation(
        model=model,
        category=category,
        score=score,
        compatible=compatible,
        fit=fit,
        context_length=context,
        reasons=tuple(reasons),
        backend=backend,
        memory=memory,
        memory_budget_bytes=budget,
        speed=speed,
        shape_source=shape_source if shape is not None else None,
    )


def _speed_reason(speed: SpeedEstimate) -> str:
    inputs = speed.inputs
    parts = []
    if speed.roofline_tokens_per_s is not None:
        parts.append(
            f"roofline {speed.roofline_tokens_per_s:.1f} tok/s = {inputs['efficiency']} x "
            f"{inputs['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s ({inputs['bandwidth_source']}) / "
            f"{inputs['bytes_per_token'] / 1e6:.0f} MB per token (from the "
            f"{inputs['bytes_per_token_from']})"
        )
    if speed.catalog_tokens_per_s is not None:
        parts.append(f"catalog {speed.catalog_tokens_per_s:g} tok/s")
    return f"decode about {speed.tokens_per_s:.1f} tok/s ({'; '.join(parts)})"


def rank(recommendations: Iterable[Recommendation]) -> list[Recommendation]:
    """Best first: compatible before not; then fit (room to spare before tight); then
    quality (parameters weighted by quantization); then speed; then id."""
    return sorted(
        recommendations,
        key=lambda r: (
            not r.compatible,
            r.fit.rank,
            -r.quality,
            -(r.speed.tokens_per_s if r.speed else 0.0),
            r.model.id,
        ),
    )
