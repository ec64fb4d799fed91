"""Checkpoint files in the local cache: download, verify, hand out.

A registry checkpoint is downloaded once (with pooch, progress bar via tqdm)
into :func:`cache_dir`, checked against the hash its publisher gives (or its
size, where no hash is published) and only then moved to its final name. A
file that fails the check is deleted and never loaded.

Hashing a multi-GB file on every load would cost seconds, so after a file
passed, a small record beside it (``.<filename>.verified``) keeps its size
and modification time. While both are unchanged, the file is trusted without
hashing; when either changes, it is hashed again. As git does for its index,
a file modified within two seconds of its check is always re-hashed, since a
change in the same clock tick would leave its time stamp unchanged.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import pooch

from ..errors import DownloadError
from .registry import ModelInfo, get_model_info

#: Environment variable naming the folder that holds downloaded checkpoints.
CACHE_ENV = "SAMKIT_CACHE_DIR"

_MARKER = ".{}.verified"
_RACY_NS = 2_000_000_000  # a check within this time of the last change proves nothing


def cache_dir() -> Path:
    """The folder where downloaded checkpoints are kept.

    ``$SAMKIT_CACHE_DIR`` if set, otherwise the user cache folder of the
    platform (``~/.cache/samkit`` on Linux, see :func:`pooch.os_cache`).
    The folder is created on the first download, not here.

    Returns
    -------
    Path
    """
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    return Path(pooch.os_cache("samkit"))


def cached_path(name_or_info: str | ModelInfo) -> Path:
    """Where the checkpoint ``name_or_info`` is (or will be) kept in the cache.

    Parameters
    ----------
    name_or_info : str or ModelInfo
        A registry name or entry.

    Returns
    -------
    Path
        ``cache_dir() / info.filename``; the file need not exist.
    """
    return cache_dir() / _as_info(name_or_info).filename


def is_cached(name_or_info: str | ModelInfo) -> bool:
    """Whether the checkpoint is in the cache and was verified there (no hashing).

    Parameters
    ----------
    name_or_info : str or ModelInfo
        A registry name or entry.

    Returns
    -------
    bool
        True if the file exists and its verification record still matches
        its size and modification time.
    """
    info = _as_info(name_or_info)
    path = cached_path(info)
    return path.is_file() and _record_matches(path, info, allow_racy=True)


def fetch_checkpoint(name_or_info: str | ModelInfo, *, progress: bool = True) -> Path:
    """The local path of a verified registry checkpoint, downloading it if needed.

    Parameters
    ----------
    name_or_info : str or ModelInfo
        A registry name (see :func:`samkit.models.list_models`) or an entry
        that need not be registered.
    progress : bool
        Show a progress bar while downloading.

    Returns
    -------
    Path
        The checkpoint file in :func:`cache_dir`, checked against the
        entry's hash (or size, where no hash is published).

    Raises
    ------
    UnknownModelError
        If the name is not in the registry.
    DownloadError
        If the download fails (offline, server error, broken transfer), the
        file does not match its published hash or size (it is deleted), the
        hash needs a package that is not installed, or the cache folder is
        not writable. The message says how to provide the file by hand.

    Warns
    -----
    UserWarning
        When a cached file changed since it was verified and no longer
        matches; it is deleted and downloaded again.
    """
    info = _as_info(name_or_info)
    folder = cache_dir()
    path = folder / info.filename
    if path.is_file():
        if _record_matches(path, info, allow_racy=False):
            return path
        problem = _check_file(path, info)
        if problem is None:
            _write_record(path, info)
            return path
        _delete(path, info)
        warnings.warn(
            f"the cached {info.name} checkpoint {path} does not match its published "
            f"{_what_is_checked(info)} ({problem}); it was deleted and will be downloaded again",
            UserWarning,
            stacklevel=2,
        )
    _require_algorithm(info)
    _prepare_folder(folder, info)
    part = _download(info, folder, progress)
    problem = _check_size(part, info)
    if problem is not None:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"{info.name}: the file downloaded from {info.url} is not the published one ({problem}); "
            f"it was deleted and not loaded. {_offline_hint(info, path)}"
        )
    os.replace(part, path)
    _write_record(path, info)
    return path


# --------------------------------------------------------------------------
# checking files
# --------------------------------------------------------------------------


def _as_info(name_or_info: str | ModelInfo) -> ModelInfo:
    if isinstance(name_or_info, ModelInfo):
        return name_or_info
    if isinstance(name_or_info, str):
        return get_model_info(name_or_info)
    raise TypeError(f"expected a model name or a ModelInfo, not {type(name_or_info).__name__}")


def _what_is_checked(info: ModelInfo) -> str:
    return info.known_hash.split(":")[0] + " hash" if info.known_hash else "size"


def _require_algorithm(info: ModelInfo) -> None:
    if info.known_hash is None:
        return
    alg = info.known_hash.split(":")[0]
    if alg not in pooch.hashes.ALGORITHMS_AVAILABLE:
        package = "xxhash" if alg.startswith("xxh") else f"a library providing {alg}"
        raise DownloadError(
            f"{info.name}: its publisher gives only a {alg} hash, and checking that needs "
            f"the {package} package: pip install {package}"
        )


def _check_size(path: Path, info: ModelInfo) -> str | None:
    size = path.stat().st_size
    if info.size_bytes is not None and size != info.size_bytes:
        return f"expected {info.size_bytes:,} bytes, found {size:,}"
    return None


def _check_file(path: Path, info: ModelInfo) -> str | None:
    """None if ``path`` matches ``info``'s size and hash, else what differs."""
    problem = _check_size(path, info)
    if problem is not None or info.known_hash is None:
        return problem
    _require_algorithm(info)
    alg, _, expected = info.known_hash.partition(":")
    found = pooch.file_hash(str(path), alg=alg)
    if found.lower() != expected:
        return f"expected {alg} {expected}, found {found}"
    return None


