"""The one checkpoint mechanism: a fingerprinted JSON file, written atomically.

A long computation (a genetic run, a KAN's edge regression) writes its state to a
:class:`CheckpointFile` as it goes.  The file carries a *fingerprint* of what defines the
computation (a hash of the data, the options that shape the result); on resume the saved
fingerprint is compared with the new one and a mismatch raises
:class:`~llmlex.exceptions.CheckpointError` naming the difference, leaving the file
untouched.  Writes go through :func:`llmlex._jsonio.write_atomic`: a kill at any moment
leaves the previous state or the new, never a torn file.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from llmlex._jsonio import (
    MALFORMED,
    check_envelope,
    dumps,
    envelope,
    malformed_reason,
    write_atomic,
)
from llmlex.exceptions import CheckpointError

__all__ = ["CheckpointFile", "options_mismatch"]


def options_mismatch(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    same: Callable[[Any, Any], bool] = lambda a, b: bool(a == b),
) -> str | None:
    """``"different options: k was a, now b; ..."`` for the keys that differ, else None."""
    diff = [k for k in sorted(set(old) | set(new)) if not same(old.get(k), new.get(k))]
    if not diff:
        return None
    return "different options: " + "; ".join(
        f"{k} was {_short(old.get(k))}, now {_short(new.get(k))}" for k in diff
    )


def _short(value: Any, limit: int = 200) -> str:
    # A damaged file's option may be megabytes of JSON: the message shows its start.
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


class CheckpointFile:
    """A checkpoint document of one ``kind`` at ``path``, identified by a fingerprint.

    Parameters
    ----------
    path : str or path-like
        The file.
    kind : str
        Document kind written in the header (e.g. ``"genetic_checkpoint"``).
    what : str
        What the computation is, for messages ("run", "KAN regression").
    fingerprint : mapping
        JSON-able fields that define the computation; written into every document.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        kind: str,
        what: str,
        fingerprint: Mapping[str, Any],
    ) -> None:
        self.path = Path(path)
        self.kind = kind
        self.what = what
        self.fingerprint = dict(fingerprint)

    def exists(self) -> bool:
        """Whether the file is there to resume from."""
        return self.path.exists()

    def damaged(self, why: object) -> CheckpointError:
        """The error for a file that cannot be read back (it is left alone)."""
        return CheckpointError(
            f"cannot resume from {str(self.path)!r}: {why}. It was left untouched; pass "
            "resume=False to start afresh and overwrite it, or another checkpoint path."
        )

    @contextlib.contextmanager
    def decoding(self, what: str = "") -> Iterator[None]:
        """Turn any failure to decode the document read into a :meth:`damaged` error.

        Whatever a damaged or hostile file holds (a value of the wrong type anywhere,
        nesting deep enough to exhaust the stack), resuming from it raises
        :class:`CheckpointError`; a :class:`CheckpointError` raised inside (another
        run's file) passes unchanged.  ``what`` prefixes the reason.
        """
        try:
            yield
        except CheckpointError:
            raise
        except (RecursionError, *MALFORMED) as err:  # PersistError is a ValueError
            reason = malformed_reason(err)
            raise self.damaged(f"{what} ({reason})" if what else reason) from None

    def read(self) -> dict[str, Any]:
        """The saved document, header checked; :meth:`damaged` errors if unreadable."""
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            check_envelope(doc, (self.kind,))
        except (ValueError, OSError, RecursionError) as err:  # PersistError is a ValueError
            raise self.damaged(err) from None
        return doc

    def check(self, why: str | None) -> None:
        """Raise :class:`CheckpointError` if ``why`` (a mismatch description) is set."""
        if why is not None:
            raise CheckpointError(
                f"the checkpoint {str(self.path)!r} belongs to another {self.what} ({why}); "
                "it was left untouched. Pass resume=False to overwrite it, or another "
                "checkpoint path."
            )

    def write(self, body: Mapping[str, Any]) -> None:
        """Replace the file atomically with the fingerprint plus ``body``."""
        write_atomic(self.path, dumps(envelope(self.kind, {**self.fingerprint, **body})))
