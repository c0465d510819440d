"""The size of one core's L2 cache, for sizing the CPU work's chunks.

Read from Linux's sysfs (``/sys/devices/system/cpu/cpu0/cache``); None
where that is missing (macOS, Windows, some containers), and callers then
keep their own default.
"""

import os

SYSFS_CACHE_DIR = "/sys/devices/system/cpu/cpu0/cache"
_UNITS = {"": 1, "K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30}


def _read(path):
    with open(path) as f:
        return f.read().strip()


def _parse_size(text):
    """Bytes of a sysfs cache size such as ``1024K``; None if unreadable."""
    number = text.rstrip("KMG")
    unit = text[len(number):]
    if not number.isdigit() or unit not in _UNITS:
        return None
    return int(number) * _UNITS[unit]


def l2_cache_bytes(cache_dir=SYSFS_CACHE_DIR):
    """Bytes of the first CPU's level-2 data (or unified) cache, or None."""
    try:
        entries = sorted(os.listdir(cache_dir))
    except OSError:
        return None
    for entry in entries:
        path = os.path.join(cache_dir, entry)
        try:
            if _read(os.path.join(path, "level")) == "2" and \
                    _read(os.path.join(path, "type")) in ("Unified", "Data"):
                return _parse_size(_read(os.path.join(path, "size")))
        except OSError:
            continue
    return None
