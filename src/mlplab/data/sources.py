"""Where dataset files are looked for, and the checked download of the standard files into a user cache."""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

from mlplab.errors import DataError

# The four standard files of each dataset; the SHA-256 is of the *uncompressed* IDX bytes, so a mirror's
# re-compressed copy checks the same as the original.
FILES = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
MIRRORS = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}
ROLES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def cache_dir() -> Path:
    """The user cache directory for downloaded datasets ($MLPLAB_CACHE, else the XDG cache)."""
    if os.environ.get("MLPLAB_CACHE"):
        return Path(os.environ["MLPLAB_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mlplab"


def candidate_dirs(name: str, data_dir: str | Path | None) -> list[Path]:
    """The directories searched for `name`'s files, in order."""
    if data_dir is not None:
        root = Path(data_dir)
        return [root, root / name]
    dirs = []
    if os.environ.get("MLPLAB_DATA"):
        dirs.append(Path(os.environ["MLPLAB_DATA"]) / name)
    dirs += [cache_dir() / name, Path("/usr/share/datasets") / name]
    return dirs


def find_in(directory: Path, name: str) -> dict[str, Path] | None:
    """The dataset's files in `directory`: the four IDX files (raw or .gz) or a train/test CSV pair."""
    if not directory.is_dir():
        return None
    idx = {}
    for role, stem in ROLES.items():
        options = [stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"]
        found = next((directory / o for o in options if (directory / o).is_file()), None)
        if found is None:
            break
        idx[role] = found
    else:
        return idx
    stem = name.replace("-", "_")
    for train, test in [(f"{stem}_train.csv", f"{stem}_test.csv"), ("train.csv", "test.csv")]:
        if (directory / train).is_file() and (directory / test).is_file():
            return {"train_csv": directory / train, "test_csv": directory / test}
    return None


def locate(name: str, data_dir: str | Path | None = None, download: bool | None = None) -> dict[str, Path]:
    """Find `name`'s files, downloading them into the cache when nowhere else has them."""
    dirs = candidate_dirs(name, data_dir)
    for directory in dirs:
        files = find_in(directory, name)
        if files:
            return files
    looked = ", ".join(str(d) for d in dirs)
    if data_dir is not None:
        raise DataError(
            f"no {name} files in {data_dir} (looked in {looked}); expected the four IDX files "
            f"({', '.join(FILES[name])}, raw or .gz) or {name.replace('-', '_')}_train.csv/_test.csv"
        )
    if download is None:
        download = os.environ.get("MLPLAB_NO_DOWNLOAD", "") in ("", "0")
    if not download:
        raise DataError(f"{name} not found (looked in {looked}) and downloads are off (MLPLAB_NO_DOWNLOAD)")
    try:
        return fetch(name, cache_dir() / name)
    except OSError as exc:
        raise DataError(
            f"{name} not found (looked in {looked}) and the download failed ({exc}); put the four IDX files "
            f"in one of those directories, or pass --data-dir DIR"
        ) from None


def fetch(name: str, target: Path) -> dict[str, Path]:
    """Download the standard files from the first mirror that serves them, checking each SHA-256."""
    target.mkdir(parents=True, exist_ok=True)
    for stem, digest in FILES[name].items():
        final = target / f"{stem}.gz"
        if final.is_file():
            continue
        errors = []
        for mirror in MIRRORS[name]:
            try:
                _download_checked(mirror + f"{stem}.gz", final, digest)
                break
            except OSError as exc:
                errors.append(f"{mirror}: {exc}")
        else:
            raise OSError("; ".join(errors))
    files = find_in(target, name)
    assert files is not None
    return files


def _download_checked(url: str, final: Path, digest: str) -> None:
    """Download url to a temporary file, check the uncompressed SHA-256, then move it into place."""
    with urllib.request.urlopen(url, timeout=60) as response:
        payload = response.read()
    actual = hashlib.sha256(gzip.decompress(payload)).hexdigest()
    if actual != digest:
        raise OSError(f"checksum mismatch for {url}: {actual} != {digest}")
    fd, tmp = tempfile.mkstemp(dir=final.parent, suffix=".part")
    with os.fdopen(fd, "wb") as out:
        out.write(payload)
    os.replace(tmp, final)
