"""The policy I/O contract: what an actor assumes about the robot it runs on, and what a controller
deploys it with — joint order, observation layout and scales, history length, action scale and
clip, PD gains, control rate, the adaptation module's hash.

A policy whose joint order, observation scales or gains differ from the deployment's is the most
common sim2real failure, and it is otherwise only found on the robot. So the contract travels with
the policy: a generator folder holds it (`contract.json`, written by `write_generator_contract`),
the generator node copies it into the header of every actor blob it publishes (`extra["contract"]`),
and the Go2 controller node compares it with its own (robot config + adaptation module) before a
swap, refusing a mismatch with one line naming the field (`mismatch`).
"""
from __future__ import annotations

import json
import math
import struct
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from ..errors import MaaError, check, exit_code

CONTRACT_FILE = "contract.json"       # in a generator folder, beside generator.json
CONTRACT_FORMAT = "maa-policy-contract/1"
BLOB_KEY = "contract"                 # the key in an actor blob's `extra` header
MAX_HEADER_BYTES = 1 << 20            # an actor blob's safetensors header (spec + contract) is a few kB
REL_TOL = 1e-9                        # numbers written as JSON and read back compare equal to this


@dataclass(frozen=True)
class PolicyContract:
    joint_order: tuple[str, ...]                 # policy joint order of the 12 actions and joint observations
    obs_layout: tuple[tuple[str, int], ...]      # (term, width) of one observation row, in order
    obs_scales: tuple[tuple[str, float], ...]    # (name, scale), sorted by name
    clip_observations: float
    history_len: int                             # observation rows the actor reads (oldest first)
    action_scale: float                          # joint target = default + action_scale * action
    hip_scale_reduction: float                   # ... times this for hip joints
    clip_actions: float
    kp: float                                    # PD gains while the actor runs
    kd: float
    control_rate_hz: float
    adaptation_sha256: str                       # the module whose latent the actor reads; "" = not recorded

    # -- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["joint_order"] = list(self.joint_order)
        d["obs_layout"] = [[n, w] for n, w in self.obs_layout]
        d["obs_scales"] = {n: s for n, s in self.obs_scales}
        return {"format": CONTRACT_FORMAT, **d}

    @classmethod
    def from_dict(cls, d, where: str = "contract") -> "PolicyContract":
        check(isinstance(d, dict), f"{where}: expected a JSON object, got {type(d).__name__}")
        check(d.get("format") == CONTRACT_FORMAT, f"{where}: format {d.get('format')!r}, expected {CONTRACT_FORMAT!r}")
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in d]
        check(not missing, f"{where}: missing field(s) {missing}")
        unknown = sorted(set(d) - set(names) - {"format"})
        check(not unknown, f"{where}: unknown field(s) {unknown} (known: {names})")

        def num(name):
            v = d[name]
            check(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
                  f"{where}: {name} is {v!r}, expected a finite number")
            return float(v)

        jo, lay, sc = d["joint_order"], d["obs_layout"], d["obs_scales"]
        check(isinstance(jo, list) and all(isinstance(j, str) for j in jo), f"{where}: joint_order must be a list of names")
        check(isinstance(lay, list) and all(isinstance(t, list) and len(t) == 2 and isinstance(t[0], str)
                                            and isinstance(t[1], int) and t[1] > 0 for t in lay),
              f"{where}: obs_layout must be a list of [term, width] pairs")
        check(isinstance(sc, dict) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in sc.values()),
              f"{where}: obs_scales must map names to numbers")
        hl = d["history_len"]
        check(isinstance(hl, int) and not isinstance(hl, bool) and hl >= 1, f"{where}: history_len is {hl!r}, expected an integer >= 1")
        sha = d["adaptation_sha256"]
        check(isinstance(sha, str), f"{where}: adaptation_sha256 must be a string")
        return cls(tuple(jo), tuple((n, w) for n, w in lay), tuple(sorted((n, float(v)) for n, v in sc.items())),
                   num("clip_observations"), hl, num("action_scale"), num("hip_scale_reduction"),
                   num("clip_actions"), num("kp"), num("kd"), num("control_rate_hz"), sha)

    def lines(self) -> list[str]:
        """Human-readable, one field per line (`maa info`)."""
        return [f"{f.name:20s} {_show(getattr(self, f.name)) or '(not recorded)'}" for f in fields(self)]


