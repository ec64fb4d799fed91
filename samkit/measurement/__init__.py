"""Object statistics from label images: tables in physical units, summaries, plots, export.

See ``docs/content/measure.md`` and ``docs/content/tables.md``. The plots
(:func:`histogram`, :func:`scatter`, :func:`label_overlay`) import matplotlib
on first use.
"""

from .export import export_table, read_table, save_labels
from .properties import GROUPS, PROPERTIES
from .summary import summarize
from .table import measure

_PLOTS = ("histogram", "scatter", "label_overlay", "column_label")


def __getattr__(name):
    if name in _PLOTS:
        from . import plots

        return getattr(plots, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["GROUPS", "PROPERTIES", "export_table", "measure", "read_table", "save_labels", "summarize", *_PLOTS]
