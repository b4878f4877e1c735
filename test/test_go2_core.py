"""Go2 deployment core without DDS: robot constants, joint-order mapping, the WTW observation and
action mapping, the shared adaptation module, CUDA-pickled parameters on CPU, LowCmd CRC,
supervisor checks, actor validation, and the in-process simulator."""
import io
import math
import pickle
import shutil

import numpy as np
import pytest
import torch
import yaml

from maa_core.actor_io import ActorBlob
from maa_core.errors import MaaError
from maa_core.go2.config import load_robot_config, robot_config_from_dict
from maa_core.resources import package_path
from maa_core.go2.joints import JointMap
from maa_core.go2.safety import Supervisor, tilt_angle
from maa_core.go2.state import LowState, MotorCommand
from maa_core.go2.validation import as_candidate, canary_check
from maa_core.go2.wtw import ActionMapper, ObservationBuilder, WtwConfig, load_parameters_pkl, load_wtw_run
from maa_core.specs import get_spec, locomotion_spec

MOTOR = ["FR_hip", "FR_thigh", "FR_calf", "FL_hip", "FL_thigh", "FL_calf",
         "RR_hip", "RR_thigh", "RR_calf", "RL_hip", "RL_thigh", "RL_calf"]
POLICY = ["FL_hip", "FL_thigh", "FL_calf", "FR_hip", "FR_thigh", "FR_calf",
          "RL_hip", "RL_thigh", "RL_calf", "RR_hip", "RR_thigh", "RR_calf"]


@pytest.fixture(scope="module")
def go2():
    return load_robot_config("go2")


# -- constants -------------------------------------------------------------------------------------
def test_robot_configs_resolve_per_joint(go2):
    go1 = load_robot_config("go1")
    assert go2.motor_joints == tuple(MOTOR) and go2.policy_joints == tuple(POLICY)
    d = dict(zip(MOTOR, go2.default_angles))
    assert d["FL_hip"] == 0.1 and d["FR_hip"] == -0.1 and d["FL_thigh"] == 0.8 and d["RL_thigh"] == 1.0 and d["RR_calf"] == -1.5
    lim = dict(zip(MOTOR, go2.torque_limit))
    assert lim["FR_calf"] == 45.43 and lim["RL_hip"] == 23.7
    assert dict(zip(MOTOR, go1.torque_limit))["FR_calf"] == 35.55
    assert go2.control.rate_hz == 50 and go2.safety.stale_state_s == 0.05


@pytest.mark.parametrize("edit, msg", [
    (lambda d: d.update(bogus=1), "unknown key"),
    (lambda d: d.pop("default_angles"), "missing key 'default_angles'"),
    (lambda d: d["control"].update(kp="stiff"), "control.kp: expected a number"),
    (lambda d: d["stand_pose"].update(calf=-3.5), "stand_pose outside the joint limits"),
    (lambda d: d.update(motor_joints=d["motor_joints"][:11]), "must list the 12 joints"),
    (lambda d: d["joystick"].update(damp_keys=["L2", "Z"]), "joystick.damp_keys: unknown key 'Z'"),
    (lambda d: d["joystick"].update(stand_keys=["L2", "B", "A"]), "joystick.stand_keys .* contains the damp chord"),
    (lambda d: d["joystick"].update(estop_keys=["B"]), r"joystick: unknown key\(s\) \['estop_keys'\]"),
    (lambda d: d["joystick"].update(source="bluetooth"), r"joystick.source 'bluetooth': expected one of wirelesscontroller, lowstate"),
])
def test_malformed_robot_config_is_one_clear_line(edit, msg):
    d = yaml.safe_load(package_path("config", "go2_robot.yaml").read_text())
    edit(d)
    with pytest.raises(MaaError, match=msg) as e:
        robot_config_from_dict(d, "bad.yaml")
    assert "\n" not in str(e.value) and str(e.value).startswith("bad.yaml")


