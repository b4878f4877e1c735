"""walk-these-ways collection without IsaacGym: checkpoint conversion (state dict and TorchScript, bit-exact),
parameters.pkl with CUDA tensors, run-dir discovery, rollout arrays -> trajectories, the collection loop
(resume, watch, prompts split, skips) with a stand-in simulator, and the CLI's one-line errors."""
import importlib.util
import io
import json
import os
import pickle
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from maa_core.collect.wtw import WtwCollectConfig, WtwCollector, WtwDeployConfig, config_from_dict
from maa_core.collect.wtw_convert import (Rollout, WtwCheckpoint, check_run_fits_spec, convert_checkpoint, expand_runs,
                                          find_checkpoints, load_run_parameters, rollout_to_trajectories)
from maa_core.dataset import PolicyDataset
from maa_core.errors import MaaError
from maa_core.specs import get_spec

REPO = Path(__file__).resolve().parents[1]
SPEC = get_spec("go2-wtw")
HIST, LATENT, ACT = 2100, 2, 12


# -- WTW-shaped modules and run dirs, made here ------------------------------------------------------
def _mlp(dims, act):
    """Linear layers with ONE shared activation module between them, as WTW's ActorCritic builds them."""
    layers = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(act)
    return nn.Sequential(*layers)


class WtwActorCritic(nn.Module):
    """ActorCritic's parameter naming: adaptation_module.*, actor_body.*, critic_body.*, std."""

    def __init__(self, seed=0, hidden=(512, 256, 128), act=None):
        super().__init__()
        torch.manual_seed(seed)
        act = act or nn.ELU()
        self.adaptation_module = _mlp([HIST, 256, 128, LATENT], act)
        self.actor_body = _mlp([HIST + LATENT, *hidden, ACT], act)
        self.critic_body = _mlp([HIST + LATENT, 64, 1], act)  # (smaller than WTW's; never read)
        self.std = nn.Parameter(torch.ones(ACT))

    def act_student(self, obs_history):
        return self.actor_body(torch.cat((obs_history, self.adaptation_module(obs_history)), dim=-1))


@contextmanager
def saved_as_cuda():
    """torch.save / pickle record storages as 'cuda:0' (as WTW's GPU runs do); loading them without
    map_location fails on a CPU-only machine."""
    from torch import serialization as S

    S.register_package(1, lambda obj: "cuda:0", lambda obj, loc: None)
    entry = S._package_registry[0]
    try:
        yield
    finally:
        S._package_registry.remove(entry)


def run_params(**env_over):
    env = {"num_observations": 70, "num_observation_history": 30, "num_privileged_obs": 2, "num_actions": 12, **env_over}
    return {"Cfg": {"env": env, "commands": {"num_commands": 15}, "kp": torch.tensor([20.0])},
            "AC_Args": {"activation": "elu", "actor_hidden_dims": [512, 256, 128]},
            "maa": {"seed": 7}}


def make_run(root: Path, iterations=(0, 100), params=None, cuda=True) -> tuple[Path, dict]:
    run = root / "2024-01-01" / "train" / "010203.000001"
    (run / "checkpoints").mkdir(parents=True)
    ctx = saved_as_cuda() if cuda else contextmanager(lambda: (yield))()
    models = {}
    with ctx:
        (run / "parameters.pkl").write_bytes(pickle.dumps(params or run_params()))
        for it in iterations:
            models[it] = WtwActorCritic(seed=it)
            torch.save(models[it].state_dict(), run / "checkpoints" / f"ac_weights_{it:06d}.pt")
    return run, models


def add_checkpoint(run: Path, it: int) -> WtwActorCritic:
    m = WtwActorCritic(seed=it)
    tmp = run / "checkpoints" / f"tmp{it}.part"
    torch.save(m.state_dict(), tmp)
    tmp.rename(run / "checkpoints" / f"ac_weights_{it:06d}.pt")
    return m


def x_batch(n=16, seed=1):
    return torch.randn(n, SPEC.obs_dim, generator=torch.Generator().manual_seed(seed)) * 2


