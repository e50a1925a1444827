"""Progress bar and history of a training run (host side)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from tqdm.auto import tqdm

__all__ = ["History", "progress_bar"]


def progress_bar(total: int, initial: int, enabled: bool, name: str) -> tqdm:
    """A tqdm bar over ``total`` steps starting at ``initial`` (a no-op when disabled)."""
    return tqdm(total=total, initial=min(initial, total), disable=not enabled,
                desc=f"fit[{name}]", leave=True)


class History:
    """Per-name lists of 1-d arrays, concatenated on demand."""

    def __init__(self, start: Mapping[str, np.ndarray] | None = None):
        self._parts: dict[str, list[np.ndarray]] = {k: [np.asarray(v)]
                                                    for k, v in (start or {}).items()}

    def add(self, values: Mapping[str, np.ndarray]) -> None:
        """Append ``values[name]`` (1-d arrays) to each name's record."""
        for k, v in values.items():
            self._parts.setdefault(k, []).append(np.atleast_1d(np.asarray(v)))

    def arrays(self, *, complete: bool = False) -> dict[str, np.ndarray]:
        """Every record as one array; ``complete`` adds empty ``step``/``loss``/``skipped``."""
        out = {k: np.concatenate(v) for k, v in self._parts.items()}
        for k in ("step", "loss", "skipped") if complete else ():
            out.setdefault(k, np.zeros((0,)))
        return out