def test_gamepad_chords_sticks_and_non_finite_samples(go2):
    """The remote's chords (edges for stand/run, held for damp) and the stick takeover of the velocity."""
    from maa_core.go2.gamepad import Gamepad, Press
    from maa_core.go2.state import Joystick
    g, j = Gamepad(go2.joystick, go2.command_limits), Joystick()
    L2, A, B, START = (1 << Joystick.KEY_BITS[k] for k in ("L2", "A", "B", "start"))

    def tick(keys=0, t=1.0, **sticks):
        j.keys, j.stamp = keys, t
        j.lx, j.ly, j.rx, j.ry = (sticks.get(k, 0.0) for k in ("lx", "ly", "rx", "ry"))
        return g.update(j, t)
    assert tick() == Press.NONE and g.velocity is None  # centred sticks leave cmd_vel alone
    assert tick(L2 | A) == Press.STAND and tick(L2 | A) == Press.NONE  # once per press
    assert tick(B) == Press.NONE and tick(L2 | B) == Press.DAMP and tick(L2 | B) == Press.DAMP  # held: every tick
    assert tick(L2 | A | B) == Press.DAMP  # damp wins over a chord pressed with it
    assert tick(START) == Press.RUN and tick(0) == Press.NONE
    # chords are matched per sample: L2+A, released, then B, all within one tick, is a stand, not a damp
    j.sample_keys[:3], j.n_samples = [L2 | A, 0, B], 3
    assert g.update(j, 1.0) == Press.STAND
    j.n_samples = 0
    # sticks: ly forward -> +vx, lx right -> -vy, rx right -> -yaw; full deflection = the limit
    tick(ly=1.0, lx=-1.0, rx=1.0)
    assert g.velocity == (go2.command_limits["vx"][1], -go2.command_limits["vy"][0], go2.command_limits["yaw_rate"][0])
    tick(ly=-0.5)
    assert g.velocity[0] < 0 and g.velocity[1:] == (0.0, 0.0)
    assert tick(ly=go2.joystick.stick_deadzone) == Press.NONE and g.velocity == (0.0, 0.0, 0.0)  # let go: 0 once
    tick()
    assert g.velocity is None
    tick(ly=0.5, t=2.0)
    assert g.update(j, 2.0 + go2.joystick.stick_timeout_s + 0.1) == Press.NONE and g.velocity == (0.0, 0.0, 0.0)  # silent remote
    # a NaN sample: sticks and chords ignored, counted once per sample, its damp chord still damps
    assert tick(L2 | A, t=3.0, lx=float("nan")) == Press.NONE and g.velocity is None and g.rejected == 1
    assert g.update(j, 3.02) == Press.NONE and g.rejected == 1  # the same sample handed again
    assert tick(L2 | B, t=3.1, ry=float("inf")) == Press.DAMP and g.rejected == 2


# -- joint order -----------------------------------------------------------------------------------
def test_joint_order_mapping_is_explicit_and_round_trips(go2):
    jm = JointMap.from_config(go2)
    # SDK order FR, FL, RR, RL  <->  WTW order FL, FR, RL, RR: legs swap in pairs
    assert jm.policy_from_motor.tolist() == [3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8]
    assert jm.policy_hips.tolist() == [0, 3, 6, 9]
    tagged = np.arange(12.0) + 100  # motor slot i carries 100 + i
    p = jm.to_policy(tagged)
    for k, name in enumerate(POLICY):
        assert p[k] == 100 + MOTOR.index(name)
    x = np.random.default_rng(0).normal(size=(5, 12))
    assert np.array_equal(jm.to_motor(jm.to_policy(x)), x)
    assert np.array_equal(jm.to_policy(jm.to_motor(x)), x)
    out = np.empty(12)
    assert jm.to_policy(tagged, out) is out