# -- conversion --------------------------------------------------------------------------------------
def test_state_dict_checkpoint_converts_bit_exactly_and_loads_cuda_tensors_on_cpu(tmp_path):
    run, models = make_run(tmp_path, iterations=(100,))
    path = run / "checkpoints" / "ac_weights_000100.pt"
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(path, weights_only=True)  # the file really is CUDA-tagged
    conv = convert_checkpoint(WtwCheckpoint(run, "r", 100, path, "state_dict"), SPEC, run_params())
    assert conv.params.dtype == np.float32 and conv.params.shape == (SPEC.num_params,) == (1_242_508,)
    ac, x = models[100], x_batch()
    actor = SPEC.unflatten(conv.params)
    with torch.no_grad():
        assert torch.equal(actor(x), ac.actor_body(x))
        h = x[:, :HIST]
        assert torch.equal(conv.adaptation(h), ac.adaptation_module(h))
        # the composed student policy, as WTW's act_student runs it
        assert torch.equal(actor(torch.cat((h, conv.adaptation(h)), -1)), ac.act_student(h))
    # layer order: the first 2102x512 block is actor_body.0.weight row-major, the last 12 the output bias
    np.testing.assert_array_equal(conv.params[:SPEC.obs_dim], ac.actor_body[0].weight[0].detach().numpy())
    np.testing.assert_array_equal(conv.params[-ACT:], ac.actor_body[6].bias.detach().numpy())


def test_torchscript_body_converts_bit_exactly(tmp_path):
    ac = WtwActorCritic(seed=3)
    p = tmp_path / "body_000300.jit"
    torch.jit.script(ac.actor_body).save(str(p))  # as ppo_cse.Runner saves body_latest.jit
    torch.jit.script(ac.adaptation_module).save(str(tmp_path / "adaptation_module_000300.jit"))
    conv = convert_checkpoint(WtwCheckpoint(tmp_path, "r", 300, p, "jit"), SPEC)
    x = x_batch(seed=5)
    with torch.no_grad():
        assert torch.equal(SPEC.unflatten(conv.params)(x), ac.actor_body(x))
        assert torch.equal(SPEC.unflatten(conv.params)(x), torch.jit.load(str(p))(x))
        assert torch.equal(conv.adaptation(x[:, :HIST]), ac.adaptation_module(x[:, :HIST]))


def test_bad_checkpoints_give_one_clear_error(tmp_path):
    def conv(module_or_sd, name, kind):
        p = tmp_path / name
        if kind == "jit":
            torch.jit.script(module_or_sd).save(str(p))
        else:
            torch.save(module_or_sd, p)
        return convert_checkpoint(WtwCheckpoint(tmp_path, "r", 1, p, kind), SPEC)

    with pytest.raises(MaaError, match=r"trunk.4.weight has shape \(64, 256\)"):
        conv(WtwActorCritic(hidden=(512, 256, 64)).state_dict(), "a.pt", "state_dict")
    with pytest.raises(MaaError, match="3 Linear layers, spec go2-wtw has 4"):
        conv(WtwActorCritic(hidden=(512, 256)).state_dict(), "b.pt", "state_dict")
    with pytest.raises(MaaError, match=r"body layers \['Linear', 'ReLU'"):
        conv(WtwActorCritic(act=nn.ReLU()).actor_body, "c.jit", "jit")
    with pytest.raises(MaaError, match="ELU alpha 0.5"):
        conv(WtwActorCritic(act=nn.ELU(alpha=0.5)).actor_body, "d.jit", "jit")
    sd = WtwActorCritic().state_dict()
    sd["actor_body.2.bias"][3] = float("nan")
    with pytest.raises(MaaError, match="NaN or Inf"):
        conv(sd, "e.pt", "state_dict")
    buf = io.BytesIO()
    torch.save(WtwActorCritic().state_dict(), buf)
    (tmp_path / "f.pt").write_bytes(buf.getvalue()[:4000])  # truncated
    with pytest.raises(MaaError, match="not a loadable torch state dict"):
        convert_checkpoint(WtwCheckpoint(tmp_path, "r", 1, tmp_path / "f.pt", "state_dict"), SPEC)
    assert "\n" not in str(pytest.raises(MaaError, conv, {"x.weight": torch.zeros(1)}, "g.pt", "state_dict").value)


