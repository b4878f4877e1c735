"""The MuJoCo locomotion data path (issue #7): the trot expert walks, distillation learns walking
students, the dataset round-trips, a tiny generator learns from locomotion prompts, bad input fails
with one clear line. Real MuJoCo, real adaptation module, real training."""
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from maa_core.collect.jobs import Job, run_jobs
from maa_core.collect.go2_walk import BaseStudentConfig, LocoDistillConfig, gait_for_seed, train_base_student
from maa_core.collect.go2_walk import go2_walk_run as distill_locomotion_run
from maa_core.go2.commands import Segment
from maa_core.go2.course import CourseConfig, run_course
from maa_core.go2.sim.env import make_env
from maa_core.dataset import DatasetWriter, PolicyDataset, PolicyRecord
from maa_core.errors import MaaError
from maa_core.go2.gait import GaitExpert, GaitParams, GaitRange, LegKinematics, LEG_NAMES
from maa_core.go2.verdict import metrics_from_log, step_frequency
from maa_core.go2.walk import walk
from maa_core.serving.scorers import make_scorer
from maa_core.specs import get_spec
from maa_core.trajectory import Trajectory

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def env_ad(shared_dir):
    return make_env(str(shared_dir / "wtw"))


def test_leg_kinematics_match_mujoco(env_ad):
    env, _ = env_ad
    env.reset()
    d, m, sim = env.sim.data, env.sim.model, env.sim
    qp = env.joints.to_policy(d.qpos[sim.qadr]).reshape(4, 3)
    R, p0 = d.xmat[sim.trunk_id].reshape(3, 3), d.xpos[sim.trunk_id]
    for i, name in enumerate(LEG_NAMES):
        leg = LegKinematics(env.cfg, name)
        foot = R.T @ (d.xpos[m.body(f"{name}_foot").id] - p0)
        assert np.allclose(leg.forward(qp[i]), foot, atol=2e-4)
        assert np.allclose(leg.inverse(leg.forward(qp[i])), qp[i], atol=1e-6)


@pytest.mark.parametrize("gait", [
    GaitParams(),                                                          # defaults
    GaitRange().sample(np.random.default_rng(0)),                          # a random draw
    GaitParams(speed=GaitRange.speed[0], body_height=GaitRange.body_height[0], swing_height=GaitRange.swing_height[0],
               duty=GaitRange.duty[1], stance_width=GaitRange.stance_width[1], foot_x_offset=GaitRange.foot_x_offset[1]),
    GaitParams(speed=GaitRange.speed[1], body_height=GaitRange.body_height[1], swing_height=GaitRange.swing_height[1],
               duty=GaitRange.duty[0], stance_width=GaitRange.stance_width[0], foot_x_offset=GaitRange.foot_x_offset[0]),
])
def test_expert_walks_with_wtw_gains(env_ad, gait):
    env, ad = env_ad
    assert (env.wtw.kp, env.wtw.kd) == (20.0, 0.5)  # the policy gains every actor runs with
    r = walk(env, ad, None, 8.0, expert=GaitExpert(env, gait))
    assert not r.fell, r.summary()
    assert r.speed >= 0.4 and r.steady_speed >= 0.4, r.summary()
    assert abs(r.step_frequency - env.cfg.gait_command.frequency) < 0.3, r.summary()  # locked to the clock it observes
    assert abs(r.lateral) < 0.5, r.summary()


