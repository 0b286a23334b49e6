"""model.tables.format_table: the one formatter the scripts print with."""

import pytest

from model.tables import format_table


def test_columns_padded_rule_under_header_right_alignment():
    text = format_table(("name", "n"), [("a", 1), ("long name", 12.5)], right=(1,))
    assert text.splitlines() == ["name          n",
                                 "---------  ----",
                                 "a             1",
                                 "long name  12.5"]


def test_rows_must_match_the_header():
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        format_table(("a", "b"), [(1, 2, 3)])
