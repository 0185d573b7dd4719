"""The disclosure rules: what a partition shows, rates, medians and merged units.

The safety of what is published against a reader who knows these rules is tested where the
views are built: tests/invariants/test_insights_adversary.py replays :func:`protect_partition`
under every order on every split of the hidden total; tests/invariants/test_insights_safety.py
solves the published figures exactly.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.services.configuration import policy
from portal.services.insights import disclosure
from portal.services.insights.disclosure import (
    OTHER,
    CannotProtect,
    MalformedTable,
    ThresholdTooLow,
    median,
    merge_small_groups,
    percentile,
    protect_partition,
    rate,
)

# --- partitions -----------------------------------------------------------------------------------


def _identity(n: int) -> list[int]:
    return list(range(n))


def test_nothing_is_hidden_when_every_count_is_k_or_more() -> None:
    assert protect_partition([5, 9, 12], 5, _identity(3)) == (5, 9, 12)


def test_zeros_are_hidden_like_small_counts_with_one_complement() -> None:
    # 0 alone is one hidden count: the first of the order that is still shown goes with it.
    assert protect_partition([0, 9, 12], 5, [2, 1, 0]) == (None, 9, None)
    assert protect_partition([0, 9, 12], 5, [0, 1, 2]) == (None, None, 12)


def test_small_counts_that_cover_each_other_take_no_complement() -> None:
    # 3 + 2 = 5 >= k and two of them: nothing else is hidden, whatever the order.
    for order in ([0, 1, 2, 3], [3, 2, 1, 0]):
        assert protect_partition([3, 2, 7, 0], 5, order) == (None, None, 7, None)


def test_small_counts_adding_up_to_less_than_k_take_one_complement() -> None:
    assert protect_partition([1, 2, 7, 9], 5, [3, 0, 1, 2]) == (None, None, 7, None)


@settings(max_examples=200, deadline=None)
@given(
    counts=st.lists(st.integers(0, 30), min_size=1, max_size=7),
    k=st.integers(3, 6),
    data=st.data(),
)
def test_every_partition_hides_at_least_two_counts_summing_to_k_or_none(
    counts: list[int], k: int, data: st.DataObject
) -> None:
    if sum(counts) < k:
        with pytest.raises(CannotProtect):
            protect_partition(counts, k, _identity(len(counts)))
        return
    order = data.draw(st.permutations(range(len(counts))))
    shown = protect_partition(counts, k, order)
    hidden = [i for i, v in enumerate(shown) if v is None]
    assert all(v == counts[i] and v >= k for i, v in enumerate(shown) if v is not None)
    assert all(i in hidden for i, c in enumerate(counts) if c < k)
    if hidden:
        assert len(hidden) >= 2 and sum(counts[i] for i in hidden) >= k
        assert sum(counts[i] >= k for i in hidden) <= 1  # at most one complement


def test_threshold_never_below_three() -> None:
    assert disclosure.MIN_THRESHOLD == policy.MIN_THRESHOLD
    with pytest.raises(ThresholdTooLow):
        protect_partition([5], 2, [0])
    with pytest.raises(ThresholdTooLow):
        rate(5, 10, 2)


@pytest.mark.parametrize("counts", [[-1, 9], [True, 9], [1.5, 9]])
def test_malformed_counts_are_refused(counts: list[int]) -> None:
    with pytest.raises(MalformedTable):
        protect_partition(counts, 3, [0, 1])


@pytest.mark.parametrize("order", [[0], [0, 0], [1, 2]])
def test_the_order_must_be_a_permutation(order: list[int]) -> None:
    with pytest.raises(ValueError, match="permutation"):
        protect_partition([4, 9], 3, order)


# --- rates, medians, small units ----------------------------------------------------------------


def test_rates_need_k_cases_and_no_small_part() -> None:
    assert rate(2, 4, 5) is None  # fewer than k cases
    assert rate(2, 10, 5) is None  # the numerator is a small count
    assert rate(8, 10, 5) is None  # the rest (2) is a small count
    assert rate(5, 10, 5) == 0.5
    assert rate(0, 10, 5) == 0.0
    assert rate(10, 10, 5) == 1.0
    assert rate(30, 600, 5, per=100) == 5.0  # reports per 100 employees
    with pytest.raises(ValueError, match="negative"):
        rate(-1, 10, 5)


def test_medians_and_percentiles_need_k_values() -> None:
    assert median([1, 2, 3, 4], 5) is None
    assert median([5, 1, 4, 2, 3], 5) == 3.0
    assert median([1, 2, 3, 4, 5, 6], 5) == 3.5
    assert percentile([1, 2, 3, 4, 5], 90, 5) == pytest.approx(4.6)
    assert percentile([1, 2, 3, 4, 5], 0, 5) == 1.0
    assert percentile([1, 2, 3, 4, 5], 100, 5) == 5.0
    assert percentile([1, 2, 3], 90, 5) is None
    with pytest.raises(ValueError, match="between"):
        percentile([1, 2, 3, 4, 5], 101, 5)


def test_small_units_are_merged_into_other() -> None:
    headcounts = {"Berlin": 120, "Lyon": 8, "Oslo": 4, "Porto": 3}
    assert merge_small_groups(headcounts, 10) == {
        "Berlin": "Berlin",
        "Lyon": OTHER,
        "Oslo": OTHER,
        "Porto": OTHER,
    }


def test_other_is_not_left_small() -> None:
    # Porto alone would just be renamed; the smallest unit above the minimum joins it.
    headcounts = {"Berlin": 120, "Lyon": 40, "Porto": 3}
    assert merge_small_groups(headcounts, 10) == {
        "Berlin": "Berlin",
        "Lyon": OTHER,
        "Porto": OTHER,
    }
    assert merge_small_groups({"Berlin": 120, "Lyon": 40}, 10) == {
        "Berlin": "Berlin",
        "Lyon": "Lyon",
    }
    assert set(merge_small_groups({"A": 2, "B": 3}, 10).values()) == {OTHER}


@given(st.dictionaries(st.text(min_size=1, max_size=5), st.integers(0, 50)), st.integers(1, 30))
def test_merged_groups_are_never_small(headcounts: dict[str, int], minimum: int) -> None:
    mapping = merge_small_groups(headcounts, minimum)
    assert mapping.keys() == headcounts.keys()
    sizes: dict[str, int] = {}
    for unit, label in mapping.items():
        sizes[label] = sizes.get(label, 0) + headcounts[unit]
        assert label in (unit, OTHER)
    everything_merged = all(label == OTHER for label in mapping.values())
    for label, size in sizes.items():
        assert size >= minimum or (label == OTHER and everything_merged)
