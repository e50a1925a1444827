"""Safe checkpoints of pytrees: ``np.savez`` of leaves keyed by their tree paths, no pickle.

A checkpoint holds named *groups* (each a pytree, e.g. ``params`` or ``opt_state``) and
plain arrays. Restoring needs a *template* pytree per group (the structure the caller
already has): each template leaf is replaced by the stored leaf at the same path
(``jax.tree_util.keystr`` of ``jax.tree.flatten_with_path``), checked for shape.
Typed PRNG keys are stored as ``jax.random.key_data`` and re-wrapped with their impl.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["save_checkpoint", "load_checkpoint", "restore_tree", "save_train_state",
           "load_train_state"]

FORMAT = "numpyro_ebm.checkpoint/1"


def _is_key(leaf: Any) -> bool:
    return hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _flatten(tree: Any) -> list[tuple[str, Any]]:
    leaves, _ = jax.tree.flatten_with_path(tree)
    return [(jax.tree_util.keystr(path) or "<root>", leaf) for path, leaf in leaves]


def save_checkpoint(path: str | os.PathLike, groups: dict[str, Any],
                    arrays: dict[str, Any], meta: dict[str, Any] | None = None) -> Path:
    """Write ``groups`` (pytrees) and ``arrays`` to ``path`` (``.npz``) atomically.

    Returns the path written. The JSON description lists each group's leaf paths.
    """
    path = Path(path)
    payload: dict[str, np.ndarray] = {}
    desc: dict[str, Any] = {"format": FORMAT, "groups": {}, "keys": {}, "meta": meta or {}}
    for gname, tree in groups.items():
        paths = []
        for i, (p, leaf) in enumerate(_flatten(tree)):
            name = f"{gname}/{i}"
            if _is_key(leaf):
                desc["keys"][name] = str(jax.random.key_impl(leaf))
                leaf = jax.random.key_data(leaf)
            payload[name] = np.asarray(leaf)
            paths.append(p)
        desc["groups"][gname] = paths
    for aname, value in arrays.items():
        payload[f"array/{aname}"] = np.asarray(value)
    payload["__description__"] = np.asarray(json.dumps(desc))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **payload)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a checkpoint: ``(contents, description)``; ``allow_pickle`` stays off.

    ``contents`` maps ``"group/i"`` and ``"array/name"`` to NumPy arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"resume_from={str(path)!r}: no such checkpoint file")
    with np.load(path, allow_pickle=False) as f:
        contents = {k: f[k] for k in f.files}
    desc = json.loads(str(contents.pop("__description__")))
    if desc.get("format") != FORMAT:
        raise ValueError(f"{path}: not a numpyro_ebm checkpoint (format {desc.get('format')!r})")
    return contents, desc


def restore_tree(template: Any, group: str, contents: dict[str, Any],
                 desc: dict[str, Any]) -> Any:
    """Fill ``template``'s leaves with the stored leaves of ``group`` (paths must match)."""
    stored_paths = desc["groups"].get(group)
    flat = _flatten(template)
    paths = [p for p, _ in flat]
    if stored_paths != paths:
        raise ValueError(
            f"checkpoint group {group!r} has leaves {stored_paths}, but the pytree given has "
            f"{paths}; resume with the same model, objective and optimizer structure"
        )
    leaves = []
    for i, (p, leaf) in enumerate(flat):
        name = f"{group}/{i}"
        value = contents[name]
        shape = tuple(np.shape(leaf))
        if name in desc["keys"]:
            key = jax.random.wrap_key_data(jnp.asarray(value), impl=desc["keys"][name])
            if key.shape != shape:
                raise ValueError(
                    f"checkpoint leaf {group}{p} holds keys of shape {key.shape}, expected {shape}"
                )
            leaves.append(key)
            continue
        if value.shape != shape:
            raise ValueError(
                f"checkpoint leaf {group}{p} has shape {value.shape}, expected {shape}"
            )
        dtype = getattr(leaf, "dtype", None)
        if value.dtype.kind == "V" and dtype is not None:
            # .npy stores extension dtypes (bfloat16, float8) as raw bytes: reinterpret them
            value = value.view(np.dtype(dtype))
        leaves.append(jnp.asarray(value, dtype=None if dtype is None
                                  else jax.dtypes.canonicalize_dtype(dtype)))
    return jax.tree.unflatten(jax.tree.structure(template), leaves)


def save_train_state(path: str | os.PathLike, state: Any, history: dict[str, np.ndarray],
                     meta: dict[str, Any] | None = None) -> Path:
    """Write a :class:`~numpyro_ebm.training.TrainState` and its history to ``path``.

    ``history`` maps names to 1-d arrays (stored as ``array/history/<name>``).
    """
    return save_checkpoint(path, {"state": state},
                           {f"history/{k}": v for k, v in history.items()}, meta=meta)


def load_train_state(path: str | os.PathLike, template: Any
                     ) -> tuple[Any, dict[str, np.ndarray], dict[str, Any]]:
    """Read what :func:`save_train_state` wrote: ``(state, history, meta)``.

    ``template`` is a state of the same structure (same energy, objective and optimizer);
    its leaves are replaced by the stored ones. Raises ``FileNotFoundError`` for a missing
    file and ``ValueError`` naming the leaves for a checkpoint of another structure.
    """
    contents, desc = load_checkpoint(path)
    state = restore_tree(template, "state", contents, desc)
    prefix = "array/history/"
    history = {k[len(prefix):]: v for k, v in contents.items() if k.startswith(prefix)}
    return state, history, desc.get("meta", {})
