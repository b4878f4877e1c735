"""Recording a Go2 run (maa_core/go2/recording.py): real mcap files, a real MuJoCo walk, and the
prompt / plot paths that read them (`maa prompt`, `maa plot`)."""
import logging
import time

import numpy as np
import pytest

from maa_core import prompts
from maa_core.cli import main as maa
from maa_core.errors import MaaError
from maa_core.go2.recording import Recorder, RecorderConfig, read_recording
from maa_core.go2.safety import Mode
from maa_core.go2.telemetry import ControllerEvent
from maa_core.trajectory import Trajectory, load_trajectory

RNG = np.random.default_rng(0)


def _ticks(n, run_from=3):
    obs = RNG.normal(size=(n, 70)).astype(np.float32)
    act = RNG.normal(size=(n, 12)).astype(np.float32)
    cmd = RNG.uniform(-1, 1, size=(n, 3))
    quat = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
    modes = [Mode.RUN if k >= run_from else Mode.DAMP if k == 0 else Mode.STAND_UP for k in range(n)]
    return obs, act, cmd, quat, modes


def _record(path, n, cfg=RecorderConfig(), **kw):
    obs, act, cmd, quat, modes = _ticks(n, **kw)
    rec = Recorder(path, cfg=cfg)
    rec.on_event(ControllerEvent("transition", 0.01, 1, "DAMP -> STAND_UP: enable requested",
                                 {"from": "DAMP", "to": "STAND_UP", "reason": "enable requested", "ticket": object()}))
    for k in range(n):
        assert rec.tick(k, 0.02 * k, modes[k], cmd[k], quat[k], obs[k], act[k], 1e-4)
    return rec, (obs, act, cmd, quat, modes)


def test_a_recording_reads_back_the_values_it_was_fed(tmp_path):
    rec, (obs, act, cmd, quat, modes) = _record(tmp_path / "r.mcap", 40)
    summary = rec.close()
    assert summary["ticks"] == 40 and summary["steps"] == 37 and summary["dropped_ticks"] == 0
    r = read_recording(tmp_path / "r.mcap")
    assert r.complete and r.metadata["maa.recording"]["ticks"] == "40"
    np.testing.assert_array_equal(r.tick, np.arange(40))
    np.testing.assert_allclose(r.t, 0.02 * np.arange(40))
    np.testing.assert_array_equal(r.mode, [int(m) for m in modes])
    np.testing.assert_array_equal(r.observation, obs)
    np.testing.assert_array_equal(r.action, act)
    np.testing.assert_allclose(r.command, cmd)
    np.testing.assert_allclose(r.quat, quat)
    (ev,) = r.transitions
    assert ev["tick"] == 1 and ev["values"] == {"from": "DAMP", "to": "STAND_UP", "reason": "enable requested"}
    # the RUN ticks are the prompt's step stream: the prompt reader takes them without ROS
    ((_, traj),) = prompts.read_prompts_from_bag(tmp_path / "r.mcap", window=37)
    np.testing.assert_array_equal(traj.states, obs[3:])
    np.testing.assert_array_equal(traj.actions, act[3:])


def test_a_recording_cut_mid_chunk_yields_its_complete_chunks_with_one_warning(tmp_path, caplog):
    path = tmp_path / "r.mcap"
    rec, (obs, act, *_) = _record(path, 60, RecorderConfig(chunk_bytes=4096, compression="none"), run_from=0)
    rec.close()
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # inside the data: a chunk cut in two
    with caplog.at_level(logging.WARNING):
        r = read_recording(cut)
        steps = prompts.read_prompts_from_bag(cut)
    n = len(r.tick)
    assert not r.complete and 0 < n < 60
    np.testing.assert_array_equal(r.tick, np.arange(n))  # every tick of the complete chunks, in order
    np.testing.assert_array_equal(r.observation, obs[:n])
    assert len(steps) in (n - 1, n)  # a chunk may end between a tick row and its step row
    lines = [m for m in caplog.messages if "maa: warning" in m]
    assert len(lines) == 2 and all("ends early" in m and "\n" not in m for m in lines)  # one per read
    # a file cut inside its first record: one line, no traceback
    (tmp_path / "stub.mcap").write_bytes(path.read_bytes()[:20])
    with pytest.raises(MaaError, match="before any message"):
        read_recording(tmp_path / "stub.mcap")
    (tmp_path / "junk.mcap").write_bytes(b"not an mcap file at all")
    assert maa(["prompt", "--bag", str(tmp_path / "junk.mcap"), "--out", str(tmp_path / "p.npz")]) == 2


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path):
    rec = Recorder(tmp_path / "r.mcap", cfg=RecorderConfig(queue_size=4))
    with rec._io_lock:  # the writer stalls as on a full disk
        t0 = time.perf_counter()
        ok = [rec.tick(k, 0.02 * k, Mode.RUN, (0, 0, 0), (1, 0, 0, 0), np.zeros(70), np.zeros(12)) for k in range(50)]
        assert time.perf_counter() - t0 < 5.0  # generous: a blocking put would never return
    s = rec.close()
    assert sum(ok) == s["ticks"] and s["dropped_ticks"] == 50 - s["ticks"] > 0
    assert read_recording(tmp_path / "r.mcap").metadata["maa.recording"]["dropped_ticks"] == str(s["dropped_ticks"])


