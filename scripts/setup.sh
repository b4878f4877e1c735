#!/usr/bin/env bash
# Sets up .venv with everything maa needs, from the package registries alone.
# Idempotent: a stamp holding the hash of the requirement files makes a second run a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
REQ="requirements/constraints.txt requirements/base.txt requirements/ros.txt requirements/go2.txt"
stamp="$VENV/.maa-setup-$(cat $REQ setup.py scripts/setup.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then exit 0; fi

# Debian packages: only the missing ones, only as root.
apt_need=()
dpkg -s cyclonedds-dev >/dev/null 2>&1 || apt_need+=(cyclonedds-dev)
# OSMesa: MuJoCo renders the demo's video offscreen on the CPU (MUJOCO_GL=osmesa)
dpkg -s libosmesa6 >/dev/null 2>&1 || apt_need+=(libosmesa6)
if [ ${#apt_need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "[setup] apt-get install ${apt_need[*]}"
    # the package lists a machine already has usually suffice; refresh them only when they do not
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_need[@]}" >/dev/null 2>&1 \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_need[@]}" >/dev/null; }
  else
    echo "[setup] missing Debian packages: ${apt_need[*]} (run as root or install them)" >&2; exit 1
  fi
fi

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# pip's notes about this machine's extra (file://) indexes are noise, not problems: filter them
pip_install() {
  "$VENV/bin/python" -m pip install -q --no-compile --disable-pip-version-check -c requirements/constraints.txt "$@" 2>&1 \
    | { grep -v "is neither a file nor a directory" || true; }
}
PIP=pip_install
# torch first, so nothing later resolves an unpinned torch to the CUDA build
$PIP torch==2.13.0
$PIP -r requirements/base.txt -r requirements/ros.txt

# cyclonedds 0.10.2 has no wheel for this Python: build it against Debian's libddsc through a
# prefix folder laid out the way its build expects (include/, lib/, bin/).
if ! "$VENV/bin/python" -c "import cyclonedds" 2>/dev/null; then
  prefix="$PWD/$VENV/cyclonedds-home"
  mkdir -p "$prefix"
  ln -sfn /usr/include "$prefix/include"
  ln -sfn "/usr/lib/$(gcc -dumpmachine)" "$prefix/lib"
  ln -sfn /usr/bin "$prefix/bin"
  CYCLONEDDS_HOME="$prefix" $PIP cyclonedds==0.10.2
fi
$PIP -r requirements/go2.txt
$PIP --no-deps -e .
rm -f "$VENV"/.maa-setup-*
touch "$stamp"
echo "[setup] .venv ready"
