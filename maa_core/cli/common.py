"""Small helpers shared by the subcommands."""
from __future__ import annotations

import sys

from ..errors import MaaError, check


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


def device(name: str | None):
    """--device: None (CUDA when present), or a torch device name that exists on this machine."""
    if name is None:
        return None
    import torch

    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise MaaError(f"--device {name!r}: not a device name, expected cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        check(torch.cuda.is_available(), f"--device {name!r}: CUDA is not available on this machine")
        check(dev.index is None or dev.index < torch.cuda.device_count(),
              f"--device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    else:
        check(dev.type == "cpu", f"--device {name!r}: expected cpu, cuda or cuda:N")
    return dev


def out_dir(path, option: str = "--out"):
    """An output folder: refused when the path names an existing file."""
    from pathlib import Path

    path = Path(path)
    check(not path.exists() or path.is_dir(), f"{path}: exists and is not a folder ({option} names an output folder)")
    return path


def refuse_overwrite(paths, force: bool, flag: str = "--force") -> None:
    """Nothing existing is overwritten unless the user said so."""
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise MaaError(f"{existing[0]}: exists already{more}; pass {flag} to overwrite")


def table(rows: list[dict], file=None) -> None:
    if not rows:
        return
    file = file or sys.stdout  # looked up per call: a default bound at import would outlive a redirected stdout
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
