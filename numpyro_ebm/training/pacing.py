"""How many steps each chunk of :func:`~numpyro_ebm.fit` runs: a fixed number, or paced.

A chunk costs the host a fixed amount (dispatching the compiled loop with every leaf of the
train state, fetching its records, the progress bar): about 2 ms on a 2-core CPU for the
two-moons MLP, which is 5% of a 50-step chunk of a 0.85 ms step. Paced chunks (the default,
``steps_per_chunk=None``) run about :data:`SECONDS` of steps each, timed on the run's own
chunks (wall time from dispatch to result), so that this cost stays near 0.2% for steps of
1 ms or more (a chunk holds at most :data:`MAX_STEPS` steps), while the progress bar still
moves about once a second and an interrupt is answered within about a second. Results do
not depend on the pacing: the compiled loop is the same (its record buffer holds
:data:`MAX_STEPS` steps) and each step's randomness is a function of its index alone.
"""

from __future__ import annotations

import jax

__all__ = ["SECONDS", "MAX_STEPS", "FIRST_STEPS", "FIXED_WHEN_MULTIPROCESS", "compiled_length",
           "first_size", "next_size"]

# wall time a paced chunk aims at (0.25 s at first: the 2 ms a chunk costs was then 0.8% of
# energy discrepancy's 5 ms steps; docs/benchmarks/fit_overhead.md)
SECONDS = 1.0
MAX_STEPS = 1000  # the longest paced chunk (the compiled loop's record buffer)
FIRST_STEPS = 10  # the first paced chunk (before any step has been timed)
GROWTH = 4  # a paced chunk is at most this many times longer than the one before
# processes of a multi-process run must cut chunks at the same steps (the chunk holds
# collectives), and their clocks differ: they run fixed chunks of this length
FIXED_WHEN_MULTIPROCESS = 50


def _fixed(steps_per_chunk: int | None) -> int | None:
    if steps_per_chunk is None and jax.process_count() > 1:
        return FIXED_WHEN_MULTIPROCESS
    return steps_per_chunk


def compiled_length(steps_per_chunk: int | None) -> int:
    """The record-buffer length the chunk loop is compiled for."""
    fixed = _fixed(steps_per_chunk)
    return MAX_STEPS if fixed is None else fixed


def first_size(steps_per_chunk: int | None) -> int:
    """Steps in the run's first chunk."""
    fixed = _fixed(steps_per_chunk)
    return FIRST_STEPS if fixed is None else fixed


def next_size(steps_per_chunk: int | None, size: int, steps_run: int,
              seconds: float | None) -> int:
    """Steps in the next chunk, after one that ran ``steps_run`` steps in ``seconds``.

    Fixed chunks keep ``steps_per_chunk``. Paced chunks aim at :data:`SECONDS`, growing at
    most :data:`GROWTH` times per chunk and never past :data:`MAX_STEPS`:
    ``min(SECONDS * steps_run / seconds, GROWTH * max(size, steps_run), MAX_STEPS)``, at
    least 1.

    Parameters
    ----------
    steps_per_chunk
        ``fit``'s argument: an int for fixed chunks, ``None`` for paced ones (fixed
        :data:`FIXED_WHEN_MULTIPROCESS` in a multi-process run).
    size
        Steps asked of the chunk just run.
    steps_run
        Steps it ran (fewer than ``size`` when it halted or the run ended).
    seconds
        Its wall time from dispatch to result; ``None``, zero or negative (nothing to learn
        from, e.g. a rerun under the NaN guard) keeps ``size``.

    Returns
    -------
    int
        Steps for the next chunk, in ``[1, MAX_STEPS]`` when paced.
    """
    fixed = _fixed(steps_per_chunk)
    if fixed is not None:
        return fixed
    if seconds is None or seconds <= 0 or steps_run <= 0:
        return size
    want = int(SECONDS * steps_run / seconds)
    return max(1, min(want, GROWTH * max(size, steps_run), MAX_STEPS))