@pytest.mark.slow
def test_distillation_learns_walking_students(env_ad, shared_dir, tmp_path):
    """A small shared base student (multi-gait DAgger), then one run distilling its own gait on top
    of the frozen base layer: imitation errors drop far below the untrained net's and the base's, and the
    run's best student walks.

    Verdicts with margin on any x86 CPU (#14; margins measured over 10 numerical variants: MKL_CBWR,
    ATEN_CPU_CAPABILITY, 1/2 threads, perturbed initial weights). Deliberately not asserted, because at this
    budget they are one chaotic rollout: whether the base student walks (it cannot observe the gait, so its
    eval walks of the 3 gaits are one walk: 0/3 or 3/3 by kernel), and the screening start straight from
    the stand pose (not the start students train from; 2 of 10 variants fell there)."""
    env, ad = env_ad
    wtw = str(shared_dir / "wtw")
    spec = get_spec("go2-walk")
    base = tmp_path / "base.npy"
    info = train_base_student(base, LocoDistillConfig(wtw_dir=wtw),
                              BaseStudentConfig(gaits=3, demos=3, rounds=3, updates_per_round=1000))
    assert np.isfinite(info["losses"]).all()

    def imitation_error(params, gait):  # MSE to the expert's actions along the expert's own walk
        probe = walk(env, ad, None, 4.0, expert=GaitExpert(env, gait, commanded=True), inputs=True,
                     course=(Segment("forward", 4.0, vx=0.6),))
        x, y = torch.from_numpy(probe.inputs), torch.from_numpy(probe.labels)
        with torch.no_grad():
            return [((spec.build()(x) if p is None else spec.unflatten(p)(x)) - y).pow(2).mean().item() for p in params]

    b = np.load(base)
    err0, err_base = imitation_error([None, b], GaitRange().sample(np.random.default_rng(7)))
    assert err_base < 0.1 * err0, (err_base, err0)  # on a gait it never saw (measured 0.017-0.023 x)
    # the base reads the observation's command slots: a commanded turn in place turns it; an untrained
    # net stands (the yaw rate it achieves is what tracking it means here)
    # (at this budget the base may fall later in a turn, by kernel: the first 2 s after the command are judged)
    turn = (Segment("turn", 2.5, yaw_rate=1.0),)
    runs = [run_course(env, turn, policy=lambda x, a=a: a(x)[0].detach().numpy(), adaptation=ad,
                       cfg=CourseConfig(settle_s=0.5)) for a in (spec.build(), spec.unflatten(b))]
    wz = [r.segments[0].achieved[2] for r in runs]
    assert wz[1] > 0.3, runs[1].table()            # measured 0.74-0.77 rad/s (3 numerical variants)
    assert not abs(wz[0]) > 0.1, runs[0].table()   # measured -0.01
    ckpts = []
    # the dataset's learning rates (1e-5..3e-5) keep 4,000-update runs near a strong base; this 800-update run
    # from a small base needs the earlier 1e-4..3e-4 to learn its gait at all (measured: loss 0.55, both fell)
    s = distill_locomotion_run(3, 2, 0, {"wtw_dir": wtw, "base": str(base), "rounds": 2, "lr": [1e-4, 3e-4]},
                               emit_checkpoint=ckpts.append)
    assert s["checkpoints"] == 2 and len(ckpts) == 2
    n0 = spec.trunk[0].num_params
    assert all(np.array_equal(c.params[:n0], b[:n0]) for c in ckpts)  # the shared layer stays frozen
    # the rest learned this run's gait: imitation of it well below the base's (measured 0.14-0.30 x)
    errs = imitation_error([b] + [c.params for c in ckpts], gait_for_seed(3))
    assert min(errs[1:]) < 0.6 * errs[0], errs
    best = max(ckpts, key=lambda c: (not c.extra["fell"], c.extra["speed"]))
    assert not best.extra["fell"] and best.extra["speed"] >= 0.4, [c.extra for c in ckpts]  # measured 0.59
    r = walk(env, ad, lambda t: spec.unflatten(best.params)(t)[0].numpy(), 8.0, course=(Segment("forward", 8.0, vx=0.6),))
    assert r.walks(), r.summary()  # commanded 0.6 m/s: measured 0.59 m/s
    # the generator node's "go2-walk" screening (stays up along its command course, then tracking) ranks it
    # above an untrained actor, which stands (from the start it trained for: after standing 30 steps;
    # measured 1.16-1.37 against 1.13 over 3 numerical variants, i.e. tracking errors E 1.7-5.2 against 6.7
    # in units of the acceptance bounds)
    score = make_scorer("go2-walk", 400, spec, wtw)
    score.warmups = (30,)
    got = [score(spec.unflatten(best.params)), score(spec.build())]
    assert got[0] > got[1] > 1.0, got   # both stay up; the student tracks better