# -- observation and actions -----------------------------------------------------------------------
def test_observation_matches_hand_computed_example(go2):
    jm = JointMap.from_config(go2)
    wtw = WtwConfig()
    b = ObservationBuilder(wtw, jm.to_policy(go2.default_angles), go2.gait_command)
    roll = 0.3
    quat = np.array([math.cos(roll / 2), math.sin(roll / 2), 0.0, 0.0])   # body rolled 0.3 rad about x
    q_motor = go2.default_angles + 0.01 * np.arange(12)                    # motor slot i is 0.01 i off default
    dq_motor = np.arange(12.0) - 6.0
    b.set_velocity(0.5, -0.2, 0.3)
    b.record_action(np.full(12, 0.5))                  # executed two steps ago
    b.record_action(np.r_[12.0, -12.0, np.zeros(10)])  # executed last step (clipped to +-10)
    b.step_clock()
    o = b.build(quat, jm.to_policy(q_motor), jm.to_policy(dq_motor)).astype(np.float64)

    expected = np.zeros(70)
    expected[0:3] = [0.0, -math.sin(roll), -math.cos(roll)]               # gravity in the body frame
    expected[3:6] = [0.5 * 2.0, -0.2 * 2.0, 0.3 * 0.25]                  # lin_vel 2.0, ang_vel 0.25
    expected[6:18] = [0.0 * 2.0, 3.0, 0.5, 0.0, 0.0, 0.5, 0.08 * 0.15, 0.0, 0.0, 0.25, 0.40, 0.0]
    # joints in WTW order FL, FR, RL, RR = motor slots 3,4,5, 0,1,2, 9,10,11, 6,7,8
    slots = [3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8]
    expected[18:30] = [0.01 * s for s in slots]
    expected[30:42] = [(s - 6.0) * 0.05 for s in slots]
    expected[42:54] = [10.0, -10.0] + [0.0] * 10
    expected[54:66] = 0.5
    gi = 0.02 * 3.0                                                        # one 0.02 s step at 3 Hz
    expected[66:70] = [math.sin(2 * math.pi * f) for f in (gi + 0.5, gi, gi, gi + 0.5)]
    np.testing.assert_allclose(o, expected, atol=1e-6)

    b.push()
    assert np.array_equal(b.history[-1], b.obs) and not b.history[:-1].any()  # newest last, oldest first
    b.push()
    assert np.array_equal(b.history[-2], b.history[-1])
    assert np.shares_memory(b.history, b.input) and b.input.shape == (2102,)


def test_actions_map_to_targets_with_scale_hip_reduction_and_defaults(go2):
    jm = JointMap.from_config(go2)
    defaults_p = jm.to_policy(go2.default_angles)
    m = ActionMapper(WtwConfig(), defaults_p, jm.policy_hips)
    t = m.targets(np.ones(12), np.zeros(12))
    expected = defaults_p + 0.25
    expected[[0, 3, 6, 9]] = defaults_p[[0, 3, 6, 9]] + 0.25 * 0.5
    np.testing.assert_allclose(t, expected)
    motor = jm.to_motor(t)
    assert motor[MOTOR.index("FR_hip")] == pytest.approx(-0.1 + 0.125)
    assert motor[MOTOR.index("RL_thigh")] == pytest.approx(1.0 + 0.25)
    np.testing.assert_allclose(m.targets(np.full(12, 50.0), np.zeros(12)), m.targets(np.full(12, 10.0), np.zeros(12)))


def test_shared_adaptation_module_shapes(shared_dir):
    run = load_wtw_run(shared_dir / "wtw")
    assert run.config.history_dim == 2100 and run.config.actor_in_dim == 2102 and run.body is None
    assert run.config.action_scale == 0.25 and run.config.hip_scale_reduction == 0.5 and run.config.dt == pytest.approx(0.02)
    with torch.inference_mode():
        out = run.adaptation(torch.zeros(4, 2100))
    assert tuple(out.shape) == (4, 2) and torch.isfinite(out).all()
    assert get_spec("go2-wtw").obs_dim == run.config.actor_in_dim


def _cuda_tensor_pickle(cfg: dict) -> bytes:
    """Bytes shaped like WTW's parameters.pkl: tensors pickled as torch.load payloads tagged 'cuda:0'."""
    def cuda_bytes(t):
        buf = io.BytesIO()
        torch.save(t, buf, _use_new_zipfile_serialization=False)
        raw = buf.getvalue()
        cpu, cuda = b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0"
        assert raw.count(cpu) == 1
        return raw.replace(cpu, cuda)

    class P(pickle.Pickler):
        def reducer_override(self, obj):
            if torch.is_tensor(obj):
                return torch.storage._load_from_bytes, (cuda_bytes(obj),)
            return NotImplemented
    buf = io.BytesIO()
    P(buf, protocol=2).dump({"Cfg": cfg})
    return buf.getvalue()


