"""Small helpers shared by the subcommands."""
from __future__ import annotations

import sys

from ..errors import MaaError


def parse_sets(items: list[str] | None) -> dict:
    """--set section.key=value (value parsed as YAML: numbers, lists, booleans)."""
    import yaml

    out = {}
    for it in items or []:
        if "=" not in it:
            raise MaaError(f"--set {it!r}: expected KEY=VALUE")
        k, v = it.split("=", 1)
        try:
            out[k.strip()] = yaml.safe_load(v)
        except yaml.YAMLError:
            raise MaaError(f"--set {it!r}: value is not valid YAML") from None
    return out


def table(rows: list[dict], file=sys.stdout) -> None:
    if not rows:
        return
    cols = list(rows[0])
    w = {c: max(len(str(c)), *(len(_fmt(r.get(c))) for r in rows)) for c in cols}
    print("  ".join(str(c).ljust(w[c]) for c in cols), file=file)
    print("  ".join("-" * w[c] for c in cols), file=file)
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(w[c]) for c in cols), file=file)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return "" if v is None else str(v)
