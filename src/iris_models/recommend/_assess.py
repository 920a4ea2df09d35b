"""One model on one device: the specification's compatibility assessment, with the RAM check
replaced by the memory the model really needs at the asked context whenever its shape is
known; a fit level, a speed estimate, a score and category, and the reasons for each."""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

from .._frozen import builder
from ..catalog import ModelDescriptor, ModelType
from ..device import DeviceProfile
from ..shape import ModelShape
from ._backends import PREFERENCE, available_backends, optimal_backend
from ._memory import MemoryEstimate, estimate_memory
from ._speed import (
    DeviceBandwidth,
    SpeedEstimate,
    bytes_per_token,
    decode_tokens_per_s,
    device_bandwidth,
    speed_from,
)

__all__ = [
    "DEFAULT_CONTEXT",
    "Basis",
    "Category",
    "DeviceFacts",
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
_EMBEDDING = ModelType.EMBEDDING  # looked up once: enum attribute access is slow in a loop

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


def _quality(model: ModelDescriptor) -> float:
    quantization = model.quantization or ""
    factor = QUANT_QUALITY.get(quantization) or QUANT_QUALITY.get(
        quantization.upper(), UNKNOWN_QUANT_QUALITY
    )
    return (model.parameters or 0) / 1e9 * factor


class Category(str, enum.Enum):
    """The specification's recommendation categories, by score: 90, 70, 50."""

    RECOMMENDED = "RECOMMENDED"
    COMPATIBLE = "COMPATIBLE"
    EXPERIMENTAL = "EXPERIMENTAL"
    NOT_RECOMMENDED = "NOT_RECOMMENDED"

    @classmethod
    def for_score(cls, score: int) -> Category:
        return _category_for_score(score)


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
        return _FIT_RANK[self]


_FIT_RANK = {Fit.COMFORTABLE: 0, Fit.GOOD: 0, Fit.UNKNOWN: 1, Fit.TIGHT: 2, Fit.TOO_BIG: 3}

# The members under module names: in Python 3.11 reading one through its class goes through
# EnumType.__getattr__, which a loop over 10,000 models would pay several times per model.
_RECOMMENDED = Category.RECOMMENDED
_COMPATIBLE = Category.COMPATIBLE
_EXPERIMENTAL = Category.EXPERIMENTAL
_NOT_RECOMMENDED = Category.NOT_RECOMMENDED
_FIT_COMFORTABLE = Fit.COMFORTABLE
_FIT_GOOD = Fit.GOOD
_FIT_TIGHT = Fit.TIGHT
_FIT_TOO_BIG = Fit.TOO_BIG
_FIT_UNKNOWN = Fit.UNKNOWN


def _category_for_score(score: int) -> Category:
    if score >= 90:
        return _RECOMMENDED
    if score >= 70:
        return _COMPATIBLE
    if score >= 50:
        return _EXPERIMENTAL
    return _NOT_RECOMMENDED


@dataclass(frozen=True)
class Recommendation:
    """What iris-models makes of one model on one device, and why."""

    model: ModelDescriptor
    category: Category
    score: int
    compatible: bool
    fit: Fit
    context_length: int
    backend: str | None
    memory: MemoryEstimate | None
    memory_budget_bytes: int
    tokens_per_s: float | None
    """Expected decode tokens per second (see :attr:`speed` for how it was reached); None
    for an embedding model, a model that cannot run here, or with nothing to go on."""
    shape_source: str | None
    """Where the model's shape came from: ``installed``, ``header-cache``, ``catalog``, or
    None (only the catalog's RAM figures were used)."""
    shape: ModelShape | None = field(repr=False)
    """The shape the memory and speed estimates came from; None with no shape known."""
    basis: Basis = field(repr=False, compare=False)
    """What the assessment started from (the device's facts and the context asked for), to
    write the reasons from when they are read."""

    @cached_property
    def reasons(self) -> tuple[str, ...]:
        """Why the model got its category, fit, backend and speed, one line each.

        Written when first read, by running the same assessment again (from the model,
        shape and basis kept here) with its notes kept: ranking a large catalog needs only
        the verdicts, and noting every reason of every model was 7 % of a recommendation's
        instructions over 10,000 models (cachegrind)."""
        notes: list[_Note] = []
        assess_on(self.model, self.basis, self.shape, self.shape_source, notes)
        written = (note[0](self, *note[1:]) for note in notes)
        return tuple(text for text in written if text is not None)

    @cached_property
    def speed(self) -> SpeedEstimate | None:
        """The decode speed estimate behind :attr:`tokens_per_s`, with its inputs.

        Made when first read, from the same inputs: ranking a large catalog needs only the
        figure, and an estimate object per model was 13 % of a recommendation's
        instructions over 10,000 models (cachegrind)."""
        if self.tokens_per_s is None or self.backend is None:
            return None
        facts = self.basis.facts
        per_token, read_from = _bytes_read(self.model, self.shape, self.memory)
        prior = _prior(self.model, self.backend, facts)
        return speed_from(per_token, read_from, prior, facts.bandwidth)

    @property
    def quality(self) -> float:
        """Parameters (in billions) weighted by what the quantization keeps: bigger and less
        quantized ranks higher."""
        return _quality(self.model)

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


_new_recommendation = builder(Recommendation)


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


@dataclass(frozen=True)
class DeviceFacts:
    """What every assessment on one device reads from its profile, worked out once: a
    recommendation over 10,000 models should not derive the same backends 10,000 times."""

    device: DeviceProfile
    budget_bytes: int
    budget_how: str
    available: frozenset[str]
    optimal: str
    device_class: str
    bandwidth: DeviceBandwidth | None
    """The device's part of every speed estimate (see :func:`device_bandwidth`)."""
    _backends: dict[tuple[str, ...], tuple[str | None, _Note]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, device: DeviceProfile) -> DeviceFacts:
        budget, how = memory_budget(device)
        available, optimal = available_backends(device), optimal_backend(device)
        return cls(
            device,
            budget,
            how,
            available,
            optimal,
            device.device_class.value,
            device_bandwidth(device),
        )

    def backend_for(self, supported_backends: tuple[str, ...]) -> tuple[str | None, _Note]:
        """The backend a model listing `supported_backends` (empty: any) runs on here, or
        None, with the note that says why. Catalogs repeat a few lists over many models, so
        each list's answer is worked out once."""
        known = self._backends.get(supported_backends)
        if known is not None:
            return known
        supported = set(supported_backends) or set(PREFERENCE)
        usable = supported & self.available
        answer: tuple[str | None, _Note]
        if not usable:
            answer = None, (_no_backend, frozenset(supported))
        elif self.optimal in supported:
            answer = self.optimal, (_best_backend, self.optimal)
        else:
            backend = next(name for name in PREFERENCE if name in usable)
            answer = backend, (_other_backend, backend, self.optimal)
        self._backends[supported_backends] = answer
        return answer


class Basis(NamedTuple):
    """What an assessment starts from besides the model and its shape; one per call of
    :func:`recommend`, shared by its results."""

    facts: DeviceFacts
    context_length: int
    """The context asked for (a model trained on less is assessed at its own)."""


def assess(
    model: ModelDescriptor,
    device: DeviceProfile | DeviceFacts,
    *,
    context_length: int = DEFAULT_CONTEXT,
    shape: ModelShape | None = None,
    shape_source: str | None = None,
) -> Recommendation:
    """Assess `model` on `device` at `context_length` tokens. `shape` (else the catalog's
    header facts) drives the memory and speed estimates. Pass ``DeviceFacts.of(device)``
    when assessing many models on one device."""
    facts = device if isinstance(device, DeviceFacts) else DeviceFacts.of(device)
    return assess_on(model, Basis(facts, context_length), shape, shape_source)


def assess_on(
    model: ModelDescriptor,
    basis: Basis,
    shape: ModelShape | None,
    shape_source: str | None,
    notes: list[_Note] | None = None,
    keys: list[RankKey] | None = None,
) -> Recommendation:
    """:func:`assess`. With a `notes` list, also notes each reason in it, in order, as the
    function that writes it and its arguments (see :attr:`Recommendation.reasons`); the
    verdicts are the same with or without. With a `keys` list, also appends the
    recommendation's :func:`rank_key`, taken from the values at hand: reading them back
    from the recommendations cost recommend 4 % more instructions over 10,000 models."""
    facts, context = basis
    device = facts.device
    if shape is None and model.shape is not None:
        shape, shape_source = model.shape, "catalog"
    score = 100
    compatible = True
    requirements = model.requirements

    trained = (shape.context_length if shape else None) or model.context_size
    trained = trained or model.max_sequence_length
    if trained and context > trained:
        if notes is not None:
            notes.append((_context_capped, context))
        context = trained

    budget = facts.budget_bytes
    memory = estimate_memory(shape, context) if shape is not None else None
    total_ram = device.memory.total_bytes
    if memory is not None:
        ratio = memory.total_bytes / budget if budget else math.inf
        if ratio > 1:
            compatible = False
            fit = _FIT_TOO_BIG
            level = _WOULD_FIT
        elif ratio > GOOD:
            fit = _FIT_TIGHT
            score -= 25
            level = _TIGHT
        elif ratio > COMFORTABLE:
            fit = _FIT_GOOD
            score -= 10
            level = _HEADROOM
        else:
            fit = _FIT_COMFORTABLE
            level = _COMFORTABLE
        if notes is not None:
            notes += [(_needs, facts.budget_how), level, _MIN_RAM_UNUSED]
    else:
        fit = _FIT_UNKNOWN
        if notes is not None:
            notes.append(_NO_HEADER)
        if total_ram < requirements.min_ram_bytes:
            compatible = False
            if notes is not None:
                notes.append((_insufficient_ram, total_ram))
        elif (
            requirements.recommended_ram_bytes is not None
            and total_ram < requirements.recommended_ram_bytes
        ):
            score -= 20
            if notes is not None:
                notes.append(_BELOW_RECOMMENDED)

    api = device.os.android_api_level
    if (
        requirements.min_android_api is not None
        and api is not None
        and (api < requirements.min_android_api)
    ):
        compatible = False
        if notes is not None:
            notes.append((_api_too_old, api))

    classes = requirements.device_classes
    if classes and facts.device_class not in classes:
        score -= 30
        if notes is not None:
            notes.append((_not_tuned, facts.device_class))

    backend, note = facts.backend_for(requirements.supported_backends)
    if notes is not None:
        notes.append(note)
    if backend is None:
        compatible = False
    elif backend == facts.optimal:
        score += 10

    tokens_per_s = None
    if model.type is _EMBEDDING:
        if notes is not None:
            notes.append(_NO_DECODE)
    elif compatible and backend is not None:
        per_token, _ = _bytes_read(model, shape, memory)
        prior = _prior(model, backend, facts)
        tokens_per_s = decode_tokens_per_s(per_token, prior, facts.bandwidth)
        if tokens_per_s is not None and notes is not None:
            notes.append(_SPEED)

    if not model.verified and notes is not None:
        notes.append(_UNVERIFIED)

    if not compatible:
        score = 0
    category = _category_for_score(score) if compatible else _NOT_RECOMMENDED
    if keys is not None:
        keys.append(_rank_key(model, compatible, fit, tokens_per_s))
    return _new_recommendation(
        model,  # model
        category,  # category
        score,  # score
        compatible,  # compatible
        fit,  # fit
        context,  # context_length
        backend,  # backend
        memory,  # memory
        budget,  # memory_budget_bytes
        tokens_per_s,  # tokens_per_s
        shape_source if shape is not None else None,  # shape_source
        shape,  # shape
        basis,  # basis
    )


def _bytes_read(
    model: ModelDescriptor, shape: ModelShape | None, memory: MemoryEstimate | None
) -> tuple[int | None, str]:
    """The bytes a decode reads per token, and what they were worked out from."""
    if shape is not None:
        return bytes_per_token(shape, memory.kv_cache_bytes if memory else 0), "header"
    return model.total_size_bytes, "file size"


def _prior(model: ModelDescriptor, backend: str, facts: DeviceFacts) -> float | None:
    """The catalog's decode figure for `backend` on this device's class, if it gives one."""
    performance = model.performance
    return performance.prior(backend, facts.device_class) if performance else None


# A reason, unwritten: the function that writes it and the arguments it takes after the
# recommendation. A function may return None when, on a closer look, there is nothing to say.
_Note = tuple[Any, ...]


def _constant(text: str) -> _Note:
    return (lambda _: text,)


_NO_HEADER = _constant(
    "no GGUF header known: judged by the catalog's RAM figures "
    "(`iris-models recommend --fetch-headers` reads the real ones)"
)
_NO_DECODE = _constant("no decode speed: an embedding model encodes, it does not generate")
_UNVERIFIED = _constant("catalog entry not verified: its size and digest are unconfirmed")


def _context_capped(recommendation: Recommendation, asked: int) -> str:
    trained = recommendation.context_length
    return f"context {asked} is past the model's {trained}: using {trained}"


def _needs(recommendation: Recommendation, budget_how: str) -> str:
    memory = recommendation.memory
    assert memory is not None  # noted only with an estimate
    parts = (
        f"weights {_gib(memory.weights_bytes)}, K/V cache {_gib(memory.kv_cache_bytes)}, "
        f"compute {_gib(memory.compute_bytes)}, overhead {_gib(memory.overhead_bytes)}"
    )
    return (
        f"needs {_gib(memory.total_bytes)} at {recommendation.context_length} tokens ({parts}); "
        f"budget {_gib(recommendation.memory_budget_bytes)} ({budget_how})"
    )


def _would_fit(recommendation: Recommendation) -> str | None:
    shape = recommendation.shape
    assert shape is not None  # noted only with an estimate
    budget, context = recommendation.memory_budget_bytes, recommendation.context_length
    largest = _largest_fitting_context(shape, budget, context)
    return f"would fit with a context of {largest} tokens or fewer" if largest else None


def _share_of_budget(recommendation: Recommendation) -> float:
    memory = recommendation.memory
    assert memory is not None  # noted only with an estimate
    return memory.total_bytes / recommendation.memory_budget_bytes


def _tight(recommendation: Recommendation) -> str:
    return f"tight fit: {_share_of_budget(recommendation):.0%} of the budget (-25)"


def _headroom(recommendation: Recommendation) -> str:
    return f"fits with headroom: {_share_of_budget(recommendation):.0%} of the budget (-10)"


def _comfortable(recommendation: Recommendation) -> str:
    return f"fits comfortably: {_share_of_budget(recommendation):.0%} of the budget"


def _min_ram_unused(recommendation: Recommendation) -> str:
    min_ram = recommendation.model.requirements.min_ram_bytes
    return (
        f"catalog's minRAM {_gib(min_ram)} not used: the header "
        f"({recommendation.shape_source}) says what this model needs"
    )


def _insufficient_ram(recommendation: Recommendation, have: int) -> str:
    need = recommendation.model.requirements.min_ram_bytes
    return f"insufficient RAM: need {_gib(need)}, have {_gib(have)}"


def _below_recommended(recommendation: Recommendation) -> str:
    recommended = recommendation.model.requirements.recommended_ram_bytes
    assert recommended is not None  # noted only when the catalog gives it
    return f"below the recommended {_gib(recommended)} RAM (-20)"


def _api_too_old(recommendation: Recommendation, have: int) -> str:
    need = recommendation.model.requirements.min_android_api
    return f"Android API level too old: need {need}, have {have}"


def _not_tuned(_: Recommendation, device_class: str) -> str:
    return f"not tuned for {device_class} devices (-30)"


def _no_backend(_: Recommendation, supported: frozenset[str]) -> str:
    return f"no backend in common: the model runs on {', '.join(sorted(supported))}"


def _best_backend(_: Recommendation, backend: str) -> str:
    return f"runs on this device's best backend, {backend} (+10)"


def _other_backend(_: Recommendation, backend: str, optimal: str) -> str:
    return f"runs on {backend} (this device's best, {optimal}, is not listed)"


def _speed_reason(recommendation: Recommendation) -> str:
    speed = recommendation.speed
    assert speed is not None  # noted only with an estimate
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


_WOULD_FIT: _Note = (_would_fit,)
_TIGHT: _Note = (_tight,)
_HEADROOM: _Note = (_headroom,)
_COMFORTABLE: _Note = (_comfortable,)
_MIN_RAM_UNUSED: _Note = (_min_ram_unused,)
_BELOW_RECOMMENDED: _Note = (_below_recommended,)
_SPEED: _Note = (_speed_reason,)


def rank(recommendations: Iterable[Recommendation]) -> list[Recommendation]:
    """Best first: compatible before not; then fit (room to spare before tight); then
    quality (parameters weighted by quantization); then speed; then id."""
    listed = list(recommendations)
    return in_rank_order(listed, [rank_key(each) for each in listed])


RankKey = tuple[int, float, float, str]


def rank_key(recommendation: Recommendation) -> RankKey:
    """Where `recommendation` goes in :func:`rank`'s order: lower first."""
    return _rank_key(
        recommendation.model,
        recommendation.compatible,
        recommendation.fit,
        recommendation.tokens_per_s,
    )


def _rank_key(
    model: ModelDescriptor, compatible: bool, fit: Fit, tokens_per_s: float | None
) -> RankKey:
    return (
        (0 if compatible else 4) + _FIT_RANK[fit],
        -_quality(model),
        -(tokens_per_s or 0.0),
        model.id,
    )


def in_rank_order(listed: list[Recommendation], keys: list[RankKey]) -> list[Recommendation]:
    """`listed` sorted by `keys`, one per recommendation. recommend() takes each key as it
    makes the recommendation (see :func:`assess_on`), while its values are in the CPU's
    cache: read back afterwards, from 10,000 objects scattered through memory, the keys
    were a quarter of its time.

    One stable sort per part of the key, least significant first: over a list of plain
    numbers or strings Python compares without calling back into Python, where comparing
    the key tuples did, part by part."""
    order = list(range(len(listed)))
    for column in reversed(list(zip(*keys, strict=True))):
        order.sort(key=column.__getitem__)
    return [listed[index] for index in order]