def test_parameters_pkl_with_cuda_tensors_loads_on_cpu(shared_dir, tmp_path):
    import json
    cfg = json.loads((shared_dir / "wtw" / "wtw_go1_pretrain_config.json").read_text())
    cfg["control"]["action_scale"] = torch.tensor(0.25)
    data = _cuda_tensor_pickle(cfg)
    if not torch.cuda.is_available():  # the plain loader is what fails on a CPU-only machine
        with pytest.raises(RuntimeError):
            pickle.loads(data)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "parameters.pkl").write_bytes(data)
    shutil.copy(shared_dir / "wtw" / "adaptation_module_latest.jit", tmp_path / "checkpoints")
    assert load_parameters_pkl(tmp_path / "parameters.pkl")["control"]["action_scale"] == pytest.approx(0.25)
    run = load_wtw_run(tmp_path)
    assert run.config.action_scale == pytest.approx(0.25) and run.config.num_obs == 70
    (tmp_path / "parameters.pkl").write_bytes(b"not a pickle")
    with pytest.raises(MaaError, match="cannot unpickle"):
        load_wtw_run(tmp_path)


# -- LowCmd ----------------------------------------------------------------------------------------
def test_lowcmd_crc_verifies_with_sdk_crc(go2):
    from unitree_sdk2py.idl.unitree_go.msg.dds_ import LowCmd_
    from unitree_sdk2py.utils.crc import CRC
    from maa_core.go2.dds import fill_lowcmd, new_lowcmd
    cmd = MotorCommand()
    cmd.set_pd(go2.stand_pose, 20.0, 0.5)
    msg = new_lowcmd(go2)
    fill_lowcmd(msg, cmd, go2.control.motor_mode, CRC())
    received = LowCmd_.deserialize(msg.serialize())  # what the robot gets off the wire
    assert received.crc == CRC().Crc(received) != 0
    assert list(received.head) == [0xFE, 0xEF] and received.level_flag == 0xFF
    assert [m.mode for m in received.motor_cmd[:12]] == [1] * 12 and received.motor_cmd[12].mode == 0
    assert received.motor_cmd[0].kp == pytest.approx(20.0) and received.motor_cmd[3].q == pytest.approx(0.1)
    received.motor_cmd[0].q += 0.1  # any change breaks the CRC
    assert CRC().Crc(received) != received.crc


def test_sim_bridge_drops_commands_with_bad_crc(go2):
    from unitree_sdk2py.utils.crc import CRC
    from maa_core.go2.dds import fill_lowcmd, new_lowcmd
    from maa_core.go2.sim.bridge import SimBridge
    b = SimBridge(go2)
    b._crc = CRC()
    cmd = MotorCommand()
    cmd.set_pd(go2.stand_pose, 20.0, 0.5)
    msg = new_lowcmd(go2)
    fill_lowcmd(msg, cmd, 1, CRC())
    b._on_lowcmd(msg)
    assert b.stats["cmds"] == 1 and np.allclose(b._cmd.q, go2.stand_pose)
    msg.motor_cmd[0].kp = 500.0
    b._on_lowcmd(msg)
    assert b.stats["bad_crc"] == 1 and b._cmd.kp[0] == 20.0


# -- supervisor and validation ---------------------------------------------------------------------
def test_supervisor_fault_checks(go2):
    sup = Supervisor(go2)
    st = LowState()
    st.q[:] = go2.stand_pose
    st.stamp = 10.0
    assert sup.check(st, 10.02) is None
    assert "stale lowstate" in sup.check(st, 10.06)
    a = 0.9
    st.quat[:] = [math.cos(a / 2), 0.0, math.sin(a / 2), 0.0]
    assert tilt_angle(st.quat) == pytest.approx(a) and "body tilt" in sup.check(st, 10.0)
    st.quat[:] = [1, 0, 0, 0]
    st.q[2] = go2.joint_lower[2] - 0.2
    assert "joint limit: FR_calf" in sup.check(st, 10.0)
    st.q[:] = go2.stand_pose
    st.tau[5] = go2.torque_limit[5]
    for _ in range(go2.safety.torque_saturation_ticks - 1):
        assert sup.check(st, 10.0) is None
    assert "torque limit: FL_calf" in sup.check(st, 10.0)


