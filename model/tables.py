"""How results leave the program as text: the one table formatter and the one JSON encoder hook.

:func:`format_table`: no table library is among the dependencies
(``tabulate`` is not installed, and pandas' ``to_string`` is a heavy import
for this), so columns padded to their widest cell, two spaces apart, a
dashed rule under the header.  :func:`json_default`: numpy scalars and
arrays and paths as JSON (``json.dumps(..., default=json_default)``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["format_table", "json_default"]


def json_default(obj):
    """``json.dumps``' ``default``: numpy ints, floats and arrays, and paths."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {obj!r}")


def format_table(header, rows, *, right=()) -> str:
    """``header`` and ``rows`` of cells (anything ``str`` takes) as aligned text.

    Columns are left-aligned except those whose index is in ``right``.
    """
    lines = [[str(cell) for cell in header], *([str(cell) for cell in row] for row in rows)]
    if any(len(line) != len(header) for line in lines):
        raise ValueError(f"every row needs {len(header)} cells")
    widths = [max(len(line[k]) for line in lines) for k in range(len(header))]

    def fmt(line):
        return "  ".join(cell.rjust(w) if k in right else cell.ljust(w)
                         for k, (cell, w) in enumerate(zip(line, widths))).rstrip()

    return "\n".join([fmt(lines[0]), "  ".join("-" * w for w in widths),
                      *(fmt(line) for line in lines[1:])])
