"""The Go2 walking dataset ("go2-walk": the method, the task, the student spec and data/go2-walk),
built without IsaacGym: DAgger distillation of the trot expert (`maa_core/go2/gait.py`) into small
walk-these-ways actors on the MuJoCo Go2 (docs/data.md). Also its held-out prompts and the prompt bag.

One run = one seed. The seed draws the run's gait style (body height, swing height, duty factor,
stance width, foot offset) from `GaitRange`, the student's initialisation, its learning rate and its
noise level. The style is what a prompt conveys; the velocity commands (vx, vy, yaw rate, in the
observation's command slots) are what an operator steers, so every training walk follows a random
command schedule (`go2/commands.py random_course`: steps, turns in place, arcs, backward, sideways,
stops) that the commanded expert tracks and the student reads. Then:

    1. demos: expert walks with Gaussian action noise; every visited actor input (history ‖ latent
       of the adaptation module) labelled with the clean expert action
    2. rounds of `updates_per_round` Adam steps on the aggregated data; after each round the student
       walks alone (deterministic) and its parameters + that walk are saved as one checkpoint record
       (so a run spans sub-optimal early students to good ones), then a noisy student walk labelled
       by the expert is aggregated (DAgger)

Saved walks (a checkpoint's, a prompt run's expert walk) all follow one command (`PROMPT_COURSE`,
forward 0.6 m/s), so prompts and checkpoints differ by gait style. They are stored as the controller
streams them on maa/go2/steps: the 70-value observation the actor acted on and its 12 raw actions,
with no success signal (segment-mode prompts).
"""
from __future__ import annotations

import math
import os
import zlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from ..errors import MaaError, check, exit_code
from ..files import dataclass_from_mapping

DEFAULT_WTW = ""   # the shipped adaptation module (models/go2-adaptation; go2/wtw.py wtw_run_dir)
METHOD = "go2-walk"  # the collect/jobs.py method name (record keys <task>/go2-walk/<seed>/<step>)
TRAJ_OBS_DIM = 70    # stored trajectories: the Go2 controller's 70-value observation (maa/go2/steps rows)


@dataclass(frozen=True)
class LocoDistillConfig:
    """Every number of one distillation run."""
    spec: str = "go2-walk"           # student spec: 2102 -> 64 -> 64 -> 12 (ELU)
    demos: int = 4                   # noisy expert walks before the first update
    demo_seconds: float = 10.0       # length of each data-collection walk (a random command schedule)
    noise: tuple = (0.1, 0.5)        # per-run action-noise std range (raw action units)
    lr: tuple = (1e-5, 3e-5)         # per-run Adam learning-rate range (log-uniform); low enough that runs stay
                                     # near the base student, which walks the whole command course: course
                                     # completed by 11/15 students of 5 runs (random 20 s schedules 24/45), 9/15
                                     # (19/45) with 3e-5..1e-4, 6/15 (13/45) with 1e-4..3e-4 (#15); and blends of
                                     # two runs still walk (#7: 10/15 midpoints walk, 0/12 with 3e-4..1e-3)
    batch_size: int = 256
    updates_per_round: int = 400
    rounds: int = 10                 # DAgger rounds; the last `checkpoints` rounds are saved
    dagger_noise: float = 0.5        # DAgger walks use this fraction of the run's noise
    eval_seconds: float = 7.0        # deterministic student walk saved with each checkpoint ...
    record_from: float = 2.0         # ... from this time on (steady walking: what a recorded prompt shows)
    max_samples: int = 15000         # aggregated data cap (oldest dropped)
    drop_before_fall: float = 0.5    # s of a walk before a fall left out of the data (flailing labels)
    init_seed: int = 0               # every student starts from the same initial weights: checkpoints then
                                     # differ by what each gait taught them, not by unrelated random inits
    base: str = ""                   # a base student (flat parameters, .npy) every run starts from ...
    freeze_layers: int = 1           # ... with this many leading trunk layers frozen (shared features)
    wtw_dir: str = DEFAULT_WTW       # the adaptation module's run directory ("" = the shipped one)

    @classmethod
    def from_dict(cls, d: dict | None) -> "LocoDistillConfig":
        return dataclass_from_mapping(cls, d, "locomotion distillation")