def _show(v) -> str:
    if isinstance(v, tuple) and v and isinstance(v[0], tuple):
        return ", ".join(f"{a}:{b:g}" if isinstance(b, float) else f"{a}:{b}" for a, b in v)
    if isinstance(v, tuple):
        return " ".join(map(str, v))
    return f"{v:g}" if isinstance(v, float) else str(v)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=0.0)
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def mismatch(ours: PolicyContract, theirs: PolicyContract) -> str | None:
    """None when `theirs` (an actor's) equals `ours` (the controller's); else one line naming the
    first field (and entry) that differs, with both values."""
    for f in fields(PolicyContract):
        a, b = getattr(ours, f.name), getattr(theirs, f.name)
        if f.name == "adaptation_sha256" and "" in (a, b):
            continue  # one side records no module: the actor's generator, or a controller told to accept any
        if _same(a, b):
            continue
        where, a_s, b_s = f.name, _show(a), _show(b)
        if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b):
            i = next(i for i, (x, y) in enumerate(zip(a, b)) if not _same(x, y))
            where, a_s, b_s = f"{f.name}[{i}]", _show((a[i],)), _show((b[i],))
            if isinstance(a[i], tuple) and a[i][0] == b[i][0]:  # (name, value): name the entry
                where, a_s, b_s = f"{f.name}.{a[i][0]}", _show(a[i][1]), _show(b[i][1])
        return f"policy contract field {where}: the actor's is {_clip(b_s)}, this controller's {_clip(a_s)}"
    return None


def _clip(s: str, n: int = 100) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


# -- what a deployment is -------------------------------------------------------------------
def observation_layout(wtw) -> tuple[tuple[str, int], ...]:
    """One observation row as `wtw.ObservationBuilder` writes it (checked against num_obs)."""
    a = wtw.num_actions
    lay = (("projected_gravity", 3), ("commands", wtw.num_commands), ("dof_pos", a), ("dof_vel", a),
           ("actions", a), ("last_actions", a), ("clock", 4))
    check(sum(w for _, w in lay) == wtw.num_obs,
          f"observation layout {lay} has {sum(w for _, w in lay)} values, the run's num_obs is {wtw.num_obs}")
    return lay


def used_obs_scales() -> tuple[str, ...]:
    """The scales ObservationBuilder applies (a WTW run's Cfg lists more, for terms it does not observe)."""
    from .wtw import COMMAND_SCALE_KEYS

    return tuple(sorted(set(COMMAND_SCALE_KEYS) | {"dof_pos", "dof_vel"}))


def contract_of(robot, run) -> PolicyContract:
    """The contract a controller deploys with: `robot` a go2.config.RobotConfig, `run` a
    go2.wtw.WtwRun (its config and adaptation module)."""
    w = run.config
    return PolicyContract(
        joint_order=tuple(robot.policy_joints), obs_layout=observation_layout(w),
        obs_scales=tuple(sorted((k, float(w.obs_scales[k])) for k in used_obs_scales())),
        clip_observations=float(w.clip_observations), history_len=int(w.history_len),
        action_scale=float(w.action_scale), hip_scale_reduction=float(w.hip_scale_reduction),
        clip_actions=float(w.clip_actions), kp=float(robot.control.kp), kd=float(robot.control.kd),
        control_rate_hz=float(robot.control.rate_hz), adaptation_sha256=run.adaptation_sha256)