def test_parameters_pkl_maps_cuda_tensors_and_checks_layout(tmp_path):
    with saved_as_cuda():
        blob = pickle.dumps(run_params())
    with pytest.raises(RuntimeError, match="CUDA"):
        pickle.loads(blob)
    (tmp_path / "parameters.pkl").write_bytes(blob)
    p = load_run_parameters(tmp_path)  # the run dir works as well as the file
    assert p["Cfg"]["kp"].device.type == "cpu" and float(p["Cfg"]["kp"][0]) == 20.0
    check_run_fits_spec(p, SPEC, "run")
    with pytest.raises(MaaError, match=r"\(1050 history \+ 2 latent\) -> 12, spec go2-wtw is 2102 -> 12"):
        check_run_fits_spec(run_params(num_observation_history=15), SPEC, "run")
    bad = run_params()
    bad["AC_Args"]["activation"] = "relu"
    with pytest.raises(MaaError, match="activation 'relu'"):
        check_run_fits_spec(bad, SPEC, "run")
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "parameters.pkl").write_bytes(b"not a pickle")
    with pytest.raises(MaaError, match="cannot unpickle"):
        load_run_parameters(tmp_path / "x")
    # the real pretrained run's Cfg (JSON dump shipped in ../shared/wtw) fits the spec
    shared = REPO.parent / "shared" / "wtw" / "wtw_go1_pretrain_config.json"
    if shared.is_file():
        check_run_fits_spec({"Cfg": json.loads(shared.read_text())}, SPEC, str(shared))


# -- run dirs --------------------------------------------------------------------------------------------
def test_checkpoint_discovery_iterations_kinds_and_settling(tmp_path):
    run, _ = make_run(tmp_path, iterations=(0, 100), cuda=False)
    ck = run / "checkpoints"
    for name in ("ac_weights_last.pt", "body_latest.jit", "adaptation_module_latest.jit", "body_000300.jit",
                 "notes.txt", "ac_weights_000300.pt", "body_000200.jit"):
        (ck / name).write_bytes(b"x")
    now = time.time()
    found = find_checkpoints(run, settle_s=0)
    assert [(c.iteration, c.kind) for c in found] == [(0, "state_dict"), (100, "state_dict"), (200, "jit"), (300, "state_dict")]
    assert found[0].run_id == "2024-01-01/train/010203.000001"
    assert found[0].key("wtw-locomotion") == "wtw-locomotion/wtw/2024-01-01/train/010203.000001/0"
    old = now - 100
    for c in found[:2]:
        os.utime(c.path, (old, old))
    assert [c.iteration for c in find_checkpoints(run, settle_s=10, now=now + 1)] == [0, 100]  # new files wait
    assert [c.iteration for c in find_checkpoints(run, settle_s=10, now=now + 20)] == [0, 100, 200, 300]
    # a parent folder contributes its runs; a missing path or a glob that finds nothing is an error
    assert expand_runs([tmp_path]) == [run]
    assert expand_runs([str(tmp_path / "*" / "train" / "*")]) == [run]
    with pytest.raises(MaaError, match="no such walk-these-ways run directory"):
        expand_runs([tmp_path / "missing"])
    with pytest.raises(MaaError, match="no walk-these-ways run directory"):
        expand_runs([str(tmp_path / "nothing-*")], strict=True)
    assert expand_runs([str(tmp_path / "nothing-*")], strict=False) == []