def test_a_prompt_from_a_recorded_sim_walk_equals_the_walks_own_prompt(tmp_path, shared_dir):
    """A real MuJoCo walk (the data path's expert trot): every step goes to the recorder as the
    controller's ticks do; `maa prompt` on the file gives the walk's own [observation | action] rows."""
    from maa_core.go2.gait import GaitExpert
    from maa_core.go2.sim.env import make_env
    from maa_core.go2.walk import walk

    env, adaptation = make_env(shared_dir / "wtw")
    rec = Recorder(tmp_path / "walk.mcap")
    expert = GaitExpert(env)
    k = [0]

    class Recorded:  # the expert, each executed step also handed to the recorder
        def reset(self):
            expert.reset()

        def act(self):
            a = expert.act()
            b, d = env.builder, env.sim.data
            t = 0.02 * k[0]
            rec.tick(k[0], t, Mode.RUN, b.commands[:3], d.qpos[3:7], b.obs,
                     np.clip(a, -env.wtw.clip_actions, env.wtw.clip_actions))
            rec.pose(t, d.qpos[0:3], d.qpos[3:7])
            k[0] += 1
            return a

    res = walk(env, adaptation, None, 2.0, expert=Recorded(), record=True)
    rec.close()
    direct = Trajectory(res.observations, res.actions)
    assert len(direct) == 100 and not res.fell
    out = tmp_path / "prompt.npz"
    assert maa(["prompt", "--bag", str(tmp_path / "walk.mcap"), "--window", "100", "--out", str(out)]) == 0
    got = load_trajectory(out)
    np.testing.assert_allclose(got.states, direct.states, atol=1e-6)
    np.testing.assert_allclose(got.actions, direct.actions, atol=1e-6)
    assert prompts.prompt_id(got) == prompts.prompt_id(direct)
    assert maa(["plot", "--bag", str(tmp_path / "walk.mcap"), "--out", str(tmp_path / "plots")]) == 0
    assert (tmp_path / "plots" / "tracking.png").stat().st_size > 0
    assert (tmp_path / "plots" / "walk_path.png").stat().st_size > 0


def test_the_controllers_ticks_and_transitions_are_recorded_off_the_loop(tmp_path, shared_dir):
    """The real controller loop (in-process standing robot): the recorder, as tick and event
    listener, writes exactly the ticks the dispatcher handed out, with the operator's command."""
    from maa_core.go2.controller import Controller
    from maa_core.go2.wtw import load_wtw_run
    from test_go2_controller import CFG, FakeRobot, const_blob

    ctl = Controller(CFG, FakeRobot(), load_wtw_run(shared_dir / "wtw"))
    rec = Recorder(tmp_path / "ctl.mcap")
    seen = []
    ctl.add_tick_listener(seen.append)
    ctl.add_tick_listener(rec.on_tick)
    ctl.add_event_listener(rec.on_event)
    ctl.start()
    try:
        assert ctl.submit_actor(const_blob(0.1, "good")).wait(10).accepted
        ctl.set_command(0.3, 0.0, 0.1)
        ctl.enable()
        deadline = time.monotonic() + 8
        while ctl.mode != Mode.RUN or sum(r.mode == "RUN" for r in seen) < 10:
            assert time.monotonic() < deadline, ctl.supervisor.reason
            time.sleep(0.02)
    finally:
        ctl.close()
    rec.close()
    r = read_recording(tmp_path / "ctl.mcap")
    assert len(r.tick) == len(seen) > 10
    np.testing.assert_array_equal(r.tick, [s.tick for s in seen])
    np.testing.assert_array_equal(r.observation, np.stack([s.observation for s in seen]))
    run = r.mode == int(Mode.RUN)
    np.testing.assert_allclose(r.command[run], np.tile([0.3, 0.0, 0.1], (run.sum(), 1)))
    assert [(e["values"]["from"], e["values"]["to"]) for e in r.transitions][:2] == [("DAMP", "STAND_UP"), ("STAND_UP", "RUN")]
    ((_, steps),) = prompts.read_prompts_from_bag(tmp_path / "ctl.mcap", window=int(run.sum()))
    np.testing.assert_array_equal(steps.actions, np.stack([s.action for s in seen if s.mode == "RUN"]))


# real-time loops, DDS and ROS graphs: one pytest-xdist worker runs all such files, in order (see Makefile)
pytestmark = pytest.mark.xdist_group("realtime")
