"""Small instrument definitions written for tests (not part of the library)."""

from carehub.instruments.definition import InstrumentDefinition
from carehub.instruments.loader import load_text

TOY = """\
key: toy
version: 1
title: Toy scale
description: Three questions for tests.
licence: free
citation: Written for the test suite.
recall: {text: past week, period: 7d}
min_interval: 7d
direction: lower_is_better
items:
  - {key: a, text: Question A, type: scale, minimum: 0, maximum: 4}
  - {key: b, text: Question B, type: scale, minimum: 0, maximum: 4}
  - {key: c, text: Question C, type: scale, minimum: 0, maximum: 4}
scoring:
  rule: sum
  minimum: 0
  maximum: 12
  missing: {max_missing: 0, source: test}
bands:
  source: test
  levels:
    - {at_least: 0, label: low}
    - {at_least: 6, label: high}
mcid: {points: 2, source: test}
"""


def nine_item_sum(max_missing: int) -> InstrumentDefinition:
    """A PHQ-9-shaped sum (nine items 0-3) that may prorate `max_missing` items."""
    items = "\n".join(
        f"  - {{key: q{n}, text: Question {n}, type: choice, options: "
        "[{value: 0, label: a}, {value: 1, label: b}, {value: 2, label: c}, {value: 3, label: d}]}"
        for n in range(1, 10)
    )
    return load_text(
        f"""\
key: nine
version: 1
title: Nine items
description: For tests.
licence: free
citation: test
recall: {{text: last 2 weeks, period: 14d}}
min_interval: 14d
direction: lower_is_better
items:
{items}
scoring:
  rule: sum
  minimum: 0
  maximum: 27
  missing: {{max_missing: {max_missing}, source: test}}
"""
    )


def odi_like() -> InstrumentDefinition:
    """Ten sections scored 0-5, as a percentage of the points possible for those answered."""
    items = "\n".join(
        f"  - {{key: s{n}, text: Section {n}, type: scale, minimum: 0, maximum: 5}}"
        for n in range(1, 11)
    )
    return load_text(
        f"""\
key: odi_like
version: 1
title: Percentage of points possible
description: For tests.
licence: free
citation: test
recall: {{text: today}}
min_interval: 7d
direction: lower_is_better
items:
{items}
scoring:
  rule: percent
  minimum: 0
  maximum: 100
  decimals: 1
  missing: {{max_missing: 1, source: test}}
"""
    )
