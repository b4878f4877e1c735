"""Controller against the simulated Go2 over real DDS on loopback, on a test-specific domain: the
bridge runs in its own process (`python -m maa_core.go2.sim.bridge`), each scenario's controller in a
spawned child process. The pytest process itself never loads CycloneDDS (its process-global state
must not leak into other test modules, e.g. the ROS tests that load another DDS)."""
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch

from maa_core.actor_io import ActorBlob
from maa_core.go2.config import load_robot_config
from maa_core.go2.controller import Controller
from maa_core.go2.dds import Go2DdsRobot, init_dds
from maa_core.go2.safety import Mode
from maa_core.go2.wtw import load_wtw_run
from maa_core.specs import get_spec, locomotion_spec

REPO = Path(__file__).resolve().parents[1]
# cyclone domains outside the ROS_DOMAIN_ID range conftest draws from (30..200)
DOMAIN = 201 + os.getpid() % 30
PERIOD = 0.02


def const_blob(value: float, gid: str, spec=None) -> ActorBlob:
    """An actor whose action is `value` on every joint whatever the input (zero weights, bias = value)."""
    spec = spec or get_spec("go2-wtw")
    params = np.zeros(spec.num_params, np.float32)
    params[-spec.act_dim:] = value  # last entries: bias of the action head
    return ActorBlob(spec, params, generation_id=gid)


class BodyHeight:
    """Ground truth trunk height from the simulator's rt/sportmodestate."""

    def __init__(self):
        from unitree_sdk2py.core.channel import ChannelSubscriber
        from unitree_sdk2py.idl.unitree_go.msg.dds_ import SportModeState_
        self.z, self.n = float("nan"), 0
        self.sub = ChannelSubscriber("rt/sportmodestate", SportModeState_)
        self.sub.Init(self._on, 0)

    def _on(self, msg):
        self.z, self.n = msg.position[2], self.n + 1


