"""Concrete arrays as hashable values: the one byte key behind every compare-by-value cache.

:class:`~numpyro_ebm.objectives.ByValue` (objective settings), ``training.by_value``
(optimizers) and ``infer._program_cache`` (traced programs) key arrays the same way, so
that two arrays are the same value exactly when their dtype, shape and bytes agree.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

__all__ = ["array_value"]


def array_value(value: Any) -> tuple[str, tuple[int, ...], bytes]:
    """``(dtype, shape, bytes)`` of a concrete array, hashable and equal for equal arrays.

    Parameters
    ----------
    value
        A NumPy or JAX array, a NumPy/Python scalar, or a typed PRNG key array (keyed by its
        key data under the key's dtype). Not a tracer: its bytes are unknown.

    Returns
    -------
    tuple
        The dtype's name (``"float32"``, ``"key<fry>"``), the shape and the raw bytes.
    """
    if jax.dtypes.issubdtype(getattr(value, "dtype", None), jax.dtypes.prng_key):
        data = np.asarray(jax.random.key_data(value))
        return str(value.dtype), value.shape, data.tobytes()
    a = np.asarray(value)
    return str(a.dtype), a.shape, a.tobytes()