STYLE_KEYS = ("body_height", "swing_height", "duty", "stance_width", "foot_x_offset")  # a run's gait style


def run_seed(seed: int) -> int:
    return zlib.crc32(f"go2-gait/{seed}".encode()) & 0x7FFFFFFF


def gait_for_seed(seed: int):
    """The gait a run distils (deterministic in the seed)."""
    from ..go2.gait import GaitRange

    return GaitRange().sample(np.random.default_rng(run_seed(seed)))


class Student:
    """A student actor with its optimiser and aggregated data."""

    def __init__(self, spec, lr: float, cfg: LocoDistillConfig, seed: int):
        import torch

        torch.manual_seed(cfg.init_seed)
        self.spec, self.cfg = spec, cfg
        self.actor = spec.build()
        if cfg.base:
            check(Path(cfg.base).is_file(), f"locomotion run: base student {cfg.base} not found")
            spec.unflatten(np.load(cfg.base), self.actor)
            for layer in [m for m in self.actor.trunk if isinstance(m, torch.nn.Linear)][: cfg.freeze_layers]:
                layer.requires_grad_(False)
        torch.manual_seed(seed)
        self.opt = torch.optim.Adam([p for p in self.actor.parameters() if p.requires_grad], lr=lr)
        self.gen = torch.Generator().manual_seed(seed)
        self.X: list[np.ndarray] = []
        self.Y: list[np.ndarray] = []
        self.losses: list[float] = []

    def add(self, x: np.ndarray, y: np.ndarray) -> None:
        self.X.append(x)
        self.Y.append(y)
        while sum(len(a) for a in self.X) > self.cfg.max_samples and len(self.X) > 1:
            self.X.pop(0)
            self.Y.pop(0)

    def train(self, n: int) -> float:
        import torch

        xs, ys = torch.from_numpy(np.concatenate(self.X)), torch.from_numpy(np.concatenate(self.Y))
        total = 0.0
        for _ in range(n):
            idx = torch.randint(0, len(xs), (self.cfg.batch_size,), generator=self.gen)
            loss = ((self.actor(xs[idx]) - ys[idx]) ** 2).mean()
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            total += float(loss.detach())
        self.losses.append(total / max(n, 1))
        return self.losses[-1]

    def policy(self, x):
        return self.actor(x)[0].numpy()

    def params(self) -> np.ndarray:
        return self.spec.flatten(self.actor).numpy().copy()


def go2_walk_run(seed: int, n_checkpoints: int, n_prompts: int, cfg: dict | None = None,
                 emit_checkpoint=None, emit_prompt=None, log=None) -> dict:
    """One run (see module docstring). `emit_*` receive `collect.distill.Emitted` items; prompt records
    are the run's expert walks (held-out behaviour for prompting), checkpoint records its students."""
    import torch

    from ..go2.commands import PROMPT_COURSE, random_course
    from ..go2.gait import GaitExpert
    from ..go2.sim.env import make_env
    from ..go2.walk import walk
    from .distill import Emitted

    c = LocoDistillConfig.from_dict(cfg)
    check(n_checkpoints <= c.rounds, f"locomotion run: {n_checkpoints} checkpoints need rounds >= {n_checkpoints}")
    torch.set_num_threads(1)
    rs = run_seed(seed)
    rng = np.random.default_rng(rs)
    gait = gait_for_seed(seed)
    noise = float(rng.uniform(*c.noise))
    lr = float(math.exp(rng.uniform(math.log(c.lr[0]), math.log(c.lr[1]))))
    env, adaptation = make_env(c.wtw_dir)
    expert = GaitExpert(env, gait, commanded=True)
    from ..specs import get_spec

    spec = get_spec(c.spec)
    st = Student(spec, lr, c, rs)
    base = {"gait": {k: round(v, 5) for k, v in asdict(gait).items() if k in
                     STYLE_KEYS},
            "noise": round(noise, 5), "lr": round(lr, 7)}

    for _ in range(c.demos if n_checkpoints > 0 else 0):
        r = walk(env, adaptation, None, c.demo_seconds, expert=expert, action_noise=noise, rng=rng, inputs=True,
                 course=random_course(rng, c.demo_seconds))
        st.add(*_usable(r, c))
    for i in range(n_prompts):  # the expert's own clean walks: prompts the students never saw as records
        clean = walk(env, adaptation, None, c.eval_seconds, expert=expert, record=True, record_from=c.record_from,
                     course=PROMPT_COURSE)
        if emit_prompt:
            emit_prompt(Emitted(-1 - i, np.zeros(spec.num_params, np.float32), [_traj(clean)], math.nan,
                                {**base, **clean.summary(), "role": "expert"}))
    n_saved, step, walked = 0, 0, 0
    for rnd in range(c.rounds if n_checkpoints > 0 else 0):
        loss = st.train(c.updates_per_round)
        step += c.updates_per_round
        ev = walk(env, adaptation, st.policy, c.eval_seconds, expert=expert, record=True, inputs=True,
                  record_from=c.record_from, course=PROMPT_COURSE)
        walked += int(ev.walks())
        if n_saved < n_checkpoints and rnd >= c.rounds - n_checkpoints:
            if emit_checkpoint:
                emit_checkpoint(Emitted(step, st.params(), [_traj(ev)], float(ev.walks()),
                                        {**base, **ev.summary(), "loss": round(loss, 6), "round": rnd}))
            n_saved += 1
        if rnd < c.rounds - 1:
            st.add(*_usable(ev, c))
            dg = walk(env, adaptation, st.policy, c.demo_seconds, expert=expert, action_noise=noise * c.dagger_noise,
                      rng=rng, inputs=True, course=random_course(rng, c.demo_seconds))
            st.add(*_usable(dg, c))
        if log:
            log(f"locomotion s{seed} round {rnd}: loss {loss:.4f} {ev.summary()}")
    return {"checkpoints": n_saved, "prompts": n_prompts, "updates": step, "walked_rounds": walked,
            "losses": [round(x, 6) for x in st.losses], **base}


