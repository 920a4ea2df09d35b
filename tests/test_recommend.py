"""Recommendations: every shipped profile against the bundled catalog (a golden file), the
ranking, the specification's compatibility rules and categories, fit levels, the largest
context that fits, the speed roofline, and the backends of each shipped profile
(Registry.recommend and validate: test_recommend_registry.py).

Regenerate the golden file after a deliberate change with
``IRIS_MODELS_UPDATE_GOLDEN=1 python -m pytest tests/test_recommend.py -k golden``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iris_models.catalog import ModelDescriptor, Performance, load_catalog
from iris_models.device import DeviceClass, DeviceProfile, load_profile, shipped_profiles
from iris_models.recommend import (
    Category,
    Fit,
    Recommendation,
    SpeedEstimate,
    assess,
    available_backends,
    estimate_memory,
    estimate_speed,
    kv_cache_bytes,
    memory_budget,
    optimal_backend,
    rank,
    recommend,
)
from iris_models.shape import ModelShape

GOLDEN = Path(__file__).parent / "golden" / "recommendations.json"
UPDATE_GOLDEN = os.environ.get("IRIS_MODELS_UPDATE_GOLDEN") == "1"
GiB = 1 << 30
GEMMA = "gemma-3-270m-q4_k_m"
TINYLLAMA = "tinyllama-1.1b-q4_0"  # no header facts: judged by the catalog's RAM figures


@pytest.fixture(autouse=True)
def _no_environment_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IRIS_MODELS_CATALOG", raising=False)
    monkeypatch.delenv("IRIS_MODELS_DEVICE_OVERRIDES", raising=False)


def catalog_model(model_id: str) -> ModelDescriptor:
    return load_catalog(environment=False).get(model_id)


def with_requirements(model: ModelDescriptor, **changes: Any) -> ModelDescriptor:
    return dataclasses.replace(
        model, requirements=dataclasses.replace(model.requirements, **changes)
    )


def with_memory(profile: DeviceProfile, **changes: Any) -> DeviceProfile:
    return dataclasses.replace(profile, memory=dataclasses.replace(profile.memory, **changes))


# -- golden matrix: every shipped profile x the bundled catalog -------------------------------


def golden_rows(profile_name: str, context_length: int = 4096) -> list[dict[str, Any]]:
    models = load_catalog(environment=False).models()
    ranked = recommend(
        models,
        load_profile(profile_name),
        context_length=context_length,
        include_incompatible=True,
    )
    return [
        {
            "id": r.model.id,
            "category": r.category.value,
            "score": r.score,
            "compatible": r.compatible,
            "fit": r.fit.value,
            "backend": r.backend,
            "tokens_per_s": None if r.speed is None else round(r.speed.tokens_per_s, 1),
            "reasons": list(r.reasons),
        }
        for r in ranked
    ]


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    if UPDATE_GOLDEN:
        GOLDEN.parent.mkdir(exist_ok=True)
        matrix = {name: golden_rows(name) for name in shipped_profiles()}
        GOLDEN.write_text(json.dumps(matrix, indent=2, ensure_ascii=False) + "\n", "utf-8")
    return json.loads(GOLDEN.read_text("utf-8"))


def test_golden_file_covers_every_shipped_profile(golden: dict[str, Any]) -> None:
    assert sorted(golden) == shipped_profiles()


@pytest.mark.parametrize("profile_name", shipped_profiles())
def test_recommendations_match_the_golden_file(profile_name: str, golden: dict[str, Any]):
    assert golden_rows(profile_name) == golden[profile_name]


@pytest.mark.parametrize("context_length", [2048, 4096, 32768])
def test_every_category_is_reached_in_the_matrix(context_length: int) -> None:
    reached = {
        row["category"] for name in shipped_profiles() for row in golden_rows(name, context_length)
    }
    assert reached == {category.value for category in Category}


@pytest.mark.parametrize("profile_name", shipped_profiles())
def test_matrix_lists_compatible_models_first(profile_name: str) -> None:
    rows = golden_rows(profile_name)
    compatible = [row["compatible"] for row in rows]
    assert compatible == sorted(compatible, reverse=True)
    assert {row["id"] for row in rows} == {m.id for m in load_catalog(environment=False)}


# -- ranking ----------------------------------------------------------------------------------


def _variant(base: Recommendation, model_id: str, **changes: Any) -> Recommendation:
    model_changes = {
        key: changes.pop(key) for key in ("parameter_count", "quantization") if key in changes
    }
    model = dataclasses.replace(base.model, id=model_id, **model_changes)
    return dataclasses.replace(base, model=model, **changes)


@pytest.fixture(scope="module")
def ranking_cases() -> list[Recommendation]:
    """Expected order, best first."""
    base = assess(catalog_model(TINYLLAMA), load_profile("raspberry-pi-5"))
    assert base.compatible
    assert base.fit is Fit.UNKNOWN

    return [
        _variant(base, "good-3b", fit=Fit.GOOD, parameter_count="3B", tokens_per_s=1.0),
        _variant(base, "comfy-1b-q8", fit=Fit.COMFORTABLE, quantization="Q8_0", tokens_per_s=1),
        _variant(base, "comfy-1b-fast", fit=Fit.COMFORTABLE, tokens_per_s=9.0),
        _variant(base, "comfy-1b-slow", fit=Fit.COMFORTABLE, tokens_per_s=5.0),
        _variant(base, "comfy-1b-slow2", fit=Fit.COMFORTABLE, tokens_per_s=5.0),
        _variant(base, "unknown-8b", fit=Fit.UNKNOWN, parameter_count="8B", tokens_per_s=None),
        _variant(base, "tight-70b", fit=Fit.TIGHT, parameter_count="70B", tokens_per_s=50),
        _variant(base, "incompatible", fit=Fit.COMFORTABLE, compatible=False),
        _variant(base, "too-big", fit=Fit.TOO_BIG, compatible=False, parameter_count="1T"),
    ]


@given(data=st.data())
def test_rank_orders_by_compatibility_fit_quality_speed_then_id(
    ranking_cases: list[Recommendation], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(ranking_cases))
    assert [r.model.id for r in rank(shuffled)] == [r.model.id for r in ranking_cases]


def test_quality_weighs_parameters_by_quantization() -> None:
    model = catalog_model(TINYLLAMA)
    rec = assess(model, load_profile("raspberry-pi-5"))
    assert rec.quality == pytest.approx(1.1 * 0.88)
    q8 = dataclasses.replace(rec, model=dataclasses.replace(model, quantization="q8_0"))
    assert q8.quality == pytest.approx(1.1 * 0.99)
    odd = dataclasses.replace(rec, model=dataclasses.replace(model, quantization="XYZ"))
    assert odd.quality == pytest.approx(1.1 * 0.85)


# -- the specification's rules (models without header facts) ---------------------------------

PI = "raspberry-pi-5"  # linux, MID_RANGE, 8 GiB, best backend CPU_NEON


def _on_pi(model: ModelDescriptor, **overrides: Any) -> Recommendation:
    overrides.setdefault("device_class", "MID_RANGE")  # memory overrides must not reclassify
    return assess(model, load_profile(PI, overrides=overrides))


def test_baseline_gets_the_optimal_backend_bonus() -> None:
    rec = _on_pi(catalog_model(TINYLLAMA))
    assert (rec.score, rec.category, rec.backend) == (110, Category.RECOMMENDED, "CPU_NEON")
    assert "runs on this device's best backend, CPU_NEON (+10)" in rec.reasons
    assert rec.shape_source is None
    assert rec.memory is None


def test_ram_below_min_ram_is_incompatible() -> None:
    model = catalog_model(TINYLLAMA)
    minimum = model.requirements.min_ram_bytes
    below = _on_pi(model, **{"memory.total_bytes": minimum - 1})
    assert not below.compatible
    assert (below.score, below.category) == (0, Category.NOT_RECOMMENDED)
    assert any(reason.startswith("insufficient RAM: need 2.00 GiB") for reason in below.reasons)
    assert below.speed is None
    assert _on_pi(model, **{"memory.total_bytes": minimum}).compatible


def test_ram_below_recommended_ram_costs_20() -> None:
    model = catalog_model(TINYLLAMA)
    recommended = model.requirements.recommended_ram_bytes
    below = _on_pi(model, **{"memory.total_bytes": recommended - 1})
    assert (below.compatible, below.score, below.category) == (True, 90, Category.RECOMMENDED)
    assert "below the recommended 3.00 GiB RAM (-20)" in below.reasons
    assert _on_pi(model, **{"memory.total_bytes": recommended}).score == 110


def test_android_api_below_the_minimum_is_incompatible() -> None:
    model = catalog_model(TINYLLAMA)  # minAndroidVersion 29
    phone = "budget-android-phone"
    old = assess(model, load_profile(phone, overrides={"os.android_api_level": 28}))
    assert not old.compatible
    assert old.score == 0
    assert "Android API level too old: need 29, have 28" in old.reasons
    assert assess(model, load_profile(phone, overrides={"os.android_api_level": 29})).compatible
    # A device that is not Android has no API level to compare.
    assert _on_pi(with_requirements(model, min_android_api=99)).compatible


def test_unlisted_device_class_costs_30() -> None:
    model = with_requirements(catalog_model(TINYLLAMA), device_classes=(DeviceClass.FLAGSHIP,))
    rec = _on_pi(model)
    assert (rec.score, rec.category) == (80, Category.COMPATIBLE)
    assert "not tuned for MID_RANGE devices (-30)" in rec.reasons
    assert _on_pi(with_requirements(model, device_classes=())).score == 110


def test_no_backend_in_common_is_incompatible() -> None:
    model = with_requirements(catalog_model(TINYLLAMA), supported_backends=("QNN_HEXAGON",))
    rec = _on_pi(model)
    assert not rec.compatible
    assert rec.backend is None
    assert "no backend in common: the model runs on QNN_HEXAGON" in rec.reasons
    # No list means any backend.
    anything = _on_pi(with_requirements(model, supported_backends=()))
    assert (anything.backend, anything.score) == ("CPU_NEON", 110)


def test_without_the_optimal_backend_the_fastest_usable_one_runs_without_bonus() -> None:
    model = with_requirements(catalog_model(TINYLLAMA), supported_backends=("VULKAN_MALI",))
    rec = _on_pi(model)
    assert (rec.backend, rec.score) == ("VULKAN_MALI", 100)
    assert "runs on VULKAN_MALI (this device's best, CPU_NEON, is not listed)" in rec.reasons
    both = with_requirements(model, supported_backends=("CPU_NEON", "OPENCL_ADRENO"))
    flagship = assess(both, load_profile("snapdragon-flagship-phone"))
    assert (flagship.backend, flagship.score) == ("OPENCL_ADRENO", 100)


@pytest.mark.parametrize(
    ("changes", "overrides", "score", "category"),
    [
        ({}, {"memory.total_bytes": 3 * GiB - 1}, 90, Category.RECOMMENDED),
        ({"device_classes": (DeviceClass.FLAGSHIP,)}, {}, 80, Category.COMPATIBLE),
        (
            {"device_classes": (DeviceClass.FLAGSHIP,)},
            {"memory.total_bytes": 3 * GiB - 1},
            60,
            Category.EXPERIMENTAL,
        ),
        (
            {"device_classes": (DeviceClass.FLAGSHIP,), "supported_backends": ("VULKAN",)},
            {"memory.total_bytes": 3 * GiB - 1},
            50,
            Category.EXPERIMENTAL,
        ),
    ],
)
def test_scores_combine_into_categories(
    changes: dict[str, Any], overrides: dict[str, Any], score: int, category: Category
) -> None:
    rec = _on_pi(with_requirements(catalog_model(TINYLLAMA), **changes), **overrides)
    assert (rec.compatible, rec.score, rec.category) == (True, score, category)


@pytest.mark.parametrize(
    ("score", "category"),
    [
        (110, Category.RECOMMENDED),
        (90, Category.RECOMMENDED),
        (89, Category.COMPATIBLE),
        (70, Category.COMPATIBLE),
        (69, Category.EXPERIMENTAL),
        (50, Category.EXPERIMENTAL),
        (49, Category.NOT_RECOMMENDED),
        (0, Category.NOT_RECOMMENDED),
    ],
)
def test_category_thresholds_are_90_70_50(score: int, category: Category) -> None:
    assert Category.for_score(score) is category


@given(st.integers(-200, 200), st.integers(-200, 200))
def test_a_higher_score_never_gets_a_worse_category(first: int, second: int) -> None:
    order = list(Category)
    low, high = sorted((first, second))
    assert order.index(Category.for_score(high)) <= order.index(Category.for_score(low))


# -- fit from the header facts ----------------------------------------------------------------


@pytest.fixture(scope="module")
def gemma_need() -> int:
    shape = catalog_model(GEMMA).shape
    assert shape is not None
    return estimate_memory(shape, 4096).total_bytes


def _gemma_with_budget(budget: int, **kwargs: Any) -> Recommendation:
    device = with_memory(load_profile(PI), available_bytes=budget)
    return assess(catalog_model(GEMMA), device, **kwargs)


@pytest.mark.parametrize(
    ("budget_of", "fit", "score", "reason"),
    [
        (lambda need: 2 * need, Fit.COMFORTABLE, 110, "fits comfortably: 50% of the budget"),
        (lambda need: 2 * need - 1, Fit.GOOD, 100, "fits with headroom: 50% of the budget (-10)"),
        (
            lambda need: math.ceil(4 * need / 3),
            Fit.GOOD,
            100,
            "fits with headroom: 75% of the budget (-10)",
        ),
        (
            lambda need: math.ceil(4 * need / 3) - 1,
            Fit.TIGHT,
            85,
            "tight fit: 75% of the budget (-25)",
        ),
        (lambda need: need, Fit.TIGHT, 85, "tight fit: 100% of the budget (-25)"),
        (lambda need: need - 1, Fit.TOO_BIG, 0, "would fit with a context of"),
    ],
)
def test_fit_levels_at_half_three_quarters_and_all_of_the_budget(
    gemma_need: int, budget_of: Any, fit: Fit, score: int, reason: str
) -> None:
    rec = _gemma_with_budget(budget_of(gemma_need))
    assert (rec.fit, rec.score, rec.compatible) == (fit, score, fit is not Fit.TOO_BIG)
    assert rec.memory is not None
    assert rec.memory.total_bytes == gemma_need
    assert rec.memory_budget_bytes == budget_of(gemma_need)
    assert rec.shape_source == "catalog"
    assert [line for line in rec.reasons if line.startswith(reason)], rec.reasons


def test_a_known_shape_replaces_the_catalogs_ram_figures() -> None:
    model = with_requirements(catalog_model(GEMMA), min_ram_bytes=1 << 40)
    rec = assess(model, load_profile(PI))
    assert rec.compatible
    assert rec.fit is Fit.COMFORTABLE
    assert any("catalog's minRAM 1024.0 GiB not used" in reason for reason in rec.reasons)


def test_a_compatible_model_can_still_be_not_recommended(gemma_need: int) -> None:
    model = with_requirements(
        catalog_model(GEMMA),
        device_classes=(DeviceClass.FLAGSHIP,),
        supported_backends=("VULKAN",),
    )
    device = with_memory(load_profile(PI), available_bytes=gemma_need)
    rec = assess(model, device)
    assert (rec.compatible, rec.fit, rec.score) == (True, Fit.TIGHT, 100 - 25 - 30)
    assert rec.category is Category.NOT_RECOMMENDED
    assert recommend([model], device) == [rec]  # compatible, so kept without the flag


def test_memory_budget_is_60_percent_on_android_and_85_elsewhere() -> None:
    phone = load_profile("budget-android-phone")
    assert memory_budget(phone) == (int(4 * GiB * 0.6), "60% of 4.00 GiB RAM")
    pi = load_profile(PI)
    assert memory_budget(pi) == (int(8 * GiB * 0.85), "85% of 8.00 GiB RAM")
    busy = with_memory(pi, available_bytes=GiB)
    assert memory_budget(busy) == (GiB, "1.00 GiB free now (of 8.00 GiB)")


def test_a_context_past_the_models_own_is_cut_to_it() -> None:
    rec = assess(catalog_model(GEMMA), load_profile(PI), context_length=65536)
    assert rec.context_length == 32768
    assert "context 65536 is past the model's 32768: using 32768" in rec.reasons


# -- the largest context that fits ------------------------------------------------------------

_FITS = re.compile(r"would fit with a context of (\d+) tokens or fewer")


@pytest.fixture(scope="module")
def gemma_shape() -> ModelShape:
    shape = catalog_model(GEMMA).shape
    assert shape is not None
    return shape


@settings(max_examples=40)
@given(st.floats(0.0, 1.0, exclude_max=True))
def test_a_too_big_model_says_which_context_would_fit(
    gemma_shape: ModelShape, position: float
) -> None:
    smallest = estimate_memory(gemma_shape, 512).total_bytes
    longest = estimate_memory(gemma_shape, 32768).total_bytes
    budget = smallest + int(position * (longest - smallest))
    rec = _gemma_with_budget(budget, context_length=32768)
    assert rec.fit is Fit.TOO_BIG
    assert not rec.compatible
    found = [int(m.group(1)) for reason in rec.reasons if (m := _FITS.fullmatch(reason))]
    assert len(found) == 1
    tokens = found[0]
    assert tokens % 256 == 0
    assert 512 <= tokens < 32768
    assert estimate_memory(gemma_shape, tokens).total_bytes <= budget
    assert estimate_memory(gemma_shape, tokens + 256).total_bytes > budget


def test_no_context_suggestion_when_nothing_fits(gemma_shape: ModelShape) -> None:
    budget = estimate_memory(gemma_shape, 512).total_bytes - 1
    rec = _gemma_with_budget(budget, context_length=32768)
    assert rec.fit is Fit.TOO_BIG
    assert not any(_FITS.fullmatch(reason) for reason in rec.reasons)


# -- speed --------------------------------------------------------------------------------------


def test_roofline_uses_half_of_a_datasheet_bandwidth(gemma_shape: ModelShape) -> None:
    rec = assess(catalog_model(GEMMA), load_profile(PI))
    assert rec.speed is not None
    assert rec.speed.source == "roofline"
    per_token = gemma_shape.weights_bytes + kv_cache_bytes(gemma_shape, 4096)  # tied output
    assert rec.speed.inputs["bytes_per_token"] == per_token
    assert rec.speed.tokens_per_s == pytest.approx(0.5 * 17_068_000_000 / per_token)
    assert any(reason.startswith("decode about ") for reason in rec.reasons)


def test_roofline_uses_70_percent_of_a_measured_bandwidth(gemma_shape: ModelShape) -> None:
    device = with_memory(load_profile(PI), bandwidth_source="measured")
    speed = estimate_speed(gemma_shape, device, kv_cache_bytes=1000)
    assert speed is not None
    per_token = gemma_shape.weights_bytes + 1000
    assert speed.tokens_per_s == pytest.approx(0.7 * 17_068_000_000 / per_token)
    assert speed.inputs["efficiency"] == 0.7


def test_catalog_prior_and_roofline_combine_by_geometric_mean() -> None:
    model = catalog_model(TINYLLAMA)  # CPU_NEON MID_RANGE prior: 4.0 tok/s
    rec = assess(model, load_profile(PI))
    assert rec.speed is not None
    assert rec.speed.source == "roofline+catalog"
    roofline = 0.5 * 17_068_000_000 / model.total_size_bytes  # the file stands in for a shape
    assert rec.speed.roofline_tokens_per_s == pytest.approx(roofline)
    assert rec.speed.catalog_tokens_per_s == 4.0
    assert rec.speed.tokens_per_s == pytest.approx(math.sqrt(roofline * 4.0))
    assert rec.speed.inputs["bytes_per_token_from"] == "file size"


def test_without_bandwidth_the_catalog_prior_is_the_speed() -> None:
    rec = assess(catalog_model(TINYLLAMA), load_profile("budget-android-phone"))
    assert rec.speed == SpeedEstimate(2.5, "catalog", None, 2.5)
    assert rec.speed.inputs == {"catalog_tokens_per_s": 2.5}


def test_no_bandwidth_and_no_prior_gives_no_speed(gemma_shape: ModelShape) -> None:
    phone = load_profile("budget-android-phone")
    assert phone.memory.bandwidth_bytes_per_s is None
    rec = assess(catalog_model(GEMMA), phone)
    assert rec.compatible
    assert rec.speed is None
    assert not any(reason.startswith("decode about") for reason in rec.reasons)
    assert estimate_speed(gemma_shape, phone) is None
    assert estimate_speed(None, load_profile(PI)) is None


# -- backends ---------------------------------------------------------------------------------

EXPECTED_BACKENDS = {
    "apple-silicon-laptop": ({"CPU", "CPU_NEON", "METAL"}, "METAL"),
    "budget-android-phone": ({"CPU", "CPU_NEON"}, "CPU_NEON"),
    "gpu-workstation": ({"CPU", "CPU_X86", "CUDA"}, "CUDA"),
    "midrange-mali-phone": ({"CPU", "CPU_NEON"}, "CPU_NEON"),
    "raspberry-pi-5": ({"CPU", "CPU_NEON", "VULKAN", "VULKAN_MALI"}, "CPU_NEON"),
    "snapdragon-flagship-phone": (
        {"CPU", "CPU_NEON", "OPENCL_ADRENO", "QNN_HEXAGON"},
        "QNN_HEXAGON",
    ),
    "x86-laptop": ({"CPU", "CPU_X86"}, "CPU_X86"),
}


def test_every_shipped_profile_has_expected_backends() -> None:
    assert sorted(EXPECTED_BACKENDS) == shipped_profiles()


@pytest.mark.parametrize("profile_name", sorted(EXPECTED_BACKENDS))
def test_backends_of_each_shipped_profile(profile_name: str) -> None:
    profile = load_profile(profile_name)
    available, optimal = EXPECTED_BACKENDS[profile_name]
    assert available_backends(profile) == available
    assert optimal_backend(profile) == optimal
    assert optimal in available_backends(profile)


@pytest.mark.parametrize(
    ("profile_name", "overrides", "optimal"),
    [
        # QNN only where the NPU is usable; the CPU otherwise, as for an unknown SoC.
        ("snapdragon-flagship-phone", {"npus": []}, "CPU_NEON"),
        ("snapdragon-flagship-phone", {"device_class": "HIGH_END"}, "OPENCL_ADRENO"),
        ("midrange-mali-phone", {"device_class": "FLAGSHIP"}, "CPU_NEON"),
        (
            "midrange-mali-phone",
            {"device_class": "FLAGSHIP", "vulkan.devices[0].api_version": "1.3.0"},
            "VULKAN_MALI",
        ),
        # llama.cpp disables Metal on Intel Macs.
        ("apple-silicon-laptop", {"cpu.architecture": "x86_64"}, "CPU_X86"),
    ],
)
def test_optimal_backend_needs_a_usable_backend(
    profile_name: str, overrides: dict[str, Any], optimal: str
) -> None:
    profile = load_profile(profile_name, overrides=overrides)
    assert optimal_backend(profile) == optimal
    assert optimal in available_backends(profile)


def test_recommendations_built_for_speed_equal_ones_built_field_by_field() -> None:
    """assess builds its values without their __init__ (see iris_models._frozen); a normal
    construction from the same fields must give equal values, every field present."""
    models = load_catalog(environment=False).models()
    for name in shipped_profiles():
        for recommendation in recommend(models, load_profile(name), include_incompatible=True):
            assert dataclasses.replace(recommendation) == recommendation
            if recommendation.memory is not None:
                assert dataclasses.replace(recommendation.memory) == recommendation.memory
            if recommendation.speed is not None:
                assert dataclasses.replace(recommendation.speed) == recommendation.speed


@pytest.mark.parametrize("context_length", [512, 4096, 1 << 20])
def test_the_ranked_speed_is_the_speed_estimates_own_figure(context_length: int) -> None:
    """recommend ranks by a figure it works out without the estimate, which is made when
    read: the two must be the same float, for every model on every shipped profile."""
    models = load_catalog(environment=False).models()
    for name in shipped_profiles():
        profile = load_profile(name)
        for device in (profile, with_memory(profile, bandwidth_source="measured")):
            recommended = recommend(
                models, device, context_length=context_length, include_incompatible=True
            )
            for recommendation in recommended:
                speed = recommendation.speed
                assert recommendation.tokens_per_s == (speed and speed.tokens_per_s)
                said = any(r.startswith("decode about") for r in recommendation.reasons)
                assert said == (speed is not None)


@pytest.mark.parametrize("profile_name", shipped_profiles())
def test_recommend_ranks_as_rank_does(profile_name: str) -> None:
    """recommend takes each rank key while it assesses; rank reads them back: one order."""
    models = load_catalog(environment=False).models()
    device = load_profile(profile_name)
    ranked = recommend(models, device, include_incompatible=True)
    assert [r.model.id for r in rank(reversed(ranked))] == [r.model.id for r in ranked]
    again = recommend(list(reversed(models)), device, include_incompatible=True)
    assert [r.model.id for r in again] == [r.model.id for r in ranked]


def test_recommend_puts_the_faster_of_equals_first() -> None:
    """Models equal in fit and quality go by speed: here the catalog's figure, which the
    roofline is averaged with, is all that differs between them."""
    base = catalog_model(TINYLLAMA)
    priors = {"a-slow": 1.0, "b-fast": 40.0, "c-middle": 9.0}
    models = [
        dataclasses.replace(
            base,
            id=model_id,
            performance=Performance(tokens_per_second={"CPU_NEON": {"MID_RANGE": prior}}),
        )
        for model_id, prior in priors.items()
    ]
    ranked = recommend(models, load_profile(PI))
    assert [r.model.id for r in ranked] == ["b-fast", "c-middle", "a-slow"]
    assert [r.model.id for r in rank(ranked[::-1])] == ["b-fast", "c-middle", "a-slow"]
