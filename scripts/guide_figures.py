"""Copy figures from the executed notebooks into docs/img/guides/ for the guide pages.

    python scripts/guide_figures.py      # after `make notebooks`

The guide pages show these committed PNGs; this script regenerates them from the renders in
``docs/notebooks/`` (no computation). Each entry names a notebook and the position of the
figure among its image outputs; the script fails if a render has fewer figures.
"""

from __future__ import annotations

import base64
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "img" / "guides"
FIGURES = {  # file name: (notebook, index among its image outputs)
    "digits_restorations.png": ("01_digits_prior", 2),
    "mala_ula_exact.png": ("04_is_my_sampler_right", 1),
    "ula_detailed_balance.png": ("04_is_my_sampler_right", 2),
    "objectives_loglik_time.png": ("05_choosing_an_objective", 0),
    "objectives_densities.png": ("05_choosing_an_objective", 1),
}


def images(notebook: str) -> list[bytes]:
    nb = nbformat.read(ROOT / "docs" / "notebooks" / f"{notebook}.ipynb", as_version=4)
    return [base64.b64decode(o["data"]["image/png"]) for c in nb.cells
            if c.cell_type == "code" for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})]


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, (notebook, index) in FIGURES.items():
        found = images(notebook)
        if index >= len(found):
            raise SystemExit(f"{notebook} has {len(found)} figures; {name} wants #{index}")
        (OUT / name).write_bytes(found[index])
        print(f"{name} <- {notebook} figure {index}")


if __name__ == "__main__":
    main()
