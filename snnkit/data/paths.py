"""Where data lives: the bundled data folder, dataset folders under a user's data root."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["bundled_dir", "dataset_folder"]


def bundled_dir() -> Path:
    """The folder of data shipped with snnkit.

    The repository's ``datasets/`` folder is installed as ``snnkit/_bundled`` in a wheel (pyproject
    ``package-dir``). It has no ``__init__.py`` on purpose (an importable ``datasets`` would shadow Hugging Face's
    package), so it is located by path relative to ``snnkit.__file__`` rather than with ``importlib.resources``:
    ``<site-packages>/snnkit/_bundled`` in a wheel, else ``<repo>/datasets`` in a source checkout or editable
    install.
    """
    import snnkit

    package = Path(snnkit.__file__).resolve().parent
    installed = package / "_bundled"
    if installed.is_dir():
        return installed
    return package.parent / "datasets"


def dataset_folder(root: str | os.PathLike[str], name: str, filenames: Iterable[str]) -> Path:
    """The folder holding a dataset's files: tonic's ``<root>/<name>``, or ``root`` itself when it holds them.

    tonic keeps each dataset in ``save_to/<ClassName>/``; a user who put ``shd_train.h5`` straight into ``root``
    is understood too. When neither has the files, ``<root>/<name>`` is returned (and named in the error).
    """
    root = Path(root).expanduser()
    folder = root / name
    names = list(filenames)
    if not any((folder / f).exists() for f in names) and any((root / f).exists() for f in names):
        return root
    return folder
