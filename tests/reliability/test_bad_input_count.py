"""The bad-input count in README.md is measured by the suite, not written by hand.

Every test marked ``@pytest.mark.bad_input`` in tests/reliability/ counts once per case (see
tests/reliability/helpers.py); README.md's Reliability section must state the total, so adding kinds without
updating the README (or the other way round) fails here.
"""

from __future__ import annotations

import re

import pytest

from tests.reliability.helpers import ROOT, count_bad_input_kinds

pytestmark = pytest.mark.reliability


def readme_count() -> int:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Reliability"):]
    section = section[: section.index("\n## ", 1)]
    found = re.findall(r"(\d+) kinds are checked", section)
    assert len(found) == 1, found
    return int(found[0])


def test_the_readme_states_the_measured_number_of_bad_input_kinds():
    counts = count_bad_input_kinds()
    total = sum(counts.values())
    assert readme_count() == total, (
        f"README.md says {readme_count()} kinds of bad input are checked but tests/reliability/ checks {total} "
        f"({', '.join(f'{k}: {v}' for k, v in counts.items())}); update the README.")


def test_the_counter_counts_cases_not_functions():
    from tests.reliability import test_bad_inputs, test_bounds

    counts = count_bad_input_kinds()
    assert counts["test_bad_inputs"] == len(test_bad_inputs.KINDS)  # one parametrized function, one per kind
    expected = len(test_bounds.RECIPES) + 1 + len(test_bounds.SETS) + 2 + 1 + 1 + 1 + 2 + 1 + 1
    assert counts["test_bounds"] == expected