def collect_run(task: str, seed: int, n_checkpoints: int, n_prompts: int, cfg: dict | None = None,
                emit_checkpoint=None, emit_prompt=None, spec_name: str = "go2-walk", log=None) -> dict:
    """The method-table entry (collect/jobs.py): the task is the dataset's, the spec the config's."""
    return go2_walk_run(seed, n_checkpoints, n_prompts, cfg, emit_checkpoint, emit_prompt, log)


def _usable(r, c: LocoDistillConfig):
    """A walk's (inputs, labels) without its last `drop_before_fall` seconds when it fell."""
    dt = r.seconds / max(len(r.inputs), 1)
    n = max(1, len(r.inputs) - (int(round(c.drop_before_fall / dt)) if r.fell else 0))
    return r.inputs[:n], r.labels[:n]


def _traj(r):
    from ..trajectory import Trajectory

    if len(r.observations) == 0:
        raise MaaError("locomotion run: a walk ended before its first step")
    return Trajectory(r.observations, r.actions, None)


# -- shared base student ------------------------------------------------------------------------
@dataclass(frozen=True)
class BaseStudentConfig:
    """A multi-gait student whose first layer all runs share (frozen): the layer that reads the
    2102-value input holds 96 % of the parameters, so checkpoints then differ where gaits differ."""
    gaits: int = 8                   # gaits drawn from GaitRange (seeds 5000..)
    demos: int = 2                   # noisy expert walks per gait before the first update
    rounds: int = 30                 # DAgger rounds over all gaits: more of its own states, not more updates, made
    updates_per_round: int = 3000    # the base robust (falls on 40 random 20 s schedules: 10 rounds 19, 20 rounds
                                     # 11, 10 rounds x 9000 updates 24; BENCHMARKS.md "A robust base student")
    noise: float = 0.3
    lr: float = 1e-3
    max_samples: int = 300000        # keeps every round's walks (~6,800 inputs per round)
    mat_gaits: int = 0               # of the gaits, this many walk on the mat world (sim terrain "mat") instead of
                                     # the flat floor: uneven-ground states for the students to learn from


