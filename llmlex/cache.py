"""An on-disk cache of language-model replies, so that re-running a cell costs nothing.

:class:`ReplyCache` maps a key computed from everything that determines a reply -- the
endpoint (``base_url``), the model, the messages (system prompt and prompt text, with the
image replaced by a hash of it), the sampling options (temperature, ``max_tokens``,
``extra_body``) and a per-request discriminator (the request's seed) -- to the reply text
and its token usage.  The discriminator matters: the first generation sends the same
prompt ``population_size`` times, and without it a cache would hand back one reply
``population_size`` times instead of reproducing the run's different replies.

Storage is a directory with one small JSON file per key (``<dir>/<ab>/<key>.json``),
each written to a temporary file and moved into place with :func:`os.replace`.  So:

* two processes (or threads) may read and write the same cache at once: a reader sees a
  whole entry or none, and two writers of one key leave one whole entry;
* a damaged entry (truncated, garbage, nested too deeply, not UTF-8, wrong key inside,
  too large) is a miss and is replaced by the next write of that key; it never raises;
* a process killed while writing leaves a temporary file (``<dir>/<ab>/.<key>...tmp``):
  :meth:`ReplyCache.clear` removes every one, and opening a cache removes those older than
  an hour (younger ones may belong to a writer still at work).

What is stored is bounded: a reply text longer than :data:`MAX_REPLY_CHARS` -- as much as
llmlex reads of any reply, so a replay extracts exactly what the original did -- is
stored cut to that length, with ``"truncated": true`` beside it, and an entry whose JSON
would still exceed :data:`MAX_ENTRY_BYTES` is not stored at all (the call is made again
next time).

The API key is never part of a key or an entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["MAX_ENTRY_BYTES", "MAX_REPLY_CHARS", "ReplyCache", "as_cache", "request_key"]

log = logging.getLogger(__name__)

_FORMAT = 1

#: Characters of a reply that llmlex reads (the extractor ignores the rest) and stores.
MAX_REPLY_CHARS = 200_000
#: Largest entry file written or read (a stored reply is at most 4 bytes per character).
MAX_ENTRY_BYTES = 4 * MAX_REPLY_CHARS + 65_536
#: Age in seconds after which a temporary file is an orphan of a killed writer.
STALE_TEMP_SECONDS = 3600.0


def _image_token(url: str) -> str:
    """A data URL (or any URL) replaced by a short hash of its bytes."""
    return "sha256:" + hashlib.sha256(url.encode()).hexdigest()


def _strip_images(messages: Any) -> Any:
    """Messages with every image URL replaced by its hash (keys stay small)."""
    if isinstance(messages, list):
        return [_strip_images(m) for m in messages]
    if isinstance(messages, dict):
        out = {}
        for k, v in messages.items():
            if k == "image_url" and isinstance(v, dict) and isinstance(v.get("url"), str):
                out[k] = {**v, "url": _image_token(v["url"])}
            else:
                out[k] = _strip_images(v)
        return out
    return messages


def request_key(request: Mapping[str, Any]) -> str:
    """The cache key of a request description (a hex SHA-256 digest).

    Parameters
    ----------
    request : mapping
        JSON-able description of the call, e.g. ``{"base_url": ..., "model": ...,
        "messages": [...], "temperature": ..., "max_tokens": ..., "seed": ...}``.
        Image URLs inside ``messages`` are hashed first.

    Returns
    -------
    str
        64 hex digits.
    """
    norm = dict(request)
    if "messages" in norm:
        norm["messages"] = _strip_images(norm["messages"])
    text = json.dumps(norm, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class ReplyCache:
    """A directory of cached replies, safe for concurrent processes.

    Parameters
    ----------
    path : str or path-like
        The cache directory (created on first write).

    Attributes
    ----------
    hits, misses : int
        Lookups answered and not answered by this object since it was made.

    Examples
    --------
    >>> import tempfile
    >>> cache = ReplyCache(tempfile.mkdtemp())
    >>> key = request_key({"model": "m", "messages": [], "seed": 1})
    >>> cache.get(key) is None
    True
    >>> cache.put(key, {"content": "ansatz: params[0]*x"})
    >>> cache.get(key)["content"]
    'ansatz: params[0]*x'
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()
        self._remove_temporaries(older_than=STALE_TEMP_SECONDS)

    def __repr__(self) -> str:
        return f"ReplyCache({str(self.path)!r})"

    def __getstate__(self) -> dict[str, Any]:
        # A pickled cache is its directory (each process counts its own hits and misses);
        # the lock does not pickle.  Another process opening it is safe: see the module.
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = Path(state["path"])
        self.hits = 0
        self.misses = 0
        self._lock = threading.Lock()

    def _file(self, key: str) -> Path:
        if len(key) < 8 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"cache keys are hex digests, got {key[:80]!r}")
        return self.path / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored value of ``key``, or None (missing or damaged entries are misses).

        Never raises for what is in the file: unreadable, truncated, garbage, deeply
        nested, non-UTF-8 or oversized entries are all misses (logged).

        Raises
        ------
        ValueError
            If ``key`` is not a hex digest (a caller's mistake, not the file's).
        """
        file = self._file(key)
        value: dict[str, Any] | None = None
        try:
            if file.stat().st_size > MAX_ENTRY_BYTES:
                raise ValueError(f"larger than {MAX_ENTRY_BYTES} bytes")
            doc = json.loads(file.read_text(encoding="utf-8"))
            if (
                isinstance(doc, dict)
                and doc.get("format") == _FORMAT
                and doc.get("key") == key
                and isinstance(doc.get("value"), dict)
            ):
                value = doc["value"]
            else:
                log.warning("ignoring a damaged cache entry %s", file)
        except FileNotFoundError:
            pass
        except (OSError, ValueError, UnicodeDecodeError, RecursionError) as err:
            # Truncated, garbage or nested past the parser's stack: a miss; the next put()
            # of this key replaces it.
            why = f"{type(err).__name__}: {err}"[:200]
            log.warning("ignoring an unreadable cache entry %s: %s", file, why)
        with self._lock:
            if value is None:
                self.misses += 1
            else:
                self.hits += 1
        return value

    def put(self, key: str, value: Mapping[str, Any]) -> None:
        """Store ``value`` (a JSON-able mapping) under ``key``, atomically.

        A ``"content"`` text longer than :data:`MAX_REPLY_CHARS` is stored cut to that
        length with ``"truncated": True``; an entry still larger than
        :data:`MAX_ENTRY_BYTES` is not stored.  A failure to write (disk full, read-only
        directory) is logged, not raised: the cache is an optimisation and must not end
        a paid run.
        """
        file = self._file(key)
        stored = dict(value)
        content = stored.get("content")
        if isinstance(content, str) and len(content) > MAX_REPLY_CHARS:
            stored.update(content=content[:MAX_REPLY_CHARS], truncated=True)
        text = json.dumps({"format": _FORMAT, "key": key, "value": stored})
        if len(text) > MAX_ENTRY_BYTES // 4 and len(text.encode("utf-8")) > MAX_ENTRY_BYTES:
            log.warning("not caching an entry of more than %d bytes", MAX_ENTRY_BYTES)
            return
        tmp = None
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=file.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, file)
            tmp = None
        except OSError as err:
            log.warning("could not write the cache entry %s: %s", file, err)
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._file(key).is_file()

    def __len__(self) -> int:
        if not self.path.is_dir():
            return 0
        return sum(1 for _ in self.path.glob("??/*.json"))

    def clear(self) -> None:
        """Delete every entry and every temporary file (the directory itself stays).

        Temporary files are removed whatever their age: a write in progress in another
        process then fails (logged there) and stores nothing.
        """
        if not self.path.is_dir():
            return
        for file in self.path.glob("??/*.json"):
            with contextlib.suppress(OSError):
                file.unlink()
        self._remove_temporaries(older_than=None)

    def _remove_temporaries(self, *, older_than: float | None) -> None:
        """Delete the temporary files of writers (killed ones leave theirs behind).

        ``older_than`` seconds spares the files of writers that may still be at work;
        None removes all.
        """
        if not self.path.is_dir():
            return
        now = time.time()
        try:
            for tmp in self.path.glob("??/.*.tmp"):
                with contextlib.suppress(OSError):
                    if older_than is None or now - tmp.stat().st_mtime > older_than:
                        tmp.unlink()
                        log.debug("removed the temporary cache file %s", tmp)
        except OSError as err:  # an unlistable directory: nothing to clean up here
            log.warning("could not look for temporary files in %s: %s", self.path, err)


def as_cache(cache: ReplyCache | str | os.PathLike[str] | None) -> ReplyCache | None:
    """``cache`` as a :class:`ReplyCache`: a path makes one, None stays None."""
    if cache is None or isinstance(cache, ReplyCache):
        return cache
    if isinstance(cache, (str, os.PathLike)):
        return ReplyCache(cache)
    raise TypeError(f"cache must be a ReplyCache, a directory path or None, got {cache!r}")
