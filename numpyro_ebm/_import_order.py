"""Guard against a lazy-import trap between ArviZ and NumPyro.

ArviZ 1.x (``arviz_base.io_numpyro``) puts ``numpyro`` into ``sys.modules`` as a lazy
module. If the first NumPyro import after that is ``import numpyro.distributions``, the
submodules loaded while the lazy package executes are not bound as attributes of their
parents, and ``numpyro.factor`` fails with ``module 'numpyro.distributions' has no attribute
'distribution'``. Importing ``numpyro`` itself first avoids it; :func:`relink` repairs a
session where it already happened (it only adds missing parent attributes).

Minimal reproduction (arviz 1.3, arviz-base, numpyro 0.22)::

    import arviz, numpyro.distributions as d
    hasattr(d, "distribution")  # False
"""

from __future__ import annotations

import sys

import numpyro  # noqa: F401  (import the package before any of its submodules)


def relink() -> list[str]:
    """Bind every loaded ``numpyro.*`` submodule to its parent package; return the names fixed."""
    fixed = []
    for name, module in list(sys.modules.items()):
        if not name.startswith("numpyro.") or module is None:
            continue
        parent_name, _, child = name.rpartition(".")
        parent = sys.modules.get(parent_name)
        if parent is not None and not hasattr(parent, child):
            setattr(parent, child, module)
            fixed.append(name)
    return fixed