def train_base_student(out, cfg: LocoDistillConfig = LocoDistillConfig(), b: BaseStudentConfig = BaseStudentConfig(),
                       log=None) -> dict:
    """Multi-gait DAgger (same procedure as a run, over `b.gaits` gaits); saves the flat parameters."""
    import torch

    from ..go2.commands import PROMPT_COURSE, random_course
    from ..go2.gait import GaitExpert
    from ..go2.sim.env import make_env
    from ..go2.walk import walk
    from ..specs import get_spec

    check(0 <= b.mat_gaits <= b.gaits, f"base student: mat_gaits {b.mat_gaits} must be within 0..gaits ({b.gaits})")
    torch.set_num_threads(1)
    spec = get_spec(cfg.spec)
    c = LocoDistillConfig.from_dict({**{f.name: getattr(cfg, f.name) for f in fields(cfg)}, "base": "",
                                     "max_samples": b.max_samples})
    st = Student(spec, b.lr, c, 5000)
    rng = np.random.default_rng(5000)
    flat, adaptation = make_env(c.wtw_dir)
    mat = make_env(c.wtw_dir, "mat")[0] if b.mat_gaits else None
    # the last mat_gaits gaits walk on the mat; with 0 every walk is on the flat floor
    experts = [GaitExpert(mat if i >= b.gaits - b.mat_gaits else flat, gait_for_seed(5000 + i), commanded=True)
               for i in range(b.gaits)]
    for ex in experts:
        env = ex.env
        for _ in range(b.demos):
            st.add(*_usable(walk(env, adaptation, None, c.demo_seconds, expert=ex, action_noise=b.noise, rng=rng,
                                 inputs=True, course=random_course(rng, c.demo_seconds)), c))
    walked = 0
    for rnd in range(b.rounds):
        loss = st.train(b.updates_per_round)
        walked = 0
        for ex in experts:
            env = ex.env
            ev = walk(env, adaptation, st.policy, c.eval_seconds, expert=ex, inputs=True, course=PROMPT_COURSE)
            walked += int(ev.walks())
            st.add(*_usable(ev, c))
            st.add(*_usable(walk(env, adaptation, st.policy, c.demo_seconds, expert=ex,
                                 action_noise=b.noise * c.dagger_noise, rng=rng, inputs=True,
                                 course=random_course(rng, c.demo_seconds)), c))
        if log:
            log(f"base student round {rnd}: loss {loss:.4f}, {walked}/{len(experts)} gaits walked")
    st.train(b.updates_per_round)
    np.save(out, st.params())
    return {"losses": st.losses, "walked": walked}


# -- dataset build ------------------------------------------------------------------------------
TASK = "go2-walk"                    # training runs: students (checkpoints) + expert walks (prompts)
HELDOUT_TASK = "go2-walk-heldout"    # prompt-only runs with gaits no training run has


@dataclass(frozen=True)
class LocoDatasetPlan:
    runs: int = 72                   # training runs (seeds 0..runs-1)
    checkpoints_per_run: int = 6     # the last rounds' students (rounds - checkpoints .. rounds - 1)
    prompts_per_run: int = 1         # clean expert walks per training run
    heldout: int = 12                # held-out prompt-only runs
    heldout_seed_offset: int = 1000  # their seeds: offset .. offset + heldout - 1


def plan_go2_walk_jobs(plan: LocoDatasetPlan = LocoDatasetPlan(), cfg: dict | None = None):
    import json

    from .jobs import Job

    LocoDistillConfig.from_dict(cfg)  # fail early on bad settings
    c = json.dumps(cfg or {}, sort_keys=True)
    jobs = [Job(TASK, s, METHOD, plan.checkpoints_per_run, plan.prompts_per_run, c) for s in range(plan.runs)]
    jobs += [Job(HELDOUT_TASK, plan.heldout_seed_offset + s, METHOD, 0, 1, c) for s in range(plan.heldout)]
    return jobs


def build_go2_walk_dataset(root, plan: LocoDatasetPlan = LocoDatasetPlan(), cfg: dict | None = None,
                           workers: int = 1) -> list[dict]:
    """Runs (or resumes) every job of the plan into `root` (checkpoints/ and prompts/, spec go2-walk)."""
    from tqdm import tqdm

    from .jobs import run_jobs

    cfg = dict(cfg or {})
    if "base" not in cfg:  # the shared base student: trained once per dataset root
        base = Path(root) / "base.npy"
        if not base.is_file():
            base.parent.mkdir(parents=True, exist_ok=True)
            print(f"training the shared base student ({BaseStudentConfig.gaits} gaits) -> {base}")
            tmp = base.with_name(".base.tmp.npy")
            train_base_student(tmp, LocoDistillConfig.from_dict(cfg), log=print)
            os.replace(tmp, base)
        cfg["base"] = str(base)
    c = LocoDistillConfig.from_dict(cfg)
    jobs = plan_go2_walk_jobs(plan, cfg)
    with tqdm(total=len(jobs), desc="go2 locomotion runs", unit="run") as bar:
        def progress(done, total, r):
            bar.n = done
            bar.set_postfix_str(f"{r['job']['task']} s{r['job']['seed']}: {r.get('walked_rounds', '-')} walking rounds")
            bar.refresh()
        return run_jobs(jobs, root, workers=workers, spec_name=c.spec, progress=progress)