@pytest.fixture
def bridge(tmp_path):
    log = (tmp_path / "bridge.log").open("w")
    p = subprocess.Popen([sys.executable, "-m", "maa_core.go2.sim.bridge", "--domain", str(DOMAIN), "--interface", "lo",
                          "--exit-with-parent", "--rt-priority", "10"], cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    p.log_path = tmp_path / "bridge.log"
    yield p
    try:
        os.kill(p.pid, signal.SIGCONT)
        p.terminate()
        p.wait(5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        p.kill()
        p.wait(5)
    log.close()


def _child(scenario: str, domain: int, bridge_pid: int, shared: str, q, joystick_source: str = "") -> None:
    """Runs in a spawned process: DDS, a controller on the simulated Go2, then the scenario."""
    try:
        import dataclasses
        cfg = load_robot_config("go2")
        if joystick_source:
            cfg = dataclasses.replace(cfg, joystick=dataclasses.replace(cfg.joystick, source=joystick_source))
        init_dds(domain, "lo", cfg.dds.rt_priority)
        dds = {"height": BodyHeight()}
        robot = Go2DdsRobot(cfg, domain=domain, interface="lo", release_sport_mode=False).open()
        ctl = Controller(cfg, robot, load_wtw_run(Path(shared) / "wtw"))
        from maa_core.go2.state import LowState
        st, deadline = LowState(), time.monotonic() + 20
        while not robot.read_state(st):
            assert time.monotonic() < deadline, "no rt/lowstate from the simulated Go2"
            time.sleep(0.05)
        ctl.start()
        try:
            globals()[scenario](ctl, dds, bridge_pid)
        finally:
            ctl.close()
            robot.close()
        q.put("ok")
    except BaseException:
        q.put(traceback.format_exc())


def run_scenario(scenario, bridge, shared_dir, timeout=120, joystick_source=""):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(scenario.__name__, DOMAIN, bridge.pid, str(shared_dir), q, joystick_source),
                    daemon=True)
    p.start()
    try:
        out = q.get(timeout=timeout)
    finally:
        p.join(10)
        if p.is_alive():
            p.kill()
            p.join(5)
    assert out == "ok", f"scenario {scenario.__name__} failed in the controller process:\n{out}\n" \
                        f"bridge log:\n{bridge.log_path.read_text()[-2000:]}"


def wait_for(cond, timeout, step=0.01):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


def transitions_to(ctl, mode):
    return [t for t in ctl.supervisor.transitions if t.new == mode]


def sc_stands_up_and_holds(ctl, dds, bridge_pid):
    h = dds["height"]
    assert ctl.mode == Mode.DAMP
    assert wait_for(lambda: h.n > 0, 5.0), "no rt/sportmodestate from the simulator"
    lying = h.z
    ctl.enable()
    time.sleep(load_robot_config("go2").stand.duration_s + 0.5)
    heights = []
    t_end = time.monotonic() + 4.0  # 200 control ticks of holding
    while time.monotonic() < t_end:
        heights.append(h.z)
        time.sleep(0.1)
    heights = np.array(heights)
    assert lying < 0.15, f"should start lying, trunk at {lying:.3f} m"
    assert ctl.mode == Mode.STAND_UP and ctl.counters["faults"] == 0, ctl.supervisor.reason
    assert np.all((heights > 0.24) & (heights < 0.36)), f"trunk height left the band: {heights.min():.3f}..{heights.max():.3f}"
    assert np.ptp(heights) < 0.02
    # missed ticks are a timing figure of the machine, not a verdict: benchmarks/bench_go2.py measures them


def sc_stale_state_damps_within_one_tick(ctl, dds, bridge_pid):
    ctl.enable()
    assert wait_for(lambda: ctl.mode == Mode.STAND_UP, 1.0)
    time.sleep(0.5)
    tick_times = {}
    ctl.add_tick_listener(lambda r: tick_times.__setitem__(r.tick, r.time))
    os.kill(bridge_pid, signal.SIGSTOP)  # the state stream stops mid-stand
    try:
        assert wait_for(lambda: ctl.mode == Mode.DAMP, 1.0)
        last_state = ctl.st.stamp
        t = transitions_to(ctl, Mode.DAMP)[-1]
    finally:
        os.kill(bridge_pid, signal.SIGCONT)
    assert "stale lowstate" in t.reason
    stale = ctl.cfg.safety.stale_state_s
    assert wait_for(lambda: t.tick - 1 in tick_times, 1.0)
    # the first tick that saw a stale state damped: the tick before still had a fresh one
    assert t.time - last_state > stale >= tick_times[t.tick - 1] - last_state
    # the mode changes mid-tick, before that tick sets the damping command: read it a tick later
    assert wait_for(lambda: ctl.tick_index > t.tick + 1, 1.0)
    assert np.all(ctl.cmd.kp == 0) and np.all(ctl.cmd.kd == ctl.cfg.damping.kd)


def sc_estop_service_and_gamepad(ctl, dds, bridge_pid):
    """The e-stop service damps at the next tick; then the remote over DDS (maa go2-gamepad's publisher):
    L2+A stands and holds, START runs the active actor, the sticks drive the velocity, a NaN sample
    is ignored and counted, L2+B damps from RUN in the tick that read it."""
    from maa_core.go2.sim.remote import RemotePublisher, chord_mask
    ctl.enable()
    assert wait_for(lambda: ctl.mode == Mode.STAND_UP, 1.0)
    time.sleep(0.3)
    k0 = ctl.tick_index
    ctl.estop("test")
    assert wait_for(lambda: ctl.mode == Mode.DAMP, 1.0)
    t = transitions_to(ctl, Mode.DAMP)[-1]
    assert t.reason == "e-stop (test)" and t.tick <= k0 + 1  # the next tick damps
    remote = RemotePublisher(ctl.robot.domain, "lo")  # the child process computes another DOMAIN
    assert remote.wait_matched(5.0), "the controller's rt/wirelesscontroller reader never matched"
    assert ctl.submit_actor(const_blob(0.0, "good")).wait(5).accepted
    remote.press(chord_mask("start"), 0.1)  # no stand yet: refused (an event), nothing moves
    time.sleep(0.1)
    assert ctl.mode == Mode.DAMP
    remote.press(chord_mask("L2+A"), 0.1)
    assert wait_for(lambda: ctl.mode == Mode.STAND_UP, 1.0)
    assert transitions_to(ctl, Mode.STAND_UP)[-1].reason == "stand (gamepad L2+A)"
    remote.press(chord_mask("B"), 0.1)  # B alone is not the damp chord
    stand = ctl.cfg.stand
    time.sleep(stand.duration_s + stand.settle_s + 0.3)  # standing, an actor active: the stand holds
    assert ctl.mode == Mode.STAND_UP, ctl.supervisor.reason
    remote.press(chord_mask("start"), 0.1)
    assert wait_for(lambda: ctl.mode == Mode.RUN, stand.settle_s + 1.0), ctl.supervisor.reason
    assert transitions_to(ctl, Mode.RUN)[-1].reason.startswith("standing; running good")
    # sticks: ly 0.5 -> vx; then a NaN sample: the last good command stays, counted once
    remote.sticks.update(ly=0.5)
    remote.send()
    assert wait_for(lambda: ctl._velocity[0] > 0.4, 1.0), ctl._velocity
    v = ctl._velocity
    remote.sticks.update(lx=float("nan"))
    remote.send()
    assert wait_for(lambda: ctl.counters["gamepad_rejected"] == 1, 1.0)
    time.sleep(0.1)  # later ticks get the same sample again
    assert ctl._velocity == v and ctl.mode == Mode.RUN and ctl.diagnostics()["gamepad_rejected"] == 1
    remote.sticks.update(lx=0.0, ly=0.0)
    remote.send()
    assert wait_for(lambda: ctl._velocity == (0.0, 0.0, 0.0), 1.0)  # let go: 0
    # L2+B from RUN: the tick that first read it damps
    remote.keys = chord_mask("L2+B")
    remote.send()
    assert wait_for(lambda: ctl.joy.keys & remote.keys == remote.keys, 1.0)
    k0 = ctl.tick_index
    assert wait_for(lambda: ctl.mode == Mode.DAMP, 1.0)
    t = transitions_to(ctl, Mode.DAMP)[-1]
    assert t.reason == "damp (gamepad L2+B)" and t.tick <= k0 and t.old == Mode.RUN
    assert wait_for(lambda: ctl.tick_index > t.tick + 1, 1.0)
    assert np.all(ctl.cmd.kp == 0) and np.all(ctl.cmd.kd == ctl.cfg.damping.kd)
    remote.keys = 0
    remote.send()
    assert ctl.counters["faults"] == 0


def sc_remote_in_lowstate_damps(ctl, dds, bridge_pid):
    """joystick.source lowstate: the simulated Go2 packs the remote into every LowState_, as the robot
    does; L2+A stands, L2+B damps, read from wireless_remote only."""
    from maa_core.go2.sim.remote import RemotePublisher, chord_mask
    assert ctl.robot._joy_reader is None  # rt/wirelesscontroller is not read in this mode
    remote = RemotePublisher(ctl.robot.domain, "lo")
    assert remote.wait_matched(5.0), "the bridge's rt/wirelesscontroller reader never matched"
    remote.press(chord_mask("L2+A"), 0.2)
    assert wait_for(lambda: ctl.mode == Mode.STAND_UP, 1.0), ctl.supervisor.reason
    assert transitions_to(ctl, Mode.STAND_UP)[-1].reason == "stand (gamepad L2+A)"
    remote.press(chord_mask("L2+B"), 0.2)
    assert wait_for(lambda: ctl.mode == Mode.DAMP, 1.0)
    assert transitions_to(ctl, Mode.DAMP)[-1].reason == "damp (gamepad L2+B)"
    assert ctl.counters["faults"] == 0


def sc_poisoned_actors_refused_old_keeps_running(ctl, dds, bridge_pid):
    good = ctl.submit_actor(const_blob(0.0, "good")).wait(5)
    assert good.accepted, good.reason
    ctl.enable()
    assert wait_for(lambda: ctl.mode == Mode.RUN, 4.0), ctl.supervisor.reason
    spec = get_spec("go2-wtw")
    nan = const_blob(0.0, "nan")
    nan.params[5] = np.nan
    huge = const_blob(1e3, "huge")
    wrong = const_blob(0.0, "wrong-spec", locomotion_spec(hidden=(64, 32), name="small"))
    module_wrong_out = torch.nn.Sequential(torch.nn.Linear(spec.obs_dim, 5))  # no spec; wrong output width
    results = {g: ctl.submit_actor(a, generation_id=g).wait(5)
               for g, a in (("nan", nan), ("huge", huge), ("wrong-spec", wrong), ("bad-module", module_wrong_out))}
    for g, r in results.items():
        assert not r.accepted, g
    assert "NaN" in results["nan"].reason
    assert "exceeds the bound" in results["huge"].reason
    assert "spec mismatch" in results["wrong-spec"].reason
    assert "outputs shape" in results["bad-module"].reason
    time.sleep(0.3)
    assert ctl.mode == Mode.RUN and ctl.active_generation == "good"
    assert ctl.counters["refused"] == 4 and ctl.counters["faults"] == 0
    # revert on command: back to the previous actor
    assert ctl.submit_actor(const_blob(0.05, "second")).wait(5).accepted
    r = ctl.revert().wait(1)
    assert r.accepted and r.generation_id == "good" and ctl.active_generation == "good"
    assert ctl.mode == Mode.RUN


def sc_100_hot_swaps_land_on_tick_boundaries(ctl, dds, bridge_pid):
    records = []
    ctl.add_tick_listener(records.append)
    assert ctl.submit_actor(const_blob(0.0, "g0")).wait(5).accepted
    ctl.enable()
    assert wait_for(lambda: ctl.mode == Mode.RUN, 4.0), ctl.supervisor.reason
    values = {"g0": 0.0}
    results = []
    for k in range(1, 101):
        v = 0.02 * ((k % 7) - 3)  # distinct, small, on both sides of 0
        gid = f"g{k}"
        values[gid] = v
        r = ctl.submit_actor(const_blob(v, gid)).wait(5)
        assert r.accepted, r.reason
        results.append(r)
    time.sleep(0.2)
    assert ctl.mode == Mode.RUN and ctl.counters["faults"] == 0
    run = [r for r in records if r.mode == "RUN"]
    ticks = [r.tick for r in records]
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), "a tick was skipped"
    # every RUN tick's action is exactly the active actor's constant: no tick mixed two actors
    for r in run:
        assert np.allclose(r.action, values[r.generation_id]), (r.tick, r.generation_id)
    # each swap became active on the tick it reported, and the tick before ran the previous actor
    by_tick = {r.tick: r.generation_id for r in run}
    for prev, r in zip([None] + results[:-1], results):
        assert by_tick[r.active_tick] == r.generation_id
        if prev is not None and r.active_tick - 1 in by_tick:
            assert by_tick[r.active_tick - 1] == prev.generation_id
    lat = np.array([r.latency_s for r in results])
    assert np.median(lat) < 0.1 and lat.max() < 1.0, lat  # timing targets: benchmarks/bench_go2.py


