"""`maa` command line. Each subcommand lives in its own module with `add_parser(sub)` and `run(args)`.

Bad input (MaaError) prints one line `maa: error: ...` and exits with code 2. Any other exception is
a bug of ours: one line `maa: internal error: ...` and exit 1; `MAA_DEBUG=1` shows its traceback
(and the traceback of a MaaError too).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import MaaError

# subcommand -> module in this package; modules import heavy libraries inside run(), so --help is fast
SUBCOMMANDS = {
    "info": "info",
    "train": "train",
    "generate": "generate",
    "prompt": "prompt",
    "plot": "plot",
    "index": "index",
    "export": "export",
    "eval": "evaluate",
    "collect": "collect",
    "demo": "demo",
    "go2-sim": "go2_sim",
    "go2-gamepad": "go2_gamepad",
    "adaptation": "adaptation",
    "keygen": "keygen",
    "sign": "sign",
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="maa", description="Make-An-Agent: generate policies from recorded behavior.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, mod in SUBCOMMANDS.items():
        try:
            m = importlib.import_module(f"{__name__}.{mod}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{mod}":
                raise
            continue  # subcommand not built yet
        sp = m.add_parser(sub, name)
        sp.set_defaults(_run=m.run)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = os.environ.get("MAA_DEBUG", "") not in ("", "0")
    try:
        return int(args._run(args) or 0)
    except MaaError as e:
        if debug:
            raise
        print(f"maa: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("maa: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # last resort for our own bugs: bad input is converted to MaaError where it is parsed
        if debug:
            raise
        print(f"maa: internal error: {type(e).__name__}: {_one_line(e)} (MAA_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
