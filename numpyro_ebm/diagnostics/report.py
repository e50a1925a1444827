"""Verdicts and the detailed-balance report: a plain mapping from check name to verdict."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from typing import NamedTuple

import numpy as np
import xarray as xr

__all__ = ["Check", "Verdict", "DetailedBalanceReport"]


class Check(StrEnum):
    """The checks, named by what they test (members compare equal to their string value)."""

    RATIO_CONSISTENCY = "ratio_consistency"
    """The kernel's logged log acceptance ratio against a float64 recomputation."""
    INNOVATIONS = "innovations"
    """The proposals' recovered innovations against N(0, 1) (KS test)."""
    FLUCTUATION_IDENTITY = "fluctuation_identity"
    """``E[min(1, e^R)] = 2 P(R > 0) + P(R = 0)`` at stationarity."""
    REVERSIBILITY = "reversibility"
    """Lagged antisymmetry statistics of the chain have mean zero."""
    STEIN_DISCREPANCY = "stein_discrepancy"
    """Kernel Stein discrepancy of the states against the target's score."""


class Verdict(NamedTuple):
    """One check's verdict: ``passed`` is None when it does not apply (``note`` says why).

    Attributes
    ----------
    name : the check (a :class:`Check` value).
    statistic : the test statistic (see each check).
    p_value : its p-value (NaN for a tolerance check).
    threshold : the level ``alpha`` or the tolerance.
    passed : True, False, or None (not applicable).
    details : per-chain / per-feature values (an ``xarray.Dataset``).
    note : why the check does not apply or why it failed without a p-value.
    """

    name: str
    statistic: float
    p_value: float
    threshold: float
    passed: bool | None
    details: xr.Dataset
    note: str = ""


def skipped(name: str, note: str) -> Verdict:
    """A not-applicable verdict for check ``name`` (``note`` says why)."""
    return Verdict(name, np.nan, np.nan, np.nan, None, xr.Dataset(), note)


class DetailedBalanceReport(Mapping[str, Verdict]):
    """The verdicts by check name (``report["fluctuation_identity"]``), with the level used.

    A read-only mapping (iterate over names, ``.items()``, ``len``); ``passed`` is True when
    no applicable check failed; ``str(report)`` is a plain-text table; ``to_dataset()`` an
    xarray export for a DataTree group.
    """

    def __init__(self, verdicts: Iterable[Verdict], alpha: float):
        self._verdicts = {str(v.name): v for v in verdicts}
        self.alpha = float(alpha)

    def __getitem__(self, name: str) -> Verdict:
        try:
            return self._verdicts[name]
        except (KeyError, TypeError):
            raise KeyError(f"no check named {name!r}; have {list(self._verdicts)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._verdicts)

    def __len__(self) -> int:
        return len(self._verdicts)

    def __repr__(self) -> str:
        return f"DetailedBalanceReport({list(self._verdicts)}, alpha={self.alpha:g})"

    @property
    def passed(self) -> bool:
        """True when no applicable check failed."""
        return all(v.passed is not False for v in self.values())

    def report(self) -> str:
        """A plain-text table: check, statistic, p-value, threshold, verdict."""
        lines = [f"Detailed balance diagnostics (alpha = {self.alpha:g})",
                 f"{'check':<22}{'statistic':>12}{'p-value':>11}{'threshold':>11}  verdict"]
        for v in self.values():
            verdict = "n/a" if v.passed is None else ("pass" if v.passed else "FAIL")
            lines.append(f"{v.name:<22}{v.statistic:>12.4g}{v.p_value:>11.3g}"
                         f"{v.threshold:>11.3g}  {verdict}" + (f" ({v.note})" if v.note else ""))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()

    def to_dataset(self) -> xr.Dataset:
        """All verdicts (dim ``check``) and each check's details, prefixed by its name.

        E.g. ``fluctuation_identity_z`` (dim ``chain``) and ``reversibility_z`` (dims
        ``chain, reversibility_lag, reversibility_feature``).
        """
        vs = list(self.values())
        ds = xr.Dataset(
            {"statistic": ("check", [v.statistic for v in vs]),
             "p_value": ("check", [v.p_value for v in vs]),
             "threshold": ("check", [v.threshold for v in vs]),
             "passed": ("check", [-1 if v.passed is None else int(v.passed) for v in vs])},
            coords={"check": [str(v.name) for v in vs]},
            attrs={"alpha": self.alpha, "passed_encoding": "1 pass, 0 fail, -1 not applicable"})
        for v in vs:
            prefix = f"{v.name}_"
            ren = {k: prefix + str(k) for k in v.details.data_vars}
            ren.update({d: prefix + str(d) for d in v.details.dims
                        if d not in ("chain", "draw")})
            ds = ds.merge(v.details.rename(ren))
        return ds