# -- rollouts ------------------------------------------------------------------------------------------
def test_rollout_arrays_become_actor_input_trajectories():
    rng = np.random.default_rng(0)
    T, N = 50, 3
    hist, lat = rng.normal(size=(T, N, HIST)), rng.normal(size=(T, N, LATENT))
    act, rew = rng.normal(size=(T, N, ACT)), np.ones((T, N))
    done = np.zeros((T, N), bool)
    done[9, 1] = done[29, 2] = done[40, 2] = True
    vel = np.zeros((T, N, 3))
    vel[..., 0] = [0.5, 0.1, 0.3]
    contacts = np.zeros((T, N, 4), bool)
    contacts[::10] = True  # one touchdown per foot every 10 steps (0.2 s): 5 Hz
    r = Rollout(hist, lat, act, rew, done, vel, contacts, dt=0.02)
    trajs, s = rollout_to_trajectories(r, SPEC, min_steps=20, states="actor_input")
    assert [len(t) for t in trajs] == [50, 30] and s["episode_lengths"] == [50, 10, 30]
    assert s["kept"] == 2 and s["fell"] == 2 and s["return"] == pytest.approx(40.0)
    assert s["mean_vx"] == pytest.approx(0.4)
    assert s["step_frequency_hz"] == pytest.approx(4 / (50 * 0.02) / 2 + 2 / (30 * 0.02) / 2)
    t = trajs[1]
    assert t.success is None and t.states.shape == (30, SPEC.obs_dim)
    np.testing.assert_array_equal(t.states[:, :HIST], hist[:30, 2].astype(np.float32))
    np.testing.assert_array_equal(t.states[:, HIST:], lat[:30, 2].astype(np.float32))
    np.testing.assert_array_equal(t.actions, act[:30, 2].astype(np.float32))
    # default: the step's observation, i.e. the newest row of the history (what the Go2 controller streams)
    obs_trajs, s2 = rollout_to_trajectories(r, SPEC, min_steps=20)
    assert s2 == s and obs_trajs[1].states.shape == (30, 70)
    np.testing.assert_array_equal(obs_trajs[1].states, hist[:30, 2, -70:].astype(np.float32))
    np.testing.assert_array_equal(obs_trajs[1].actions, t.actions)
    with pytest.raises(MaaError, match="whole number of 64-value"):
        rollout_to_trajectories(r, SPEC, 20, obs_dim=64)
    with pytest.raises(MaaError, match="history 2100 \\+ latent 3"):
        rollout_to_trajectories(Rollout(hist, np.zeros((T, N, 3)), act, rew, done), SPEC, 20)
    with pytest.raises(MaaError, match="disagree on"):
        rollout_to_trajectories(Rollout(hist, lat, act[:10], rew, done), SPEC, 20)
    bad = hist.copy()
    bad[3, 0, 5] = np.inf
    with pytest.raises(MaaError, match="NaN or Inf"):
        rollout_to_trajectories(Rollout(bad, lat, act, rew, done), SPEC, 20)


# -- the collection loop, with a stand-in simulator ---------------------------------------------------
class StandInSim:
    """Runs actor(history ‖ adaptation(history)) on a toy linear 'robot' so trajectories depend on the actor."""

    def __init__(self, deploy: WtwDeployConfig, fall_all=False):
        self.d, self.fall_all, self.calls = deploy, fall_all, 0
        g = torch.Generator().manual_seed(0)
        self.mix = torch.randn(ACT, 70, generator=g) * 0.1

    def rollout(self, actor, adaptation):
        self.calls += 1
        T, N = self.d.episode_steps, self.d.episodes
        g = torch.Generator().manual_seed(self.d.seed)
        h = torch.zeros(N, HIST)
        H, L, A = [], [], []
        with torch.no_grad():
            for _ in range(T):
                z = adaptation(h)
                a = actor(torch.cat((h, z), -1))
                H.append(h.numpy().copy()), L.append(z.numpy()), A.append(a.numpy())
                obs = torch.tanh(a @ self.mix + 0.01 * torch.randn(N, 70, generator=g))
                h = torch.cat((h[:, 70:], obs), -1)
        done = np.zeros((T, N), bool)
        if self.fall_all:
            done[2] = True
        return Rollout(np.stack(H), np.stack(L), np.stack(A), np.ones((T, N)), done)


def collector_cfg(out, runs, states="actor_input", **kw):
    deploy = WtwDeployConfig(episodes=2, episode_steps=12, min_steps=5, states=states)
    return WtwCollectConfig(out=str(out), runs=tuple(str(r) for r in runs), deploy=kw.pop("deploy", deploy),
                            prompt_below=100, shard_records=2, settle_s=0, poll_s=0.05, **kw)


