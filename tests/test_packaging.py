"""Every package of the source tree is listed in pyproject.toml, so an installed wheel holds all of snnkit.

setuptools installs only the packages named in ``[tool.setuptools] packages``; an editable install still finds an
unlisted sub-package through the source tree, so a forgotten entry would only break users of the wheel.
"""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


def test_every_snnkit_package_is_listed_in_pyproject():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "snnkit").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert found - listed == set(), f"packages missing from pyproject.toml: {sorted(found - listed)}"
    assert config["package-dir"]["snnkit.kernels"] == "triton_kernels"
