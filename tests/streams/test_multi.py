"""The K-domain schedule families (streams.multi) and the utility weights (objective)."""

from __future__ import annotations

import numpy as np
import pytest

from curriculab.objective import check_utility, utility_weights
from curriculab.streams.build import Order, build_order
from curriculab.streams.schedules import BudgetSpec, ScheduleError

BLOCKS = {"code": 900, "recipes": 1200, "wiki": 2400}  # recipes is the target (subsampled)
WEIGHTS = {"weights": {"recipes": 1.0, "code": 0.4, "wiki": 0.1}}
TOKENS = BudgetSpec("fixed_tokens", total_blocks=3000, max_epochs=None, step_blocks=8)


def build(spec: dict, budget: BudgetSpec | None = None, seed: int = 0) -> tuple[list, Order]:
    return build_order(BLOCKS, "recipes", 0.25, "s", spec, seed, budget or BudgetSpec())


def centre(names: list[str], order: Order, domain: str) -> float:
    """Mean position of a domain's sequences, as a fraction of training."""
    where = np.flatnonzero(order.domains == names.index(domain))
    return float((where + 0.5).mean() / len(order.domains))


def counts(names: list[str], order: Order) -> dict[str, int]:
    return {name: int((order.domains == k).sum()) for k, name in enumerate(names)}


@pytest.mark.parametrize("budget", [BudgetSpec(), TOKENS], ids=["fixed_data", "fixed_tokens"])
def test_utility_order_moves_domains_by_utility_and_keeps_every_domain_amount(budget) -> None:
    names, shuffled = build({"family": "shuffled"}, budget)
    by_strength = {
        s: build({"family": "utility_order", "strength": s, "utility": WEIGHTS}, budget)[1]
        for s in (0.0, 0.5, 1.0)
    }
    for order in by_strength.values():  # only *when* a domain is seen changes
        assert counts(names, order) == counts(names, shuffled)
    spread = by_strength[0.0]
    assert all(abs(centre(names, spread, d) - 0.5) < 0.03 for d in names)
    full = by_strength[1.0]  # rising utility: wiki, then code, then recipes last
    assert (
        centre(names, full, "wiki") < centre(names, full, "code") < centre(names, full, "recipes")
    )
    last = full.domains[-int(0.9 * (full.domains == names.index("recipes")).sum()) :]
    assert np.all(last == names.index("recipes"))  # the end is the highest utility alone
    for domain, direction in (("recipes", 1), ("wiki", -1)):
        moves = [centre(names, by_strength[s], domain) for s in (0.0, 0.5, 1.0)]
        assert np.all(np.diff(moves) * direction > 0), (domain, moves)
    assert full.window_start == pytest.approx(
        1.0 - counts(names, full)["recipes"] / len(full.domains), abs=1e-9
    )


def test_equal_utilities_share_one_stretch_and_the_default_utility_is_d1_last() -> None:
    tie = {"weights": {"recipes": 1.0, "code": 1.0}}
    names, order = build({"family": "utility_order", "strength": 1.0, "utility": tie})
    tail = order.domains[int(0.6 * len(order.domains)) :]
    assert set(np.unique(tail)) == {names.index("recipes"), names.index("code")}
    names, d1_last = build({"family": "utility_order", "strength": 1.0, "utility": None})
    n_d1 = counts(names, d1_last)["recipes"]
    assert np.all(d1_last.domains[-n_d1:] == names.index("recipes"))


@pytest.mark.parametrize("budget", [BudgetSpec(), TOKENS], ids=["fixed_data", "fixed_tokens"])
def test_end_windows_put_the_given_shares_in_the_window(budget) -> None:
    shares = {"code": 0.5, "recipes": 0.3, "wiki": 0.2}
    names, order = build({"family": "end_windows", "window": 0.2, "shares": shares}, budget)
    assert order.window_start == pytest.approx(0.8)
    window = order.domains[int(0.8 * len(order.domains)) :]
    for name, share in shares.items():
        assert (window == names.index(name)).mean() == pytest.approx(share, abs=0.02)


def test_end_windows_from_utility_leave_out_a_domain_of_utility_zero() -> None:
    utility = {"weights": {"recipes": 1.0, "code": 1.0}}  # wiki 0
    spec = {"family": "end_windows", "window": 0.1, "shares": "utility", "utility": utility}
    names, order = build(spec, TOKENS)
    window = order.domains[int(0.9 * len(order.domains)) + 1 :]
    assert not np.any(window == names.index("wiki"))
    recipes = round(0.25 * (900 + 2400))  # the ratio's D1 subsample
    got = (window == names.index("code")).sum() / len(window)  # their natural proportion
    assert got == pytest.approx(900 / (900 + recipes), abs=0.03)


def test_end_windows_name_the_domain_that_has_too_little_under_fixed_data() -> None:
    spec = {"family": "end_windows", "window": 0.3, "shares": {"recipes": 0.9, "wiki": 0.1}}
    with pytest.raises(ScheduleError, match=r"'shares': needs \d+ 'recipes' blocks"):
        build(spec)


@pytest.mark.parametrize("budget", [BudgetSpec(), TOKENS], ids=["fixed_data", "fixed_tokens"])
def test_concentrate_puts_all_of_one_domain_at_the_end_and_keeps_amounts(budget) -> None:
    names, shuffled = build({"family": "shuffled"}, budget)
    names, alone = build({"family": "concentrate", "domain": "code"}, budget)
    assert counts(names, alone) == counts(names, shuffled)
    n_code = counts(names, alone)["code"]
    assert np.all(alone.domains[-n_code:] == names.index("code"))  # fine-tuning data only
    start = 1.0 - n_code / len(alone.domains)  # the plan's, before blocks are rounded
    assert alone.window_start == pytest.approx(start, abs=1.0 / len(alone.domains))
    names, mixed = build({"family": "concentrate", "domain": "code", "window": 0.5}, budget)
    first, second = np.split(mixed.domains, [len(mixed.domains) // 2])
    assert not np.any(first == names.index("code"))
    assert (second == names.index("code")).mean() == pytest.approx(
        2 * n_code / len(mixed.domains), abs=0.01
    )


def test_concentrate_refuses_a_window_shorter_than_the_domain() -> None:
    with pytest.raises(ScheduleError, match=r"'window': 0.05 is shorter than 'wiki'"):
        build({"family": "concentrate", "domain": "wiki", "window": 0.05})


def test_utility_weights_from_counts_and_explicit_weights() -> None:
    names, available = ["a", "b", "c"], np.array([100, 400, 0])
    power = utility_weights({"count_power": -0.5}, names, "a", available)
    assert power == pytest.approx([2 / 3, 1 / 3, 0.0])  # 100^-0.5 : 400^-0.5 = 2 : 1
    explicit = utility_weights({"weights": {"a": 3.0, "c": 1.0}}, names, "a", available)
    assert explicit == pytest.approx([0.75, 0.0, 0.25])
    assert utility_weights(None, names, "b", available).tolist() == [0.0, 1.0, 0.0]
    assert "unknown domains ['z']" in check_utility({"weights": {"z": 1.0}}, names)
    assert "at least one weight above 0" in check_utility({"weights": {"a": 0.0}}, names)
    assert check_utility({"count_power": -1.0}, names) is None