def test_collector_writes_records_resumes_and_watches(tmp_path):
    run, models = make_run(tmp_path / "runs", iterations=(0, 100, 200))
    cfg = collector_cfg(tmp_path / "data", [run])
    sims = []

    def factory(params):
        assert params["Cfg"]["env"]["num_observation_history"] == 30
        sims.append(StandInSim(cfg.deploy))
        return sims[-1]

    s = WtwCollector(cfg, factory, log=None, progress=False).run()
    assert s["written"] == {"checkpoints": 2, "prompts": 1} and sims[0].calls == 3
    ck = PolicyDataset(tmp_path / "data" / "checkpoints", verify=True)
    pr = PolicyDataset(tmp_path / "data" / "prompts", verify=True)
    assert ck.spec.name == "go2-wtw" and [r.source["step"] for r in pr] == [0]
    rec = {r.source["step"]: r for r in ck}
    assert sorted(rec) == [100, 200]
    for it, r in rec.items():
        assert r.key == f"wtw-locomotion/wtw/2024-01-01/train/010203.000001/{it}" and r.source["seed"] == 7
        actor = SPEC.unflatten(r.params)
        x = x_batch(4, seed=it)
        with torch.no_grad():
            assert torch.equal(actor(x), models[it].actor_body(x))
        assert len(r.trajectories) == 2
        t = r.trajectories[0]
        assert t.success is None and t.states.shape == (12, SPEC.obs_dim)
        with torch.no_grad():  # the stored actions are what the stored actor does on the stored states
            np.testing.assert_allclose(actor(torch.from_numpy(t.states)).numpy(), t.actions, rtol=0, atol=1e-5)
    # different checkpoints behave differently
    assert not np.allclose(rec[100].trajectories[0].actions, rec[200].trajectories[0].actions)

    # the default layout stores each step's observation: the newest history row of the same rollouts
    obs_root = tmp_path / "data-obs"
    WtwCollector(collector_cfg(obs_root, [run], states="observation"), factory, log=None, progress=False).run()
    ob = {r.source["step"]: r for r in PolicyDataset(obs_root / "checkpoints", verify=True)}
    assert PolicyDataset(obs_root / "checkpoints").traj_obs_dim == 70 and sorted(ob) == [100, 200]
    for it in (100, 200):
        for a, b in zip(ob[it].trajectories, rec[it].trajectories):
            np.testing.assert_array_equal(a.states, b.states[:, HIST - 70:HIST])
            np.testing.assert_array_equal(a.actions, b.actions)

    # rerun: nothing is converted again; a new checkpoint is
    add_checkpoint(run, 300)
    s = WtwCollector(cfg, factory, log=None, progress=False).run()
    assert s["written"] == {"checkpoints": 1, "prompts": 0} and sims[-1].calls == 1
    assert s["checkpoints"] == 3 and s["prompts"] == 1

    # watch: a checkpoint that appears while following is picked up; then the idle timeout ends it
    wcfg = collector_cfg(tmp_path / "data", [run], watch=True, idle_timeout_s=0.3)
    added, slept = [], []

    def sleep(dt):
        if not added:
            added.append(add_checkpoint(run, 400))
        slept.append(dt)
        time.sleep(dt)

    s = WtwCollector(wcfg, factory, log=None, progress=False).run(sleep=sleep)
    assert s["written"]["checkpoints"] == 1 and s["checkpoints"] == 4
    # it ended on the idle timeout: it polled after the new checkpoint, and did not poll forever
    assert len(slept) >= 2 and sum(slept) < 50 * wcfg.idle_timeout_s
    keys = [m["key"] for m in PolicyDataset(tmp_path / "data" / "checkpoints").meta()]
    assert len(keys) == len(set(keys)) == 4

    # other deployment settings for the same root are refused (same keys, different data)
    other = collector_cfg(tmp_path / "data", [run], deploy=WtwDeployConfig(episodes=3, episode_steps=12, min_steps=5,
                                                                           states="actor_input"))
    with pytest.raises(MaaError, match="collected with other settings"):
        WtwCollector(other, factory, log=None, progress=False)


