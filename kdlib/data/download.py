"""Downloads from the official URLs, only when asked, checked against known checksums."""
from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

from ..base.io import atomic_path
from .formats import DataError
from .registry import DOWNLOADS
from .resolver import _verify


# --------------------------------------------------------------------------- downloads
def _fetch_url(url: str, dest: Path, timeout: float = 60.0):
    """Stream ``url`` into ``dest`` (a temporary path chosen by the caller)."""
    with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out)


def download_dataset(name: str, dest: Path | str) -> list[Path]:
    """Fetch the official files of ``name`` into ``dest``, verifying known checksums.

    Each file is written to a temporary name and renamed only after its checksum matched.
    """
    if name not in DOWNLOADS:
        raise ValueError(f"no download is known for {name!r}; known: {sorted(DOWNLOADS)}")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    done = []
    for url, filename in DOWNLOADS[name]:
        target = dest / filename
        if target.is_file():
            continue
        with atomic_path(target, suffix=".part", fix=f"copy {filename} into {dest} by hand") as tmp:
            try:
                _fetch_url(url, tmp)
            except OSError as err:
                raise DataError(f"download of {url} failed ({err}). Without network, copy {filename} into {dest} "
                                f"by hand.") from None
            _verify(name, tmp, filename)
        done.append(target)
    return done
