"""The pure parts of sgpy.job: histogram buckets, latency percentiles, stats."""

import random

import pytest

from sgpy import _binding
from sgpy.job import JobStats, Latency, bucket_bounds


def test_buckets_tile_the_range_without_gaps():
    prev_high = 0
    for i in range(_binding.HIST_BUCKETS):
        low, high = bucket_bounds(i)
        assert low == prev_high and high > low
        prev_high = high
    assert prev_high == 2 ** 64


@pytest.mark.parametrize("ns", [0, 1, 15, 16, 17, 31, 32, 63, 64, 65, 127, 128, 1000, 10 ** 6, 123456789, 2 ** 40 + 5,
                                2 ** 64 - 1])
def test_c_files_each_value_in_the_bucket_python_describes(ns):
    low, high = bucket_bounds(_binding.hist_index(ns))
    assert low <= ns < high


def test_bucket_width_is_at_most_a_64th_of_the_value_as_fio_s():
    rnd = random.Random(5)
    for _ in range(2000):
        ns = rnd.randrange(64, 2 ** 50)
        low, high = bucket_bounds(_binding.hist_index(ns))
        assert low <= ns < high
        assert (high - low) <= low / 64
    assert _binding.HIST_BUCKETS == 64 + (63 - 6 + 1) * 64


def latency(values):
    buckets = {}
    for v in values:
        i = _binding.hist_index(v)
        buckets[i] = buckets.get(i, 0) + 1
    hist = tuple((*bucket_bounds(i), n) for i, n in sorted(buckets.items()))
    return Latency(count=len(values), min_ns=min(values), mean_ns=sum(values) / len(values),
                   max_ns=max(values), histogram=hist)


@pytest.mark.parametrize("q", [1, 25, 50, 90, 99, 99.9, 100])
def test_percentiles_are_within_an_eighth(q):
    rnd = random.Random(q)
    values = sorted(rnd.randrange(1_000, 5_000_000) for _ in range(10_000))
    exact = values[max(0, int(round(q / 100 * len(values))) - 1)]
    got = latency(values).percentile(q)
    assert abs(got - exact) <= exact / 8


def test_percentile_edges():
    lat = latency([1000] * 10)
    assert lat.percentile(50) == 1000 and lat.percentile(100) == 1000  # clamped to min..max
    with pytest.raises(ValueError):
        lat.percentile(0)
    with pytest.raises(ValueError):
        lat.percentile(101)
    empty = Latency(count=0, min_ns=0, mean_ns=0.0, max_ns=0, histogram=())
    assert empty.percentile(50) == 0.0 and str(empty) == "no latencies"


def test_stats_rates_and_text():
    s = JobStats(commands=2000, errors=1, recovered=3, short_transfers=0, submitted=2001, seconds=2.0,
                 bytes=2000 * 4096, latency=latency([10_000, 20_000, 30_000]))
    assert s.iops == 1000.0 and s.bandwidth == 2000 * 4096 / 2
    text = str(s)
    assert text.startswith("2,000 commands in 2.00 s: 1,000 IOPS, 4.1 MB/s, 1 errors; latency min 10.0 us")
    assert JobStats(commands=0, errors=0, recovered=0, short_transfers=0, submitted=0, seconds=0.0, bytes=0,
                    latency=None).iops == 0.0


def test_stats_are_frozen_values():
    s = JobStats(commands=1, errors=0, recovered=0, short_transfers=0, submitted=1, seconds=1.0, bytes=0,
                 latency=None)
    with pytest.raises(AttributeError):
        s.commands = 2
    assert s == JobStats(commands=1, errors=0, recovered=0, short_transfers=0, submitted=1, seconds=1.0, bytes=0,
                         latency=None)


def test_python_and_c_file_latencies_alike():
    from sgpy.job import hist_index

    rnd = random.Random(9)
    values = list(range(0, 300)) + [rnd.randrange(0, 2 ** 64) for _ in range(3000)] + [2 ** k for k in range(64)]
    for ns in values:
        assert hist_index(ns) == _binding.hist_index(ns), ns


def test_python_lba_plan_matches_its_definition():
    from sgpy.job import _LbaPlan

    seq = _LbaPlan(_binding.LBA_SEQUENTIAL, 100, 3, 8, None, 1)
    assert [seq.next() for _ in range(7)] == [100, 108, 116, 100, 108, 116, 100]
    lst = _LbaPlan(_binding.LBA_LIST, 0, 1, 1, [5, 1], 1)
    assert [lst.next() for _ in range(5)] == [5, 1, 5, 1, 5]
    fixed = _LbaPlan(_binding.LBA_FIXED, 42, 1, 1, None, 1)
    assert {fixed.next() for _ in range(5)} == {42}
    rnd = _LbaPlan(_binding.LBA_RANDOM, 64, 100, 4, None, 77)
    draws = [rnd.next() for _ in range(2000)]
    assert all(64 <= v < 64 + 400 and (v - 64) % 4 == 0 for v in draws)
    assert len(set(draws)) == 100  # every position is reached
    again = _LbaPlan(_binding.LBA_RANDOM, 64, 100, 4, None, 77)
    assert [again.next() for _ in range(2000)] == draws
    zero = _LbaPlan(_binding.LBA_RANDOM, 0, 1000, 1, None, 0)  # seed 0 still moves
    assert len({zero.next() for _ in range(50)}) > 1


@pytest.mark.parametrize("bs", [16, 512, 4096])
def test_stamps_round_trip_and_name_the_first_bad_block(bs):
    from sgpy.job import find_mismatch, stamp_blocks

    data = stamp_blocks(b"\x55" * (bs * 4), 1000, 7, bs)
    assert len(data) == bs * 4
    assert data[bs:bs + 16] == (1001).to_bytes(8, "big") + (7).to_bytes(8, "big")
    assert data[16:bs] == b"\x55" * (bs - 16)
    assert find_mismatch(data, 1000, 7, bs) is None
    assert find_mismatch(data, 1000, 8, bs) == (0, 1000, 7)
    assert find_mismatch(data, 999, 7, bs) == (0, 1000, 7)
    torn = data[:2 * bs] + bytes(bs) + data[3 * bs:]
    assert find_mismatch(torn, 1000, 7, bs) == (2, 0, 0)
    assert find_mismatch(data[:bs + 3], 1000, 7, bs) is None  # only whole blocks are checked


def test_data_mismatch_is_a_task_failure_that_says_where():
    from sgpy import command
    from sgpy.errors import DataMismatch, SgError, TaskFailed

    e = DataMismatch(lba=1500, found_lba=7, expected_tag=0x2A, found_tag=0x29,
                     command=command.Read16(lba=1496, transfer_length=8))
    assert isinstance(e, TaskFailed) and isinstance(e, SgError)
    assert str(e).startswith("data mismatch at LBA 1500: the block holds LBA 7's stamp with tag 0x29, "
                             "not its own with tag 0x2a — Read16(")
    assert (e.lba, e.found_lba, e.expected_tag, e.found_tag) == (1500, 7, 0x2A, 0x29)
    import sgpy

    assert sgpy.DataMismatch is DataMismatch