def test_validation_refuses_poisoned_actors():
    spec = get_spec("go2-wtw")
    x = np.random.default_rng(0).normal(size=(8, spec.obs_dim)).astype(np.float32) * 0.1
    params = np.zeros(spec.num_params, np.float32)
    good = as_candidate(ActorBlob(spec, params.copy(), "good"), spec)
    assert canary_check(good, x, 12, 10.0, 50.0)["max_abs_action"] == 0.0
    nan = params.copy()
    nan[0] = np.nan
    with pytest.raises(MaaError, match="NaN"):
        as_candidate(ActorBlob(spec, nan, "nan"), spec)
    huge = params.copy()
    huge[-12:] = 1e4
    with pytest.raises(MaaError, match="exceeds the bound"):
        canary_check(as_candidate(ActorBlob(spec, huge, "huge"), spec), x, 12, 10.0, 50.0)
    small = locomotion_spec(hidden=(32,), name="small")
    with pytest.raises(MaaError, match="spec mismatch"):
        as_candidate(ActorBlob(small, np.zeros(small.num_params, np.float32)), spec)
    with pytest.raises(MaaError, match="expected an ActorBlob"):
        as_candidate("actor.pt", spec)
    with pytest.raises(MaaError, match="forward pass failed"):
        canary_check(as_candidate(torch.nn.Linear(10, 12), spec), x, 12, 10.0, 50.0)


# -- simulator in-process --------------------------------------------------------------------------
def test_sim_model_stands_up_in_process(go2):
    from maa_core.go2.sim.env import Go2Sim
    sim = Go2Sim(go2)
    st = sim.read(LowState())
    assert sim.base_position()[2] < 0.15 and st.accel[2] == pytest.approx(9.81, abs=0.5)
    q0, cmd = st.q.copy(), MotorCommand()
    n = int(go2.stand.duration_s / sim.dt)
    for i in range(n):
        a = (i + 1) / n
        cmd.set_pd((1 - a) * q0 + a * go2.stand_pose, go2.stand.kp, go2.stand.kd)
        sim.apply(cmd)
        sim.step()
    sim.step(int(1.0 / sim.dt))
    sim.read(st)
    assert 0.24 < sim.base_position()[2] < 0.36
    assert st.foot_force.min() > 20 and st.foot_force.sum() == pytest.approx(15.2 * 9.81, rel=0.1)
    assert np.all(np.abs(st.tau) <= go2.torque_limit + 1e-6) and st.tick == int(sim.time * 1000)
    cmd.set_damping(go2.damping.kd)
    sim.apply(cmd)
    sim.step(int(1.5 / sim.dt))
    assert sim.base_position()[2] < 0.15  # damping lets it sit down


def test_wtw_sim_env_reuses_the_controller_observation(go2):
    from maa_core.go2.sim.env import WtwSimEnv
    env = WtwSimEnv(go2)
    obs = env.reset("stand")
    assert obs.shape == (70,) and obs[2] == pytest.approx(-1.0, abs=0.02)
    for _ in range(50):
        obs = env.step(np.zeros(12))
    # zero action at the policy gains (kp 20) sags under the 15 kg body but stays up
    assert 0.2 < env.sim.base_position()[2] < 0.36 and np.abs(obs[18:30]).max() < 0.4
    assert env.history.shape == (30, 70) and np.array_equal(env.history[-1], obs)


def test_render_png_when_gl_available(go2, tmp_path):
    from maa_core.go2.sim.env import Go2Sim
    sim = Go2Sim(go2)
    try:
        img = sim.render(160, 120)
    except MaaError as e:
        pytest.skip(str(e))
    finally:
        pass
    sim.close()
    assert img.shape == (120, 160, 3) and img.std() > 5


def test_numpy_tick_path_matches_torch_and_splits_the_history(shared_dir, go2):
    """The controller's tick runs plain MLPs as numpy with the older history rows precomputed after the
    previous command; over a stream of observations it must give the torch modules' actions."""
    from maa_core.go2.inference import HistoryMlp, mlp_layers
    from maa_core.go2.wtw import PolicyRunner
    run = load_wtw_run(shared_dir / "wtw")
    assert [l.weight.shape for l in mlp_layers(run.adaptation)] == [(256, 2100), (128, 256), (2, 128)]
    assert mlp_layers(torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Softplus())) is None  # unknown op -> torch
    spec = locomotion_spec(hidden=(64, 32))
    torch.manual_seed(0)
    actor = spec.build().eval()
    w = run.config
    b = ObservationBuilder(w, np.zeros(12))
    runner = PolicyRunner(b, run.adaptation)
    fast = runner.compile(actor)
    assert isinstance(fast, HistoryMlp) and runner.fast_adaptation is not None
    rng = np.random.default_rng(0)
    prepared_ticks = 0
    for t in range(40):
        if t == 20:
            b.reset()  # a reset invalidates the precomputed rows
        b.obs[:] = rng.standard_normal(w.num_obs)
        b.push()
        prepared_ticks += runner._prepared()
        a = runner.run(actor, fast).copy()
        with torch.inference_mode():
            x = torch.from_numpy(b.input.copy()).view(1, -1)
            x[:, w.history_dim:] = run.adaptation(x[:, :w.history_dim])
            ref = actor(x).numpy()[0]
        assert np.allclose(a, ref, rtol=1e-4, atol=1e-5), (t, np.abs(a - ref).max())
        runner.prepare(fast)
    assert prepared_ticks == 38  # all but the first tick and the one after the reset


