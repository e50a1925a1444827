"""ArviZ's lazy import of NumPyro must not break NumPyro once numpyro_ebm is imported."""

import subprocess
import sys

import pytest

CASES = {
    "arviz, then numpyro_ebm": "import arviz\nimport numpyro_ebm\n",
    "arviz, numpyro.distributions, then numpyro_ebm":
        "import arviz\nimport numpyro.distributions\nimport numpyro_ebm\n",
}
CHECK = """
import numpyro
from numpyro.infer.util import log_density
def model():
    numpyro.factor("f", 1.5)
print(float(log_density(model, (), {}, {})[0]))
"""


@pytest.mark.parametrize("prelude", list(CASES.values()), ids=list(CASES))
def test_numpyro_factor_works_whatever_the_import_order(prelude):
    out = subprocess.run([sys.executable, "-c", prelude + CHECK], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "1.5"


def test_the_trap_exists_without_us():
    """Documents the upstream behaviour relink repairs (if ArviZ fixes it, drop relink)."""
    code = "import arviz\nimport numpyro.distributions as d\nprint(hasattr(d, 'distribution'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    if out.stdout.strip() == "True":
        pytest.skip("this ArviZ/NumPyro pair no longer has the lazy-import trap")
    assert out.stdout.strip() == "False"
