"""Which company made the system-on-chip, and which chip it is, from what Android and the
kernel expose: ro.soc.* properties, ro.board.platform and friends, /proc/cpuinfo's
"Hardware" line, /sys/devices/soc0 and the device tree. The first source that names a
vendor wins, in that order (the same order pytorch/cpuinfo trusts them).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass

# (pattern, vendor), tried in order against each lower-cased identifier.
_VENDOR_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"^(qti|qcom|qualcomm)|snapdragon|^(msm|apq|sdm|sm|sdx|qcs|qcm)\d", "qualcomm"),
    (
        (
            r"^(kona|lahaina|taro|kalama|pineapple|sun|lito|bengal|holi|parrot|trinket|atoll|"
            r"sdmmagpie|msmnile|lagoon|yupik)$"
        ),
        "qualcomm",
    ),
    (r"mediatek|^mt\d|^mt[a-z]?\d", "mediatek"),
    (r"exynos|^universal\d|^s5e\d|samsung", "samsung"),
    (r"^(gs\d|zuma|tensor)|^google", "google"),
    (r"kirin|hisilicon|^hi\d{4}", "hisilicon"),
    (r"unisoc|spreadtrum|^sprd,|^ums\d|^sc\d{4}|^sp\d{4}", "unisoc"),
    (r"^bcm\d|^brcm,|broadcom|raspberry", "broadcom"),
    (r"rockchip|^rk\d", "rockchip"),
    (r"allwinner|^sun\d+i", "allwinner"),
    (r"amlogic|^meson", "amlogic"),
    (r"tegra|nvidia", "nvidia"),
)

# Properties in the order they are trusted: the API 31+ SoC properties name the vendor
# outright; the rest are codenames that need the patterns above.
ANDROID_SOC_PROPERTIES = (
    "ro.soc.manufacturer",
    "ro.soc.model",
    "ro.board.platform",
    "ro.mediatek.platform",
    "ro.chipname",
    "ro.hardware.chipname",
    "ro.hardware",
    "ro.boot.hardware",
    "ro.product.board",
)


@dataclass(frozen=True)
class SoCFacts:
    vendor: str | None
    model: str | None
    board_platform: str | None
    hardware: str | None


def vendor_of(identifier: str) -> str | None:
    """The SoC vendor an identifier points to ("SM8450", "kalama", "mt6799"), or None."""
    text = identifier.strip().lower()
    if not text:
        return None
    for pattern, vendor in _VENDOR_PATTERNS:
        if re.search(pattern, text):
            return vendor
    return None


def parse_getprop(text: str) -> dict[str, str]:
    """``getprop``'s output (``[key]: [value]`` lines; a value may span lines)."""
    properties: dict[str, str] = {}
    for match in re.finditer(r"^\[([^\]]+)\]: \[(.*?)\]$", text, re.MULTILINE | re.DOTALL):
        properties[match.group(1)] = match.group(2)
    return properties


def read_android_properties(timeout_s: float = 2.0) -> dict[str, str]:
    """All system properties through the ``getprop`` tool; {} off Android or on failure."""
    getprop = shutil.which("getprop")
    if getprop is None:
        return {}
    import subprocess  # only on Android: the import alone costs milliseconds

    try:
        done = subprocess.run(
            [getprop], capture_output=True, timeout=timeout_s, check=False, text=True
        )
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return parse_getprop(done.stdout) if done.returncode == 0 else {}


def identify(
    properties: Mapping[str, str],
    cpuinfo_hardware: str,
    soc0: Mapping[str, str],
    device_tree_compatible: str = "",
) -> SoCFacts:
    """Vendor, model, board platform and hardware name from every source at hand."""
    manufacturer = properties.get("ro.soc.manufacturer", "").strip()
    vendor = None
    if manufacturer:
        vendor = {"qti": "qualcomm", "qcom": "qualcomm", "mtk": "mediatek"}.get(
            manufacturer.lower()
        )
        vendor = vendor or vendor_of(manufacturer) or manufacturer.lower()
    candidates = [properties.get(name, "") for name in ANDROID_SOC_PROPERTIES[1:]]
    candidates += [cpuinfo_hardware, soc0.get("family", ""), soc0.get("machine", "")]
    candidates += device_tree_compatible.split("\0")
    for candidate in candidates:
        if vendor is not None:
            break
        vendor = vendor_of(candidate)
    # soc0's "machine" is a chip id on Qualcomm ("SM8550") but a board description on some
    # Exynos kernels ("Samsung DREAMLTE EUR rev06 board based on EXYNOS8895"): chip names
    # from properties come first, and a machine with spaces in it only last.
    machine = soc0.get("machine", "")
    model = (
        properties.get("ro.soc.model")
        or properties.get("ro.chipname")
        or properties.get("ro.mediatek.platform")
        or (machine if machine and " " not in machine else None)
        or _model_from_hardware(cpuinfo_hardware)
        or machine
        or None
    )
    hardware = cpuinfo_hardware or properties.get("ro.hardware") or None
    return SoCFacts(
        vendor=vendor,
        model=model,
        board_platform=properties.get("ro.board.platform") or None,
        hardware=hardware,
    )


def _model_from_hardware(hardware: str) -> str | None:
    # "Qualcomm Technologies, Inc SDM845" -> "SDM845"; "mt6799" -> "MT6799"
    match = re.search(r"\b((?:sdm|sm|msm|apq|mt|exynos)\d+\w*)", hardware, re.IGNORECASE)
    return match.group(1).upper() if match else None