def _reader_child(domain: int, q) -> None:
    """No bridge: this process publishes rt/lowstate and rt/wirelesscontroller itself and checks what
    the polling reads of Go2DdsRobot return."""
    try:
        from unitree_sdk2py.core.channel import ChannelPublisher
        from unitree_sdk2py.idl.default import unitree_go_msg_dds__LowState_
        from unitree_sdk2py.idl.unitree_go.msg.dds_ import LowState_, WirelessController_
        from maa_core.go2.safety import Supervisor
        from maa_core.go2.state import Joystick, LowState
        init_dds(domain, "lo")
        robot = Go2DdsRobot("go2", domain=domain, interface="lo", release_sport_mode=False).open()
        pub, jpub = ChannelPublisher("rt/lowstate", LowState_), ChannelPublisher("rt/wirelesscontroller", WirelessController_)
        pub.Init()
        jpub.Init()
        msg, st, joy = unitree_go_msg_dds__LowState_(), LowState(), Joystick()
        deadline = time.monotonic() + 10
        while not (robot.read_state(st) and robot.read_joystick(joy)):  # discovery
            assert time.monotonic() < deadline, "reader never matched"
            pub.Write(msg)
            jpub.Write(WirelessController_(0.0, 0.0, 0.0, 0.0, 0))
            time.sleep(0.002)
        for _ in range(20):  # polled right after each write, as at 500 Hz
            pub.Write(msg)
            time.sleep(0.002)
            robot.read_state(st)
        # a burst of states between two reads: the read returns the newest, stamped when it arrived
        t0 = time.monotonic()
        for k in range(1, 6):
            msg.tick, msg.motor_state[0].q = k, 0.1 * k
            pub.Write(msg)
        time.sleep(0.04)
        t_read = time.monotonic()
        assert robot.read_state(st) and st.tick == 5 and abs(st.q[0] - 0.5) < 1e-6, (st.tick, st.q[0])
        assert t0 <= st.stamp < t0 + 0.02 and t_read - st.stamp > 0.02, (st.stamp - t0, t_read - st.stamp)
        # nothing new: the same sample with the same receive time, which the supervisor finds stale
        time.sleep(0.03)
        again = LowState()
        assert robot.read_state(again) and again.tick == 5 and again.stamp == st.stamp
        assert "stale lowstate" in Supervisor(load_robot_config("go2")).check(again, time.monotonic())
        # the joystick: a B tap (press, release) between two reads is seen by the next read, once
        b = 1 << 9
        jpub.Write(WirelessController_(0.0, 0.0, 0.0, 0.0, b))
        jpub.Write(WirelessController_(0.5, 0.0, 0.0, 0.0, 0))
        time.sleep(0.04)
        assert robot.read_joystick(joy) and joy.keys & b and joy.lx == 0.5
        assert joy.sample_keys[:joy.n_samples] == [b, 0]  # each sample's keys, for chords
        assert robot.read_joystick(joy) and joy.keys == 0 and joy.n_samples == 1
        robot.close()
        # joystick.source lowstate: the remote inside rt/lowstate (wireless_remote bytes), no other topic read
        import dataclasses
        from maa_core.go2.state import pack_remote
        cfg = load_robot_config("go2")
        cfg = dataclasses.replace(cfg, joystick=dataclasses.replace(cfg.joystick, source="lowstate"))
        robot = Go2DdsRobot(cfg, domain=domain, interface="lo", release_sport_mode=False).open()
        damp = Joystick.mask(["L2", "B"])
        msg.wireless_remote = list(pack_remote(damp, -0.25, 0.5, 0.75, 0.0))
        jpub.Write(WirelessController_(0.0, 0.0, 0.0, 0.0, 0))  # ignored in this mode
        deadline = time.monotonic() + 10
        while not (robot.read_state(st) and robot.read_joystick(joy) and joy.keys == damp):
            assert time.monotonic() < deadline, "the remote in rt/lowstate never arrived"
            pub.Write(msg)
            time.sleep(0.002)
        assert (joy.lx, joy.ly, joy.rx) == (-0.25, 0.5, 0.75) and joy.held(damp) and joy.stamp == st.stamp
        robot.close()
        q.put("ok")
    except BaseException:
        q.put(traceback.format_exc())


