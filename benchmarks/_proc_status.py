"""Memory figures of this process from /proc/self (Linux), shared by the benchmarks' memory
tables. Imported as a sibling module: the benchmarks run as scripts from this folder."""

from __future__ import annotations

STATUS_KEYS = ("VmRSS", "VmHWM", "RssAnon", "RssFile")


def memory_status_kib() -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon and RssFile in KiB."""
    found = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in STATUS_KEYS:
                found[key] = int(rest.split()[0])
    return found


def reset_peak_rss() -> bool:
    """Set VmHWM to the current RSS (Linux >= 4.0), so the next peak is this run's own."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True
