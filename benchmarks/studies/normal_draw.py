"""What a ``(B, D)`` standard-normal draw costs on this CPU, by generator (denoising SM's
noise; docs/benchmarks/score_matching.md's *noise draw* column).

    python benchmarks/studies/normal_draw.py [--batch 256] [--dim 200]   # ~10 s

Jitted draws of ``(B, D)`` float32 values from one key, minimum over 5 repeats of 200 calls:
threefry (JAX's default) normal, the library's pair layout of the same generator
(``numpyro_ebm/_random.py``: both words of each block), threefry's raw 32-bit words
alone, Box-Muller on threefry uniforms, and the ``rbg`` / ``unsafe_rbg`` key
implementations (XLA's RngBitGenerator).
Prints milliseconds per draw; nothing is written.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from numpyro_ebm import _random


def _ms(f, key, n: int = 200) -> float:
    jax.block_until_ready(f(key))
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(n):
            out = f(key)
        jax.block_until_ready(out)
        best = min(best, (time.perf_counter() - t0) / n)
    return 1e3 * best


def main(b: int, d: int) -> dict[str, float]:
    def other_impl(impl):
        def draw(k):
            words = jax.random.key_data(jax.random.split(k, 2)).reshape(-1)
            return jax.random.normal(jax.random.wrap_key_data(words, impl=impl), (b, d))
        return draw

    def box_muller(k):
        u = jax.random.uniform(k, (2, b, d // 2), minval=jnp.finfo(jnp.float32).tiny)
        r, th = jnp.sqrt(-2 * jnp.log(u[0])), 2 * jnp.pi * u[1]
        return jnp.concatenate([r * jnp.cos(th), r * jnp.sin(th)], -1)

    draws = {"threefry normal": lambda k: jax.random.normal(k, (b, d)),
             "threefry pairs normal (numpyro_ebm._random)": lambda k: _random.normal(
                 k, (b, d), jnp.float32),
             "threefry raw bits": lambda k: jax.random.bits(k, (b, d)),
             "Box-Muller on threefry uniforms": box_muller,
             "unsafe_rbg normal": other_impl("unsafe_rbg"), "rbg normal": other_impl("rbg")}
    key = jax.random.key(0)
    return {name: _ms(jax.jit(f), key) for name, f in draws.items()}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--dim", type=int, default=200)
    a = ap.parse_args()
    for name, ms in main(a.batch, a.dim).items():
        print(f"{name:34s} {ms:.3f} ms")