def test_dataset_records_round_trip(tmp_path, shared_dir):
    cfg = json.dumps({"demos": 1, "demo_seconds": 3.0, "rounds": 1, "updates_per_round": 20, "eval_seconds": 3.0,
                      "wtw_dir": str(shared_dir / "wtw")}, sort_keys=True)
    jobs = [Job("go2-walk", 5, "go2-walk", 1, 1, cfg)]
    out = run_jobs(jobs, tmp_path, spec_name="go2-walk")
    assert out[0]["checkpoints"] == 1 and out[0]["prompts"] == 1
    for kind in ("checkpoints", "prompts"):
        ds = PolicyDataset(tmp_path / kind, verify=True)
        assert len(ds) == 1 and ds.spec.name == "go2-walk" and ds.traj_obs_dim == 70
        rec = ds[0]
        t = rec.trajectories[0]
        # steady walking from 2 s on (3 s walks: 50 rows), up to a fall; a student that fell before 2 s has its whole walk
        sec = rec.source["seconds"] if rec.source["fell"] else 3.0
        n = round(sec / 0.02) if sec < 2.0 else round((sec - 2.0) / 0.02)
        assert t.states.shape == (n, 70) and t.actions.shape == (n, 12) and t.success is None
        assert kind == "checkpoints" or n == 50
        t.validate(70, 12)
        assert np.abs(t.actions).max() <= 10.0
        assert {"speed", "steady_speed", "step_frequency", "gait"} <= set(rec.source)
    ck = PolicyDataset(tmp_path / "checkpoints")[0]
    assert ck.params.shape == (get_spec("go2-walk").num_params,) and np.isfinite(ck.params).all()
    # the clock columns of the stored observations are the controller's gait clock (3 Hz)
    clock = PolicyDataset(tmp_path / "prompts")[0].trajectories[0].states[:, -4:]
    assert np.all(np.abs(clock) <= 1.0) and np.std(clock) > 0.5
    # a rerun skips the finished job; the same root refuses actor-input-sized trajectories
    assert run_jobs(jobs, tmp_path, spec_name="go2-walk")[0]["skipped"]
    w = DatasetWriter(tmp_path / "checkpoints", "go2-walk", 70)
    bad = PolicyRecord(ck.params, "go2-walk", [Trajectory(np.zeros((5, 2102)), np.zeros((5, 12)))], key="x")
    with pytest.raises(MaaError, match="2102 dims, expected 70"):
        w.append([bad])
    with pytest.raises(MaaError, match="70-dim trajectory states, not 2102"):
        DatasetWriter(tmp_path / "checkpoints", "go2-walk")


def test_tiny_generator_learns_gait_from_prompts(tmp_path, env_ad):
    """Two clusters of actor parameters, each paired with walks of one gait: generated parameters
    follow the prompt's gait (real locomotion prompts, real training code)."""
    from maa_core.config import GeneratorConfig
    from maa_core.train import TrainerOptions, TrainingData, train_generator

    env, ad = env_ad
    spec = get_spec("go2-walk")
    rng = np.random.default_rng(0)
    centres = [rng.normal(0, 0.05, spec.num_params).astype(np.float32) for _ in range(2)]
    gaits = [GaitParams(speed=0.55, swing_height=0.07, body_height=0.27), GaitParams(speed=0.9, swing_height=0.11, body_height=0.31)]
    walks_ = [[walk(env, ad, None, 4.0, expert=GaitExpert(env, g), record=True, record_from=1.0,
                    action_noise=0.05 * j, rng=np.random.default_rng(j)) for j in range(4)] for g in gaits]
    params, trajs = [], []
    for c in range(2):
        for j, w in enumerate(walks_[c]):
            params.append(centres[c] + rng.normal(0, 0.005, spec.num_params).astype(np.float32))
            trajs.append((len(params) - 1, Trajectory(w.observations, w.actions)))
    cfg = GeneratorConfig.preset_named("tiny", **{"embedding.mode": "segment", "embedding.n_steps": 40,
                                                  "embedding.num_segments": 2, "train_autoencoder.steps": 100,
                                                  "train_embedding.steps": 80, "train_diffusion.steps": 200})
    data = TrainingData.from_records(np.stack(params), trajs, cfg, 70, 12)
    gen = train_generator(data, spec, 70, 12, cfg, TrainerOptions(run_dir=tmp_path, progress=False, resume=False))
    for c in range(2):
        prompt = walk(env, ad, None, 4.0, expert=GaitExpert(env, gaits[c]), record=True, record_from=1.0,
                      action_noise=0.03, rng=np.random.default_rng(99))
        out = gen.generate([Trajectory(prompt.observations, prompt.actions)], num_policies=4, seed=0).params[0]
        d_own = np.linalg.norm(out - centres[c], axis=1).mean()
        d_other = np.linalg.norm(out - centres[1 - c], axis=1).mean()
        assert d_own < 0.7 * d_other, (c, d_own, d_other)  # measured ~0.16 on AMD at these budgets
    with pytest.raises(MaaError, match="expected 70"):  # a prompt in the actor-input layout is refused
        gen.check_prompt(Trajectory(np.zeros((100, 2102)), np.zeros((100, 12))))


