"""The L2 cache size read from sysfs and the convolution's chunk budget."""

import pytest

from skrcnn._cpu_cache import l2_cache_bytes
from skrcnn.functions.convolution import cpu_chunk_bytes


def _cache_entry(root, name, level, kind, size):
    entry = root / name
    entry.mkdir()
    (entry / "level").write_text(f"{level}\n")
    (entry / "type").write_text(f"{kind}\n")
    (entry / "size").write_text(f"{size}\n")


def test_l2_is_found_among_the_cache_levels(tmp_path):
    # As Linux lists a Zen 4 core: L1 data and instruction, L2, L3.
    _cache_entry(tmp_path, "index0", 1, "Data", "32K")
    _cache_entry(tmp_path, "index1", 1, "Instruction", "32K")
    _cache_entry(tmp_path, "index2", 2, "Unified", "1024K")
    _cache_entry(tmp_path, "index3", 3, "Unified", "32768K")
    assert l2_cache_bytes(str(tmp_path)) == 1024 * 1024


@pytest.mark.parametrize("size, expected", [
    ("2M", 2 * 2 ** 20), ("1280K", 1280 * 2 ** 10), ("524288", 524288),
    ("large", None), ("", None)])
def test_l2_sizes_in_every_unit(tmp_path, size, expected):
    _cache_entry(tmp_path, "index2", 2, "Data", size)
    assert l2_cache_bytes(str(tmp_path)) == expected


def test_no_sysfs_or_no_l2_gives_none(tmp_path):
    assert l2_cache_bytes(str(tmp_path / "missing")) is None
    _cache_entry(tmp_path, "index0", 1, "Data", "48K")
    _cache_entry(tmp_path, "index1", 2, "Instruction", "1M")
    assert l2_cache_bytes(str(tmp_path)) is None


@pytest.mark.parametrize("l2, expected_mib", [
    (None, 8), (0, 8), (1 * 2 ** 20, 2), (512 * 2 ** 10, 2),
    (1280 * 2 ** 10, 2.5), (2 * 2 ** 20, 4), (32 * 2 ** 20, 8)])
def test_chunk_budget_is_twice_l2_within_2_to_8_mib(l2, expected_mib):
    assert cpu_chunk_bytes(l2) == expected_mib * 2 ** 20