def test_collector_training_mode_and_skips(tmp_path):
    """While `running()` is true the loop polls run dirs that do not exist yet (training); checkpoints whose
    episodes all fall are remembered as skipped and not deployed again."""
    from dataclasses import replace

    runs_root = tmp_path / "runs"
    cfg = collector_cfg(tmp_path / "data", [])
    with pytest.raises(MaaError, match="give run dirs"):
        WtwCollector(cfg, None, log=None, progress=False)
    # the glob matches nothing yet: fine while watching (runs that have not started)
    cfg = replace(cfg, runs=(str(runs_root / "*" / "train" / "*"),), watch=True, idle_timeout_s=0)
    extra = [runs_root / "2024-01-01" / "train" / "010203.000001"]  # where the "trainer" writes
    sims, state = [], {"polls": 0}

    def running():
        state["polls"] += 1
        if state["polls"] == 2:
            make_run(runs_root, iterations=(100,))
        return state["polls"] < 4

    def factory(params):
        sims.append(StandInSim(cfg.deploy, fall_all=True))
        return sims[-1]

    s = WtwCollector(cfg, factory, log=None, progress=False).run(extra_runs=extra, running=running)
    assert state["polls"] >= 4 and sims[0].calls == 1 and s["skipped"] == 1 and s["checkpoints"] == 0
    skipped = json.loads((tmp_path / "data" / "wtw_skipped.json").read_text())
    assert list(skipped) == ["wtw-locomotion/wtw/2024-01-01/train/010203.000001/100"]
    s = WtwCollector(cfg, factory, log=None, progress=False).run(extra_runs=extra)
    assert s["processed"] == 0 and len(sims) == 1 and sims[0].calls == 1  # no simulator was even built


# -- config and command line ----------------------------------------------------------------------------
def test_example_config_parses_and_bad_configs_are_refused():
    d = yaml.safe_load((REPO / "config" / "dataset_wtw_isaacgym.yaml").read_text())
    cfg = config_from_dict(d)
    assert cfg.spec == "go2-wtw" and cfg.train.save_every == 100 and len(cfg.deploy.commands) == 4
    assert cfg.train.seeds == (0, 1, 2, 3)
    with pytest.raises(MaaError, match="unknown settings \\['episdes'\\]"):
        config_from_dict({**d, "deploy": {"episdes": 3}})
    with pytest.raises(MaaError, match="15-value"):
        config_from_dict({**d, "deploy": {"commands": [[1.0, 0.0]]}})
    with pytest.raises(MaaError, match="save_every"):
        config_from_dict({**d, "train": {**d["train"], "save_every": 0}})
    with pytest.raises(MaaError, match="malformed \\(ValueError"):
        config_from_dict({**d, "deploy": {"commands": [["fast"] * 15]}})
    with pytest.raises(MaaError, match="method 'sac'"):
        config_from_dict({**d, "method": "sac"})