def test_polling_reads_return_the_newest_sample_with_its_receive_time():
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_reader_child, args=(201 + (DOMAIN - 201 + 15) % 30, q), daemon=True)
    p.start()
    try:
        out = q.get(timeout=60)
    finally:
        p.join(10)
        if p.is_alive():
            p.kill()
            p.join(5)
    assert out == "ok", out


# -- the tests: each scenario in its own controller process, against a fresh simulated Go2 --------------
def test_stands_up_and_holds(bridge, shared_dir):
    run_scenario(sc_stands_up_and_holds, bridge, shared_dir)


def test_stale_state_damps_within_one_tick(bridge, shared_dir):
    run_scenario(sc_stale_state_damps_within_one_tick, bridge, shared_dir)


def test_estop_service_and_gamepad(bridge, shared_dir):
    run_scenario(sc_estop_service_and_gamepad, bridge, shared_dir)


def test_remote_in_lowstate_damps(bridge, shared_dir):
    run_scenario(sc_remote_in_lowstate_damps, bridge, shared_dir, joystick_source="lowstate")


def test_poisoned_actors_refused_old_keeps_running(bridge, shared_dir):
    run_scenario(sc_poisoned_actors_refused_old_keeps_running, bridge, shared_dir)


def test_100_hot_swaps_land_on_tick_boundaries(bridge, shared_dir):
    run_scenario(sc_100_hot_swaps_land_on_tick_boundaries, bridge, shared_dir)


# real-time loops, DDS and ROS graphs: one pytest-xdist worker runs all such files, in order (see Makefile)
pytestmark = pytest.mark.xdist_group("realtime")