def _record_path(path: Path) -> Path:
    return path.with_name(_MARKER.format(path.name))


def _record_matches(path: Path, info: ModelInfo, *, allow_racy: bool) -> bool:
    try:
        record = json.loads(_record_path(path).read_text())
        stat = path.stat()
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict):
        return False
    same = (
        record.get("url") == info.url
        and record.get("hash") == info.known_hash
        and record.get("size") == stat.st_size
        and record.get("mtime_ns") == stat.st_mtime_ns
    )
    settled = stat.st_mtime_ns < record.get("verified_ns", 0) - _RACY_NS
    return same and (settled or allow_racy)


def _write_record(path: Path, info: ModelInfo) -> None:
    stat = path.stat()
    record = {
        "url": info.url,
        "hash": info.known_hash,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "verified_ns": time.time_ns(),
    }
    try:
        _record_path(path).write_text(json.dumps(record))
    except OSError:
        pass  # a read-only cache: the file is simply hashed again next time


def _delete(path: Path, info: ModelInfo) -> None:
    try:
        path.unlink(missing_ok=True)
        _record_path(path).unlink(missing_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"{info.name}: the cached file {path} does not match its published {_what_is_checked(info)} "
            f"and could not be deleted ({exc}); delete it by hand"
        ) from exc


# --------------------------------------------------------------------------
# downloading
# --------------------------------------------------------------------------


def _offline_hint(info: ModelInfo, path: Path) -> str:
    return (
        f"To work without this download: pass a local copy to samkit.load_model('/path/to/{info.filename}'), "
        f"or copy the file to {path} (it is checked on first use), "
        f"or set {CACHE_ENV} to a folder that already holds {info.filename}."
    )


def _prepare_folder(folder: Path, info: ModelInfo) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(
            f"{info.name}: cannot create the cache folder {folder} ({exc.strerror or exc}); "
            f"set {CACHE_ENV} to a writable folder, or pass a local file to samkit.load_model()"
        ) from exc
    if not os.access(folder, os.W_OK):
        raise DownloadError(
            f"{info.name}: the cache folder {folder} is read-only; set {CACHE_ENV} to a writable "
            f"folder, or pass a local file to samkit.load_model()"
        )


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _reason(exc: BaseException) -> str:
    """What went wrong at the bottom of a requests/urllib3 error chain, e.g. 'Connection refused'.

    requests wraps urllib3's errors, which wrap the socket's; their messages repeat the
    host, pool and retries. The innermost error with a system message says it plainly.
    """
    chain, todo = [], [exc]
    while todo:
        error = todo.pop(0)
        if any(error is seen for seen in chain):
            continue
        chain.append(error)
        todo += [e for e in (*error.args, getattr(error, "reason", None), error.__cause__, error.__context__)
                 if isinstance(e, BaseException)]  # fmt: skip
    system = [e.strerror for e in chain if isinstance(e, OSError) and e.strerror]
    if system:
        return system[-1]
    if any(isinstance(e, TimeoutError) or "Timeout" in type(e).__name__ for e in chain):
        return "timed out"
    return _short(chain[-1])


def _download(info: ModelInfo, folder: Path, progress: bool) -> Path:
    """Download ``info.url`` to a part file in ``folder``; pooch checks the hash."""
    import requests  # pooch's own dependency; imported late as pooch does

    part = folder / f".{info.filename}.{os.getpid()}.part"
    part.unlink(missing_ok=True)
    final = folder / info.filename
    done = False
    logger = pooch.get_logger()  # its messages would name the part file
    level = logger.level
    logger.setLevel("WARNING")
    try:
        pooch.retrieve(
            info.url, known_hash=info.known_hash, fname=part.name, path=folder, progressbar=progress
        )
        done = True
    except ValueError as exc:  # pooch: hash mismatch (it already deleted its download)
        raise DownloadError(
            f"{info.name}: the file downloaded from {info.url} is not the published one "
            f"({_short(exc)}); it was deleted and not loaded. {_offline_hint(info, final)}"
        ) from exc
    except requests.exceptions.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        reason = exc.response.reason if exc.response is not None else _reason(exc)
        raise DownloadError(
            f"{info.name}: the server refused {info.url} (HTTP {status} {reason}). {_offline_hint(info, final)}"
        ) from exc
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise DownloadError(
            f"{info.name}: cannot reach {info.url} ({_reason(exc)}; offline?). {_offline_hint(info, final)}"
        ) from exc
    except requests.exceptions.RequestException as exc:  # e.g. the transfer broke off
        raise DownloadError(
            f"{info.name}: the download from {info.url} failed ({_reason(exc)}); nothing was kept. "
            f"Try again, or: {_offline_hint(info, final)}"
        ) from exc
    except OSError as exc:  # disk full, permissions
        raise DownloadError(
            f"{info.name}: cannot write into the cache folder {folder} ({_short(exc)}); "
            f"set {CACHE_ENV} to a writable folder with room for the file"
        ) from exc
    finally:
        logger.setLevel(level)
        if not done:
            part.unlink(missing_ok=True)
    return part
