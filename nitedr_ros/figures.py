"""Figures without a display: matplotlib on the Agg backend, saved atomically and closed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .fileio import atomic_output


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the non-interactive Agg backend (imported on first use)."""
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure: Any, path: str | os.PathLike[str], *, dpi: int) -> Path:
    """Save ``figure`` atomically (format from the suffix), then close it."""
    try:
        with atomic_output(path) as tmp:
            figure.savefig(tmp, dpi=dpi)
    finally:
        pyplot().close(figure)
    return Path(path)
