"""``scripts/bf16_compare.py``'s rule: the bf16 median of 3 seeds within the fp32 seeds' range, or
the gap to it stated; fewer seeds than 3 say so rather than judge."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("bf16_compare", REPO / "scripts" / "bf16_compare.py")
bf16_compare = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bf16_compare)

FP32 = {1: 90.86, 2: 90.93, 3: 90.37}


def test_a_median_inside_the_fp32_range():
    assert bf16_compare.verdict(FP32, {1: 90.28, 2: 91.04, 3: 90.51}) == "within the fp32 range"


def test_a_median_outside_states_the_gap():
    assert bf16_compare.verdict(FP32, {1: 91.0, 2: 91.1, 3: 90.99}) == "+0.07 points above the best fp32 seed"
    assert bf16_compare.verdict(FP32, {1: 90.0, 2: 90.3, 3: 90.1}) == "-0.27 points below the worst fp32 seed"


def test_too_few_seeds_are_not_judged():
    assert bf16_compare.verdict(FP32, {1: 97.85, 2: 95.02}) == "2 bf16 / 3 fp32 seeds recorded, 3 each needed"
