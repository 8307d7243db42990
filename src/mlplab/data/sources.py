"""Where dataset files are looked for, and the checked download of the standard files into a user cache."""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import time
import zlib
from pathlib import Path
from typing import Any

from mlplab.data.readers import MAX_DATA_BYTES
from mlplab.errors import DataError
from mlplab.limits import number_from_env, seconds_from_env

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


DOWNLOAD_TIMEOUT = 600.0  # seconds per file, in total: a stalled or crawling mirror is given up on
STALL_TIMEOUT = 30.0  # seconds without a byte, and the window over which the minimum rate is measured
MIN_RATE = 10_000  # bytes per second over each window: MNIST's 9.9 MB in at most 17 minutes, a trickle given up on


def mirrors(name: str) -> list[str]:
    """The mirrors to try in order: $MLPLAB_MIRROR first when set (a local or institutional copy)."""
    extra = os.environ.get("MLPLAB_MIRROR", "").strip()
    return ([extra.rstrip("/") + "/"] if extra else []) + MIRRORS[name]


def fetch(name: str, target: Path) -> dict[str, Path]:
    """Download the standard files from the first mirror that serves them, checking each SHA-256."""
    target.mkdir(parents=True, exist_ok=True)
    for stem, digest in FILES[name].items():
        final = target / f"{stem}.gz"
        if final.is_file():
            continue
        errors = []
        for mirror in mirrors(name):
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


class _Deadline:
    """The download's progress hook: shows progress on a terminal, and ends the download once its time is up or when
    fewer than `min_rate` bytes per second arrived over the last `window` seconds (a mirror that trickles)."""

    def __init__(self, url: str, seconds: float, window: float, min_rate: float) -> None:
        self.url, self.seconds, self.window, self.min_rate = url, seconds, window, min_rate
        self.start = time.monotonic()
        self.deadline = self.start + seconds
        self.mark, self.marked = self.start, 0  # the start of the current window, and the bytes by then
        self.total = 0
        self.received = 0
        self.bar: Any = None

    def update(self, n: int) -> None:
        now = time.monotonic()
        self.received += n
        if now > self.deadline:
            raise TimeoutError(f"not finished after {self.seconds:g} s (MLPLAB_DOWNLOAD_TIMEOUT)")
        if now - self.mark >= self.window:
            rate = (self.received - self.marked) / (now - self.mark)
            if rate < self.min_rate:
                raise TimeoutError(
                    f"{rate:,.0f} bytes/s over {now - self.mark:.0f} s, slower than the minimum of "
                    f"{self.min_rate:,.0f} (MLPLAB_DOWNLOAD_MIN_RATE)"
                )
            self.mark, self.marked = now, self.received
        if self.bar is None and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=self.total or None, unit="B", unit_scale=True, desc=self.url.rsplit("/", 1)[-1])
        if self.bar is not None:
            self.bar.update(n)

    def reset(self) -> None:
        if self.bar is not None:
            self.bar.reset()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _Downloader:
    """A pooch downloader that hands every piece of data to the progress hook as soon as it arrives.

    pooch's HTTPDownloader reads whole chunks: a mirror sending a byte every few seconds fills none, so nothing
    would ever look at the clock. Reading with read1 returns after each packet, so a trickle is measured (and a
    silence ends at the socket's read timeout)."""

    def __init__(self, progress: _Deadline, timeouts: tuple[float, float]) -> None:
        self.progress, self.timeouts = progress, timeouts

    def __call__(self, url: str, output_file: Any, pooch: Any, check_only: bool = False) -> None:
        import requests

        with requests.get(url, timeout=self.timeouts, stream=True) as response, open(output_file, "wb") as out:
            response.raise_for_status()
            self.progress.total = int(response.headers.get("content-length") or 0)
            while chunk := response.raw.read1(1 << 16, decode_content=True):
                out.write(chunk)
                self.progress.update(len(chunk))
        self.progress.close()


def _download_checked(url: str, final: Path, digest: str) -> None:
    """Download `url` with pooch beside `final` within the total timeout and above the minimum rate, check the
    SHA-256 of the uncompressed bytes (so any mirror's gzip checks the same), then move it into place."""
    import pooch
    import requests
    import urllib3

    pooch.get_logger().setLevel("WARNING")  # it logs each file's hash at INFO on stderr
    seconds = seconds_from_env("MLPLAB_DOWNLOAD_TIMEOUT", DOWNLOAD_TIMEOUT)
    stall = min(seconds_from_env("MLPLAB_DOWNLOAD_STALL", STALL_TIMEOUT), seconds)
    min_rate = number_from_env("MLPLAB_DOWNLOAD_MIN_RATE", MIN_RATE, "bytes per second", 1e12)
    part = final.with_name(f".{final.name}.{os.getpid()}.download")
    timeouts = (min(10.0, seconds), stall)  # connecting, and waiting for the next bytes
    downloader = _Downloader(_Deadline(url, seconds, stall, min_rate), timeouts)
    try:
        pooch.retrieve(url, known_hash=None, fname=part.name, path=part.parent, downloader=downloader)
        actual = _gunzipped_sha256(part)
        if actual != digest:
            raise OSError(f"checksum mismatch for {url}: {actual} != {digest}")
        os.replace(part, final)
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
        raise OSError(_network_problem(exc, timeouts[1])) from None
    finally:
        part.unlink(missing_ok=True)


def _network_problem(exc: Exception, stall: float) -> str:
    """A short reason for a failed request (requests' own messages run to hundreds of characters)."""
    import requests

    text = str(exc)
    if "Failed to resolve" in text or "NameResolution" in text:
        return "host not found (offline?)"
    if isinstance(exc, requests.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.ReadTimeout) or "Read timed out" in text or "read timeout" in text.lower():
        return f"no data for {stall:g} s"
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    if "Connection refused" in text:
        return "connection refused"
    return f"{type(exc).__name__}: {text[:100]}"


def _gunzipped_sha256(path: Path) -> str:
    """SHA-256 of a gzip file's content, streamed (never the whole file in memory); OSError when not gzip."""
    digest = hashlib.sha256()
    total = 0
    try:
        with gzip.open(path, "rb") as stream:
            while chunk := stream.read(1 << 20):
                total += len(chunk)
                if total > MAX_DATA_BYTES:
                    raise OSError(f"{path.name}: inflates past {MAX_DATA_BYTES:,} bytes")
                digest.update(chunk)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise OSError(f"not a complete gzip file ({exc})") from None
    return digest.hexdigest()
