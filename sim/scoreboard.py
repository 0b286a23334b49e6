"""Scoreboard: RTL words against the golden model's, image by image, exactly.

Used inside the cocotb tests (one instance per simulation).  It keeps every
RTL output (so a report can show them), counts mismatching images and
words, and records protocol errors (a wrong ``last`` position, too few or
too many words) separately from value mismatches.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Scoreboard", "MISSING"]

#: Placeholder in the RTL output array for a word the DUT never sent.
MISSING = np.iinfo(np.int64).min


class Scoreboard:
    """``expected``: (n_items, words_per_item) ints; items are checked in order."""

    def __init__(self, expected, *, name: str = "dut", max_reports: int = 8):
        self.expected = np.asarray(expected, dtype=np.int64)
        if self.expected.ndim != 2:
            raise ValueError(f"expected outputs must be 2-D (items, words), not {self.expected.shape}")
        self.name = name
        self.max_reports = max_reports
        self.rtl = np.full(self.expected.shape, MISSING, dtype=np.int64)
        self.checked = 0
        self.mismatched_items = 0
        self.mismatched_words = 0
        self.protocol_errors: list[str] = []
        self.reports: list[str] = []

    def protocol_error(self, message: str) -> None:
        if len(self.protocol_errors) < 100:
            self.protocol_errors.append(message)

    def check(self, index: int, got, *, row=None) -> bool:
        """Compare item ``index`` (RTL words ``got``) with expected row ``row``
        (default ``index``); returns True when exact."""
        row = index if row is None else row
        want = self.expected[row]
        got = np.asarray(list(got), dtype=np.int64)
        n = min(len(got), len(want))
        self.rtl[row, :n] = got[:n]
        self.checked += 1
        bad_words = int(np.count_nonzero(got[:n] != want[:n])) + abs(len(got) - len(want))
        if len(got) != len(want):
            self.protocol_error(f"{self.name} item {index}: {len(got)} words, expected {len(want)}")
        if bad_words:
            self.mismatched_items += 1
            self.mismatched_words += bad_words
            if len(self.reports) < self.max_reports:
                diff = np.flatnonzero(got[:n] != want[:n])[:6]
                detail = ", ".join(f"[{k}] rtl {got[k]} golden {want[k]}" for k in diff)
                self.reports.append(f"{self.name} item {index}: {bad_words} words differ: {detail}")
            return False
        return True

    @property
    def ok(self) -> bool:
        return self.mismatched_items == 0 and not self.protocol_errors

    def summary(self) -> dict:
        return {
            "items": self.checked,
            "mismatches": self.mismatched_items,
            "mismatched_words": self.mismatched_words,
            "protocol_errors": list(self.protocol_errors),
            "reports": list(self.reports),
        }