def test_metrics_and_bad_input():
    # step frequency: 4 feet, a touchdown every 10 steps at dt 0.02 -> 5 Hz
    c = np.zeros((101, 4), bool)
    c[np.arange(101) % 10 < 5] = True
    assert step_frequency(c, 0.02) == pytest.approx(5.0, rel=0.05)
    t = np.arange(0, 10, 0.02)
    pos = np.stack([0.5 * t, 0 * t, 0.3 + 0 * t], 1)
    quat = np.tile([1.0, 0, 0, 0], (len(t), 1))
    m = metrics_from_log(t, pos, quat, np.zeros((len(t), 4)), 1.0, 5.0)
    assert m["speed"] == pytest.approx(0.5, abs=1e-3) and not m["fell"]
    pos[300:, 2] = 0.1  # trunk on the floor from t = 6 s
    assert metrics_from_log(t, pos, quat, np.zeros((len(t), 4)), 1.0, 8.0)["fell"]
    with pytest.raises(MaaError, match="no samples"):
        metrics_from_log(t, pos, quat, np.zeros((len(t), 4)), 50.0, 5.0)
    with pytest.raises(MaaError, match="unknown key"):
        LocoDistillConfig.from_dict({"roundz": 3})
    with pytest.raises(MaaError, match="unknown policy spec"):
        distill_locomotion_run(0, 1, 0, {"spec": "nope"})
    with pytest.raises(MaaError, match="mat_gaits 9 must be within 0..gaits"):
        train_base_student("/nonexistent/base.npy", b=BaseStudentConfig(gaits=8, mat_gaits=9))
    r = subprocess.run([sys.executable, "-m", "maa_core.collect.go2_walk", "--runs", "-1", "--out", "/tmp/x"],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and r.stderr.strip().startswith("maa: error:") and len(r.stderr.strip().splitlines()) == 1


def test_demo_config_errors(tmp_path):
    from maa_core.demos.go2 import Go2DemoConfig
    p = tmp_path / "d.yaml"
    p.write_text("data_dir: x\nwalk_secs: 3\n")
    with pytest.raises(MaaError, match="unknown key"):
        Go2DemoConfig.load(p)
    r = subprocess.run([sys.executable, "-m", "maa_core", "demo", "--config", str(tmp_path / "missing.yaml")],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and "no such demo config" in r.stderr


@pytest.mark.parametrize("mode, says", [("fastest", "mode 'fastest', expected one of generate, retrieve, auto"),
                                         ("auto", "retrieval.safetensors")])
def test_demo_mode_refused_in_one_line_before_any_ros_work(tmp_path, mode, says):
    """config mode: a mode the generator node does not know, or retrieve/auto with a generator folder that
    has no retrieval index (the shipped one): exit 2, one line, before the graph starts (the node would
    otherwise stay up reporting the error and the demo wait for an actor that never comes)."""
    import yaml
    cfg = yaml.safe_load((REPO / "config" / "demo_go2.yaml").read_text())
    assert cfg["mode"] == "generate" and not (REPO / "models" / "go2-walk" / "retrieval.safetensors").exists()
    cfg.update(mode=mode, run_dir=str(tmp_path / "run"))
    (tmp_path / "d.yaml").write_text(yaml.safe_dump(cfg))
    r = subprocess.run([sys.executable, "-m", "maa_core", "demo", "go2", "--config", str(tmp_path / "d.yaml"), "--no-progress"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    err = [l for l in r.stderr.splitlines() if l.startswith("maa: error:")]
    assert r.returncode == 2 and len(err) == 1 and says in err[0], r.stdout + r.stderr
    assert "go2_generate graph" not in r.stdout


def test_shipped_generator_is_what_the_demo_config_trains(tmp_path):
    """models/go2-walk: loads, was trained with config/demo_go2.yaml's generator settings (re-export after
    changing them: `maa demo go2 --train --export models/go2-walk`), every file under the repository's 5 MB
    limit; the demo prefers a generator trained in run_dir over the shipped one."""
    from dataclasses import replace

    from maa_core.pipeline import PolicyGenerator
    from maa_core.demos.go2 import Go2DemoConfig, generator_config, trained_generator

    cfg = Go2DemoConfig.load(REPO / "config/demo_go2.yaml")
    shipped = REPO / cfg.pretrained
    gen = PolicyGenerator.from_pretrained(shipped, device="cpu")
    want = generator_config(cfg)
    got = replace(gen.config, autoencoder=replace(gen.config.autoencoder, constant_groups=()))
    assert got == want and gen.spec.name == "go2-walk"
    assert gen.config.autoencoder.constant_groups  # the frozen first layer: exact, not coded
    assert all(f.stat().st_size < 5 * 10 ** 6 for f in shipped.rglob("*") if f.is_file())
    assert trained_generator(replace(cfg, run_dir=str(tmp_path), pretrained=str(shipped))) == shipped
    assert trained_generator(replace(cfg, run_dir=str(tmp_path), pretrained="")) is None
    gen.save_pretrained(tmp_path / "generator")
    assert trained_generator(replace(cfg, run_dir=str(tmp_path), pretrained=str(shipped))) == tmp_path / "generator"


# one pytest-xdist worker runs this file: its module fixtures are built once
pytestmark = pytest.mark.xdist_group("test_locomotion")