def _script():
    spec = importlib.util.spec_from_file_location("wtw_collect_script", REPO / "training" / "wtw_collect.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_dry_run_and_one_line_errors(tmp_path, capsys):
    main = _script().main
    run, _ = make_run(tmp_path / "runs", iterations=(0, 100))
    out = tmp_path / "data"
    assert main(["--runs", str(run), "--out", str(out), "--dry-run", "--set", "settle_s=0"]) == 0
    assert "2 checkpoints, 0 collected, 2 to collect (iterations 0..100)" in capsys.readouterr().out
    assert not out.exists()  # a dry run writes nothing

    def err(argv):
        assert main(argv) == 2
        e = capsys.readouterr().err.strip()
        assert e.startswith("wtw_collect: error:") and "\n" not in e, e
        return e

    assert "no such walk-these-ways run directory" in err(["--runs", str(tmp_path / "nope"), "--out", str(out)])
    if importlib.util.find_spec("isaacgym") is None:
        assert "isaacgym" in err(["--runs", str(run), "--out", str(out)])
        cfg = tmp_path / "train.yaml"
        cfg.write_text(yaml.safe_dump({"method": "wtw", "out": str(out), "train": {"seeds": 1, "runs_root": str(tmp_path / "r")}}))
        assert "training WTW runs needs IsaacGym" in err(["--config", str(cfg)])
    torch.save(WtwActorCritic(hidden=(512, 256, 64)).state_dict(), run / "checkpoints" / "ac_weights_000000.pt")
    assert "has shape (64, 256)" in err(["--runs", str(run), "--out", str(tmp_path / "d2"), "--dry-run", "--set", "settle_s=0"])
    assert "no such config file" in err(["--config", str(tmp_path / "missing.yaml")])


def test_cli_exit_code_in_a_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = str(REPO / "training" / "wtw_collect.py")
    r = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "--dry-run" in r.stdout
    r = subprocess.run([sys.executable, script, "--runs", str(tmp_path / "missing"), "--out", str(tmp_path / "d")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "missing" in r.stderr


def test_isaacgym_is_imported_before_torch_by_the_script(tmp_path):
    """isaacgym refuses to load after torch: a stand-in isaacgym that checks this must load first."""
    fake = tmp_path / "site" / "isaacgym"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "import os, sys\n"
        "if 'torch' in sys.modules:\n    raise ImportError('PyTorch was imported before isaacgym modules')\n"
        "open(os.environ['MAA_TEST_MARK'], 'w').write('loaded')\n")
    mark = tmp_path / "mark"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(tmp_path / "site"), "MAA_TEST_MARK": str(mark)}
    r = subprocess.run([sys.executable, str(REPO / "training" / "wtw_collect.py"), "--help"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert mark.read_text() == "loaded"
    # the library modules import no torch before it either
    code = "import sys, maa_core.collect.wtw_isaacgym as w; assert 'torch' not in sys.modules; print('ok')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert r.stdout.strip() == "ok", r.stderr


def test_cfg_application_and_trainer_requirements(tmp_path, monkeypatch):
    from maa_core.collect import wtw_isaacgym as wi
    from maa_core.collect.wtw import WtwTrainConfig

    class Cfg:  # params_proto-style nested classes
        class env:
            num_envs = 4096
            num_observations = 235

        class sim:
            dt = 0.01

            class physx:
                num_threads = 10

    wi.apply_cfg(Cfg, {"env": {"num_observations": 70}, "sim": {"dt": 0.005, "physx": {"num_threads": 4}}})
    assert (Cfg.env.num_observations, Cfg.env.num_envs, Cfg.sim.dt, Cfg.sim.physx.num_threads) == (70, 4096, 0.005, 4)
    assert isinstance(Cfg.sim.physx, type)  # nested sections stay sections
    wi.apply_overrides(Cfg, {"env.num_envs": 8, "sim.physx.num_threads": 2})
    assert (Cfg.env.num_envs, Cfg.sim.physx.num_threads) == (8, 2)
    with pytest.raises(MaaError, match="no setting 'num_env'"):
        wi.apply_overrides(Cfg, {"env.num_env": 8})

    t = WtwTrainConfig(seeds=(0, 1, 2), runs_root=str(tmp_path))
    (tmp_path / "seed-0").mkdir()
    (tmp_path / "seed-0" / wi.TRAIN_DONE).write_text("{}")
    (tmp_path / "seed-1" / "checkpoints").mkdir(parents=True)
    (tmp_path / "seed-1" / "checkpoints" / "ac_weights_000100.pt").write_bytes(b"x")
    monkeypatch.setattr(wi, "missing_requirements", lambda: ["isaacgym (NVIDIA Isaac Gym)"])
    with pytest.raises(MaaError, match="training WTW runs needs IsaacGym and walk-these-ways; not importable here: isaacgym"):
        wi.TrainerPool(t, log=lambda *a: None)
    logs = []
    pool = wi.TrainerPool(WtwTrainConfig(seeds=(0, 1), runs_root=str(tmp_path)), log=logs.append)
    assert pool.queue == [] and not pool.running()  # finished and interrupted runs are not retrained
    assert pool.run_dirs() == [tmp_path / "seed-0", tmp_path / "seed-1"] and "interrupted" in logs[0]
