"""Where the package's own files live: config/, models/ and bags/ from a source checkout, or from the
share/maa_ros folder that `colcon build` (ament_python) and `pip install` lay out. One function, so
every lookup works the same from a checkout and from an install."""
from __future__ import annotations

import sys
from pathlib import Path

from .errors import MaaError

PACKAGE = "maa_ros"          # the ROS package name: share/<PACKAGE>/ holds the data files
KINDS = ("config", "models", "bags", "launch")


def share_dirs() -> list[Path]:
    """Candidate roots, most specific first: the checkout this module sits in, the ament share
    folder, then <prefix>/share/maa_ros (pip's data_files)."""
    roots = []
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "package.xml").is_file():  # a source checkout (or an editable install of one)
        roots.append(checkout)
    try:  # ament_index_python is there only in a ROS environment
        from ament_index_python.packages import get_package_share_directory
        roots.append(Path(get_package_share_directory(PACKAGE)))
    except Exception:  # not installed through ament, or no ament_index_python at all
        pass
    roots.append(Path(sys.prefix) / "share" / PACKAGE)
    # an ament_python copy install puts the module under <prefix>/lib/pythonX.Y/site-packages:
    # its share folder is <prefix>/share/maa_ros
    for parent in Path(__file__).resolve().parents:
        if parent.name in ("lib", "lib64"):
            roots.append(parent.parent / "share" / PACKAGE)
            break
    seen, out = set(), []
    for r in roots:
        if r not in seen:
            seen.add(r)
            out.append(r)
    return out


def package_path(kind: str, name: str = "") -> Path:
    """`package_path("config", "go2.yaml")` -> the first existing file or folder of that name.
    Raises one clear line naming every place it looked."""
    if kind not in KINDS:
        raise MaaError(f"unknown package data kind {kind!r} (known: {', '.join(KINDS)})")
    candidates = [r / kind / name if name else r / kind for r in share_dirs()]
    for c in candidates:
        if c.exists():
            return c
    what = f"{kind}/{name}" if name else f"{kind}/"
    raise MaaError(f"{what}: not found in the package (looked in {', '.join(str(c.parent) for c in candidates)})")


def resolve(path_or_name, kind: str) -> Path:
    """A user-given path if it exists as given, else the package's own `kind/<name>` (so
    `config/demo_go2.yaml` and `models/go2-walk` work from any working directory)."""
    p = Path(path_or_name)
    if p.exists():
        return p
    parts = p.parts
    name = str(Path(*parts[1:])) if len(parts) > 1 and parts[0] == kind else str(p)
    try:
        return package_path(kind, name)
    except MaaError:
        return p  # the caller's own check names the missing path