# -- DDS reader helpers (no DDS runtime: CDR bytes and clocks only) ---------------------------------
def test_lowstate_parser_matches_the_idl_deserializer():
    """The tick parses rt/lowstate's raw CDR bytes at fixed offsets; it must agree with the IDL
    deserializer field for field, and refuse bytes of another size or encoding (-> deserializer)."""
    from unitree_sdk2py.idl.default import unitree_go_msg_dds__LowState_
    from unitree_sdk2py.idl.unitree_go.msg.dds_ import LowState_
    from maa_core.go2.dds import LowStateParser, lowstate_to
    parser = LowStateParser()
    rng = np.random.default_rng(0)
    f = lambda n=None: (float(np.float32(rng.normal())) if n is None else [float(np.float32(v)) for v in rng.normal(size=n)])
    for _ in range(5):
        m = unitree_go_msg_dds__LowState_()
        for ms in m.motor_state:
            ms.mode, ms.q, ms.dq, ms.ddq, ms.tau_est, ms.q_raw = int(rng.integers(256)), f(), f(), f(), f(), f()
            ms.temperature, ms.lost = int(rng.integers(256)), int(rng.integers(2 ** 32))
        imu = m.imu_state
        imu.quaternion, imu.gyroscope, imu.accelerometer, imu.rpy = f(4), f(3), f(3), f(3)
        m.foot_force = [int(v) for v in rng.integers(-2 ** 15, 2 ** 15, 4)]
        m.foot_force_est = [int(v) for v in rng.integers(-2 ** 15, 2 ** 15, 4)]
        m.tick, m.crc = int(rng.integers(2 ** 32)), int(rng.integers(2 ** 32))
        m.wireless_remote = [int(v) for v in rng.integers(0, 256, 40)]
        data = m.serialize()
        fast, ref = LowState(), LowState()
        assert parser.parse(data, fast)
        lowstate_to(LowState_.deserialize(data), ref, 0.0)
        for k in ("q", "dq", "tau", "quat", "gyro", "accel", "foot_force"):
            assert np.array_equal(getattr(fast, k), getattr(ref, k)), k
        assert fast.tick == ref.tick == m.tick
    assert not parser.parse(data[:-4], fast)
    assert not parser.parse(b"\x00\x00" + data[2:], fast)  # big-endian CDR


def test_arrival_clock_places_polled_samples_at_their_receive_time():
    """A 500 Hz stream polled once per 20 ms tick: the newest sample's stamp is its receive time (not
    the poll's), also when the poll is late; a stopped stream keeps the last sample's receive time;
    source clocks need not be synchronized, and a source clock step never makes a fresh sample look
    older than the previous poll."""
    from maa_core.go2.dds import ArrivalClock
    c, lat, skew = ArrivalClock(window_s=1.0), 0.001, -5000.0  # source clock = our clock + skew
    prev = -np.inf

    def poll(t, stop_at=np.inf):
        nonlocal prev
        sent = min(np.floor((t - lat) / 0.002) * 0.002, stop_at)  # newest sample received by t
        stamp = c.stamp(sent + skew, t, prev)
        prev = t
        return stamp, sent + lat

    for k in range(1, 100):
        stamp, arrived = poll(0.02 * k + 0.0013 * (k % 3))
        if k > 3:
            assert abs(stamp - arrived) < 0.5e-3, k
    stamp, arrived = poll(2.0 + 0.045)  # the loop ran 45 ms late: the state is still fresh
    assert abs(stamp - arrived) < 0.5e-3 and 2.045 - stamp < 0.003
    stamp, arrived = poll(2.06, stop_at=2.05)  # the stream stopped at 2.05: 9 ms old at this poll
    assert abs(stamp - arrived) < 0.5e-3 and stamp <= 2.052
    skew -= 10.0  # source clock stepped back 10 s: clamped to the poll window
    stamp, _ = poll(2.08)
    assert 2.06 <= stamp <= 2.08
    skew += 20.0  # stepped forward: no older than the poll window either
    stamp, arrived = poll(2.10)
    assert 2.08 <= stamp <= 2.10 and abs(stamp - arrived) < 0.003


