"""Exceptions raised by :mod:`snnkit.data`.

They subclass the built-in exceptions a caller would already catch (``FileNotFoundError``, ``OSError``), so code
written against plain tonic keeps working, while the messages name the exact path and what to do about it.
"""

from __future__ import annotations

__all__ = ["DatasetNotFoundError", "CorruptDatasetError", "DownloadError"]


class DatasetNotFoundError(FileNotFoundError):
    """The dataset files are not where they are expected and downloading was not requested.

    The message names the expected folder and file names and where to get them.
    """


class CorruptDatasetError(OSError):
    """A dataset file exists but cannot be read in the expected format (truncated, corrupt or wrong layout).

    The message names the file.
    """


class DownloadError(OSError):
    """``download=True`` was passed but fetching the archive failed (no network, firewall, bad checksum)."""
