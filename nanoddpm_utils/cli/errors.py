"""Every failure of a command is one line on stderr and an exit code, by who can fix it: the user's (a bad flag,
bad data, an unusable run, a path of theirs the system refuses) 2; the run's or the machine's (divergence, a full
disk) 1; a bug 1, with the traceback under ``--debug`` (and in ``RUN/internal_error.txt`` during training); Ctrl-C
130, saying what was kept."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

from ..checkpoint import CheckpointError
from ..files import first_line
from ..images import DataError
from ..tracking import TrackingError
from ..train import DivergenceError


class UsageError(ValueError):
    """A command line the user can fix (a path, a combination of flags); one line saying what to do."""


USER_ERRORS = (UsageError, DataError, CheckpointError, TrackingError)
REFUSED_PATH = (PermissionError, IsADirectoryError, NotADirectoryError)  # the user's own --out or --run
INTERRUPTED = {
    "train": "interrupted; the newest checkpoint is kept (resume with --resume)",
    "sample": "interrupted; nothing written (the .npz appears only once every sample is drawn)",
    "eval": "interrupted; nothing written (eval only prints)",
}


def say(line: str) -> None:
    print(line, file=sys.stderr)


def internal_error(e: Exception, args) -> int:
    """A bug, not the user's mistake: one line saying so; the traceback kept for a bug report."""
    text = traceback.format_exc()
    kept = "rerun with --debug to print it"
    out = getattr(args, "out", None)
    if args.command == "train" and out is not None and out.is_dir():  # a run was under way: keep it beside the run
        try:
            (out / "internal_error.txt").write_text(text)
            kept = f"it is in {out / 'internal_error.txt'}"
        except OSError:
            pass
    if args.debug:
        print(text, file=sys.stderr, end="")
    say(
        f"internal error: {type(e).__name__}: {first_line(e, limit=200)} -- a bug in nanoddpm_utils, not in your "
        f"command; please report it with the traceback ({kept})"
    )
    return 1


def run(command, args) -> int:
    """Run ``command(args)``; return the exit code, having said in one line what went wrong if anything did."""
    try:
        command(args)
    except (*USER_ERRORS, DivergenceError) as e:  # the user's to fix, or the run's: the message says what to try
        say(f"error: {e}")
        return 1 if isinstance(e, DivergenceError) else 2
    except KeyboardInterrupt:
        say(INTERRUPTED[args.command])
        return 130
    except REFUSED_PATH as e:
        flag = "--run" if args.command == "eval" else "--out"
        where = Path(e.filename) if e.filename else None
        if where is not None and not where.exists():  # a new file refused: its folder is what to fix
            where = where.parent
        say(
            f"error: cannot write {where or 'a file'} ({e.strerror or type(e).__name__}); choose another {flag} in "
            "a folder you can write to, or fix its permissions"
        )
        return 2
    except OSError as e:  # the machine's: a full disk, a file removed under the run
        if args.debug:
            traceback.print_exc()
        where = f" ({e.filename})" if e.filename else ""
        say(
            f"error: {e.strerror or e}{where}; free the disk or fix the path and retry (train: --resume; "
            "--debug prints the traceback)"
        )
        return 1
    except Exception as e:
        return internal_error(e, args)
    return 0