def test_numpy_path_is_checked_against_torch_and_timed(shared_dir):
    """The validator's numpy tick path: used only if it reproduces the canary batch's torch outputs,
    and it is the pass that must fit the budget; a blob from bytes is refused on NaN as before."""
    from maa_core.go2.validation import check_numpy_path
    from maa_core.go2.wtw import PolicyRunner
    run = load_wtw_run(shared_dir / "wtw")
    spec = get_spec("go2-wtw")
    params = (np.random.default_rng(1).normal(size=spec.num_params) * 0.01).astype(np.float32)
    c = as_candidate(ActorBlob(spec, params, "a").to_bytes(), spec)
    x = np.random.default_rng(0).normal(size=(8, spec.obs_dim)).astype(np.float32) * 0.1
    d = canary_check(c, x, 12, 10.0, 50.0, time_torch=False)
    assert "inference_ms" not in d and c.canary_outputs.shape == (8, 12)
    fast = PolicyRunner(ObservationBuilder(run.config, np.zeros(12)), run.adaptation).compile(c.module)
    ok = check_numpy_path(fast, x, c.canary_outputs, 50.0)
    assert ok["inference_path"] == "numpy" and 0 < ok["inference_ms"] < 50.0
    with pytest.raises(MaaError, match="forward pass takes"):
        check_numpy_path(fast, x, c.canary_outputs, 1e-6)
    wrong = c.canary_outputs.copy()
    wrong[1, 3] += 0.01
    assert check_numpy_path(fast, x, wrong, 50.0) is None  # disagrees -> the caller runs torch
    nan = params.copy()
    nan[7] = np.nan
    with pytest.raises(MaaError, match="NaN"):
        as_candidate(ActorBlob(spec, nan, "nan").to_bytes(), spec)


def test_state_poll_takes_the_newest_valid_sample_and_falls_back_to_the_deserializer():
    """Go2DdsRobot.read_state over a fake reader: the newest valid sample of a take wins, a read with
    nothing new keeps the previous sample and its receive time, a sample the fixed-offset parser does
    not know goes through the IDL deserializer."""
    from types import SimpleNamespace
    from unitree_sdk2py.idl.default import unitree_go_msg_dds__LowState_
    from unitree_sdk2py.idl.unitree_go.msg.dds_ import LowState_
    from maa_core.go2.dds import Go2DdsRobot, LowStateParser

    def sample(tick, src):
        m = unitree_go_msg_dds__LowState_()
        m.tick, m.motor_state[0].q = tick, 0.1 * tick
        return m.serialize(), SimpleNamespace(valid_data=True, source_timestamp=int(src * 1e9))

    class Reader:
        q = []

        def take_raw(self):
            out, self.q = self.q, []
            return out

        def deserialize(self, data):
            return LowState_.deserialize(data)

    now = [100.0]
    robot = Go2DdsRobot("go2", clock=lambda: now[0])
    robot._parser, robot._state_reader = LowStateParser(), Reader()
    st = LowState()
    assert not robot.read_state(st)
    robot._state_reader.q = [sample(1, 5.000), sample(2, 5.002), (b"", SimpleNamespace(valid_data=False, source_timestamp=0))]
    now[0] = 100.01
    assert robot.read_state(st) and st.tick == 2 and st.q[0] == pytest.approx(0.2) and st.stamp == 100.01
    now[0] = 100.03
    again = LowState()
    assert robot.read_state(again) and again.tick == 2 and again.stamp == st.stamp
    data, info = sample(3, 5.022)
    robot._state_reader.q = [(data + b"\0" * 8, info)]  # not the known size: IDL deserializer
    now[0] = 100.05
    assert robot.read_state(st) and st.tick == 3 and st.q[0] == pytest.approx(0.3) and robot.states_deserialized == 1
    assert robot.states_received == 2


# one pytest-xdist worker runs this file: its module fixtures are built once
pytestmark = pytest.mark.xdist_group("test_go2_core")