# -- where it is carried --------------------------------------------------------------------
def write_generator_contract(folder, contract: PolicyContract) -> Path:
    from ..files import write_atomic

    return write_atomic(Path(folder) / CONTRACT_FILE, (json.dumps(contract.to_dict(), indent=1) + "\n").encode())


def read_generator_contract(folder) -> PolicyContract | None:
    """The contract of a generator folder; None when it has none (older folders, non-Go2 specs)."""
    p = Path(folder) / CONTRACT_FILE
    if not p.is_file():
        return None
    try:
        d = json.loads(p.read_text())
    except (OSError, ValueError) as e:
        raise MaaError(f"{p}: not a readable JSON contract ({e})") from None
    c = PolicyContract.from_dict(d, where=str(p))
    if not c.adaptation_sha256:  # one record of the module: generator.json's adaptation_module
        from .wtw import recorded_adaptation
        rec = recorded_adaptation(folder)
        if rec is not None:
            c = replace(c, adaptation_sha256=rec["sha256"])
    return c


def contract_of_blob_extra(extra: dict, where: str = "actor") -> PolicyContract | None:
    d = extra.get(BLOB_KEY) if isinstance(extra, dict) else None
    return None if d is None else PolicyContract.from_dict(d, where=f"{where}: contract")


def blob_refusal(ours: PolicyContract | None, data: bytes) -> str | None:
    """Why the controller whose contract is `ours` must refuse this actor blob, or None: its header
    carries a contract that differs (one line naming the field) or is malformed. A blob without a
    contract passes (older blobs, hand-made actors); `ours` None checks nothing."""
    if ours is None:
        return None
    try:
        theirs = blob_header_contract(data)
    except MaaError as e:
        return str(e)
    return None if theirs is None else mismatch(ours, theirs)


def blob_header_contract(data: bytes, where: str = "actor") -> PolicyContract | None:
    """The contract in an actor blob's header, reading only the header (not the parameters, which
    the controller's validator parses once, later). None when the blob carries none; a header that
    cannot be read is left to the validator, which refuses the blob with its own reason."""
    try:
        (n,) = struct.unpack_from("<Q", data, 0)
        if not 2 <= n <= min(MAX_HEADER_BYTES, len(data) - 8):
            return None
        md = json.loads(bytes(data[8:8 + n])).get("__metadata__") or {}
        extra = json.loads(md.get("extra") or "{}")
    except (struct.error, ValueError, TypeError, AttributeError):
        return None
    return contract_of_blob_extra(extra, where)


def main(argv=None) -> int:
    """python -m maa_core.go2.contract GENERATOR_DIR [--robot go2] [--wtw-run-dir DIR | --no-adaptation]"""
    import argparse

    from .config import load_robot_config
    from .wtw import load_wtw_run

    p = argparse.ArgumentParser(prog="python -m maa_core.go2.contract",
                                description="Write GENERATOR_DIR/contract.json: the policy I/O contract its actors "
                                            "are deployed with (robot config + adaptation module).")
    p.add_argument("generator_dir", type=Path)
    p.add_argument("--robot", default="go2", help="robot config name or YAML path")
    p.add_argument("--wtw-run-dir", default="", help="adaptation module run dir ('' = the shipped one)")
    p.add_argument("--no-adaptation", action="store_true", help="record no adaptation module hash")
    p.add_argument("--force", action="store_true", help="replace an existing contract.json")
    a = p.parse_args(argv)
    try:
        check((a.generator_dir / "generator.json").is_file(), f"{a.generator_dir}: not a generator folder (no generator.json)")
        check(a.force or not (a.generator_dir / CONTRACT_FILE).exists(),
              f"{a.generator_dir / CONTRACT_FILE}: exists already; pass --force to replace it")
        c = contract_of(load_robot_config(a.robot), load_wtw_run(a.wtw_run_dir))
        if a.no_adaptation:
            from dataclasses import replace
            c = replace(c, adaptation_sha256="")
        print(write_generator_contract(a.generator_dir, c))
    except MaaError as e:
        return exit_code(e)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