# -- prompts: the held-out walks and the demo's prompt bag ---------------------------------------
@dataclass
class HeldoutPrompt:
    key: str
    trajectory: object        # Trajectory: (T, 70) observations, (T, 12) actions, no success signal
    speed: float              # the walk's measured forward speed (m/s)
    step_frequency: float     # its touchdowns per foot per second (Hz)


def heldout_prompts(data_dir, task: str | None = None) -> list[HeldoutPrompt]:
    """Prompt records of the held-out runs (gaits no training run has), in key order."""
    from ..dataset import PolicyDataset

    ds = PolicyDataset(Path(data_dir) / "prompts")
    out = [HeldoutPrompt(r.key, r.trajectories[0], float(r.source["speed"]), float(r.source["step_frequency"]))
           for r in ds if r.task == (task or HELDOUT_TASK) and r.trajectories]
    check(out, f"{data_dir}: no held-out prompts (task {task or HELDOUT_TASK})")
    return sorted(out, key=lambda p: p.key)


def record_prompt_bag(path, seed: int, wtw_run_dir: str, topic: str = "/maa/prompt") -> dict:
    """Writes the clean expert walk of gait `seed` (a seed no training run uses) as a one-prompt
    ROS 2 bag: rows [70-value observation | 12 actions], exactly the controller's maa/go2/steps rows,
    from `record_from` seconds on. A `prompt.json` beside it says what the walk was."""
    import json

    from ..go2.commands import PROMPT_COURSE
    from ..prompts import write_prompts_to_bag

    got = []
    go2_walk_run(seed, 0, 1, {"wtw_dir": wtw_run_dir}, emit_prompt=got.append)
    check(len(got) == 1, "prompt bag: the expert walk produced no prompt")
    item = got[0]
    path = Path(path)
    check(not path.exists(), f"{path}: already exists")
    write_prompts_to_bag(path, [item.trajectories[0]], topic=topic)
    c = LocoDistillConfig()
    meta = {"description": f"expert trot, gait seed {seed}, {len(item.trajectories[0])} steps of steady walking "
                           f"(commanded straight at {PROMPT_COURSE[0].vx:g} m/s)",
            "seed": seed, "speed": item.extra["steady_speed"], "step_frequency": item.extra["step_frequency"],
            "gait": item.extra["gait"], "recorded_from_s": c.record_from, "topic": topic}
    (path / "prompt.json").write_text(json.dumps(meta, indent=1))
    return meta


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m maa_core.collect.go2_walk",
                                 description="Build the Go2 locomotion dataset in the MuJoCo simulator (no IsaacGym).")
    ap.add_argument("--out", default="data/go2-walk")
    ap.add_argument("--runs", type=int, default=LocoDatasetPlan.runs)
    ap.add_argument("--checkpoints-per-run", type=int, default=LocoDatasetPlan.checkpoints_per_run)
    ap.add_argument("--heldout", type=int, default=LocoDatasetPlan.heldout)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--wtw", default=DEFAULT_WTW, help="walk-these-ways run directory with the adaptation module (default: models/go2-adaptation)")
    a = ap.parse_args(argv)
    try:
        check(a.runs >= 0 and a.heldout >= 0 and a.checkpoints_per_run >= 1, "--runs/--heldout >= 0, --checkpoints-per-run >= 1")
        cfg = {} if a.wtw == DEFAULT_WTW else {"wtw_dir": a.wtw}
        build_go2_walk_dataset(a.out, LocoDatasetPlan(a.runs, a.checkpoints_per_run, 1, a.heldout), cfg, a.workers)
    except MaaError as e:
        return exit_code(e)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
