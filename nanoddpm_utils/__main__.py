"""``python -m nanoddpm_utils train|sample|eval …`` (and the ``nanoddpm`` script): parse the flags before jax is
imported (so ``--help`` and a mistyped flag answer at once), then run the command (``cli/``)."""

from __future__ import annotations

import sys

from .cli.parsing import build_parser
from .files import first_line


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import jax  # noqa: F401  (here, not above: only a command that runs pays for it)
    except Exception as e:  # a broken install is the machine's, not a bug of ours: one line, not a traceback
        print(
            f"error: cannot import jax ({type(e).__name__}: {first_line(e)}); reinstall jax: pip install -U jax",
            file=sys.stderr,
        )
        return 1
    from .cli import commands, errors

    return errors.run(commands.COMMANDS[args.command], args)


if __name__ == "__main__":
    sys.exit(main())
