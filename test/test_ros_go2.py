"""Go2 controller node in the launched graph (backend sim: MuJoCo Go2 behind a loopback DDS bridge):
actor blobs in (malformed ones reported, never fatal), hot-swap, executed steps out, revert,
and a generated actor reaching the controller. The graph runs with signatures required: the
generator signs with the fixture's key, the controller trusts only that key (maa_core/signing.py)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from maa_core import prompts
from maa_core.actor_io import ActorBlob
from maa_core.specs import get_spec
from maa_core.trajectory import Trajectory

REPO = Path(__file__).resolve().parents[1]
ROS_DOMAIN = 182 + os.getpid() % 18      # ROS (Fast DDS) domain of this module (test_ros_graph: 102..181)
# Unitree (cyclone) domain of the simulated robot: shares the RTPS port space with ROS domains, so
# it stays clear of conftest's ROS range (30..200) and the Go2 tests' cyclone range (201..230)
DDS_DOMAIN = 5 + os.getpid() % 20
ERROR = b"\x02"


def const_blob(value, gid, spec="go2-wtw"):
    spec = get_spec(spec)
    params = np.zeros(spec.num_params, np.float32)
    params[-spec.act_dim:] = value  # action-head bias: the same action whatever the input
    return ActorBlob(spec, params, generation_id=gid, prompt_id="test")


@pytest.fixture(scope="module")
def go2_graph(tmp_path_factory, shared_dir):
    from maa_core.serving.untrained import untrained_generator
    from maa_core.signing import generate_key_pair
    from maa_ros.client import GraphClient
    wtw = shared_dir / "wtw"
    if not (wtw / "adaptation_module_latest.jit").is_file():
        pytest.skip(f"{wtw}: no walk-these-ways run")
    d = tmp_path_factory.mktemp("maa_ros_go2")
    gen = untrained_generator("go2-wtw", folder=d / "gen")
    priv, pub, signer = generate_key_pair(d / "keys")
    _, _, other = generate_key_pair(d / "keys", "other")  # a well-formed key the controller does not trust
    cfg = yaml.safe_load((REPO / "config" / "go2.yaml").read_text())
    cfg["maa_generator"]["ros__parameters"].update(num_candidates=2, screen=False,  # untrained: let the controller judge
                                                   signing_key=str(priv))
    cfg["maa_go2_controller"]["ros__parameters"].update(dds_domain=DDS_DOMAIN, max_actor_bytes=6_000_000,
                                                        require_signature="true", trusted_keys=[str(pub)])
    (d / "params.yaml").write_text(yaml.safe_dump(cfg))
    old = os.environ.get("ROS_DOMAIN_ID")
    os.environ["ROS_DOMAIN_ID"] = str(ROS_DOMAIN)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    log = d / "launch.log"
    proc = subprocess.Popen([sys.executable, "-m", "maa_ros.launcher", "launch", "go2_generate", "backend:=sim",
                             f"wtw_run_dir:={wtw}", f"generator_dir:={d / 'gen'}", f"config:={d / 'params.yaml'}",
                             "recorder:=false"], env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=REPO)
    client = GraphClient("maa_test_go2", subscribe_actor=False)
    try:
        from std_msgs.msg import String, UInt8MultiArray
        from maa_ros import qos
        gens = []
        client.node.create_subscription(String, "maa/go2/active_generation", lambda m: gens.append(m.data), qos.LATCHED)
        client.subscribe_prompts("maa/go2/steps", qos.STATE)
        actor_pub = client.node.create_publisher(UInt8MultiArray, "maa/actor", qos.ACTOR)
        st = client.wait_diagnostic(lambda s: (s.name == "maa_ros/maa_go2_controller" and "controller" in s.message)
                                    or proc.poll() is not None, 90)
        assert st is not None and "controller running" in st.message, log.read_text()[-3000:]
        assert "signatures required" in st.message, st.message
        yield {"client": client, "gens": gens, "actor_pub": actor_pub, "log": log, "gen_spec": gen.spec,
               "signer": signer, "other": other,
               "gen_dims": (gen.obs_dim, gen.act_dim), "T": gen.prompt_length}
        proc.send_signal(signal.SIGTERM)  # the graph test covers SIGINT
        assert proc.wait(40) == 0, log.read_text()[-3000:]
        assert "stopped (SIGTERM)" in log.read_text() and "still running" not in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        client.close()
        if old is None:
            os.environ.pop("ROS_DOMAIN_ID")
        else:
            os.environ["ROS_DOMAIN_ID"] = old


def controller_status(c, pred, timeout=30, since=0):
    def p(s):
        return s.name == "maa_ros/maa_go2_controller" and pred(s)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with c.lock:
            hits = [s for s in c.diagnostics[since:] if p(s)]
        if hits:
            return hits[0]
        time.sleep(0.05)
    return None


def publish_actor(g, data: bytes, signature: str | None = None):
    """signature None: signed with the key the controller trusts; "" unsigned; else that line."""
    from maa_ros.messages import actor_to_msg
    g["actor_pub"].publish(actor_to_msg(data, g["signer"].sign(data).to_text() if signature is None else signature))


def malformed_blobs():
    good = const_blob(0.1, "bad").to_bytes()
    nan = bytearray(good)
    nan[-4:] = np.array([np.nan], np.float32).tobytes()
    spec = get_spec("go2-wtw")
    wrong_shape = ActorBlob(spec, np.zeros(10, np.float32), "bad").to_bytes()
    return {
        "truncated": (good[:-1000], "not a valid safetensors"),
        "nan": (bytes(nan), "NaN|checksum"),
        "wrong spec": (const_blob(0.1, "bad", "metaworld-sac").to_bytes(), "policy spec mismatch"),
        "oversized": (good + b"\x00" * 1_100_000, "exceeds the limit"),
        "wrong shape": (wrong_shape, "params have shape"),
    }


def test_malformed_actor_blobs_are_reported_and_never_fatal(go2_graph):
    g, c = go2_graph, go2_graph["client"]
    end = time.monotonic() + 20
    while time.monotonic() < end and g["actor_pub"].get_subscription_count() < 1:  # the controller
        time.sleep(0.05)
    for name, (data, words) in malformed_blobs().items():
        since = len(c.diagnostics)
        publish_actor(g, data)
        st = controller_status(c, lambda s: s.level == ERROR and any(w in s.message for w in words.split("|")), 30, since)
        assert st is not None, (name, [s.message for s in c.diagnostics[since:]], g["log"].read_text()[-2000:])
        assert "\n" not in st.message
    # the node is alive and swaps a good actor
    publish_actor(g, const_blob(0.05, "good-1").to_bytes())
    assert controller_status(c, lambda s: "good-1 active" in s.message, 30) is not None
    end = time.monotonic() + 10
    while time.monotonic() < end and (not g["gens"] or g["gens"][-1] != "good-1"):
        time.sleep(0.05)
    assert g["gens"][-1] == "good-1"


def status_value(st, key):
    return next((kv.value for kv in st.values if kv.key == key), None)


def test_enable_runs_the_actor_and_publishes_executed_steps_then_revert(go2_graph):
    g, c = go2_graph, go2_graph["client"]
    publish_actor(g, const_blob(0.0, "good-2").to_bytes())
    assert controller_status(c, lambda s: "good-2 active" in s.message, 30) is not None
    r = c.set_bool("/maa_go2_controller/enable", True)
    assert r.success, r.message
    end = time.monotonic() + 30
    while time.monotonic() < end and len(c.prompts["maa/go2/steps"]) < 5:
        time.sleep(0.1)
    with c.lock:
        steps = [prompts.from_message(m) for m in c.prompts["maa/go2/steps"]]
    assert len(steps) >= 5, g["log"].read_text()[-2000:]
    assert steps[-1].states.shape == (1, 70) and steps[-1].actions.shape == (1, 12)
    assert np.allclose(steps[-1].actions, 0.0)  # the active const actor's action
    r = c.call("/maa_go2_controller/revert")
    assert r.success and "good-1" in r.message, r.message
    end = time.monotonic() + 10
    while time.monotonic() < end and g["gens"][-1] != "good-1":
        time.sleep(0.05)
    assert g["gens"][-1] == "good-1"
    assert c.set_bool("/maa_go2_controller/enable", False).success


def test_generated_actor_reaches_the_controller(go2_graph):
    g, c = go2_graph, go2_graph["client"]
    obs, act = g["gen_dims"]
    r = np.random.default_rng(0)
    t = Trajectory(r.normal(size=(g["T"], obs)) * 0.1, r.normal(size=(g["T"], act)) * 0.1)
    since = len(c.diagnostics)
    assert c.wait_for_subscribers(1, 20)
    c.publish_prompt(t)
    gen_st = c.wait_diagnostic(lambda s: s.name == "maa_ros/maa_generator" and "published actor" in s.message
                               and prompts.prompt_id(t) in s.message, 60)
    assert gen_st is not None, g["log"].read_text()[-2000:]
    gid = gen_st.message.split()[2]
    assert status_value(gen_st, "signed") == "yes" and status_value(gen_st, "signing_key_id") == g["signer"].key_id
    # the controller decides on it: swapped in, or refused by its canary check (an untrained generator)
    st = controller_status(c, lambda s: gid in s.message and ("active" in s.message or "refused" in s.message), 60, since)
    assert st is not None, g["log"].read_text()[-2000:]


def test_only_actors_signed_by_a_trusted_key_are_swapped_in(go2_graph):
    g, c = go2_graph, go2_graph["client"]
    good = const_blob(0.03, "signed-1").to_bytes()
    forged = const_blob(0.04, "forged").to_bytes()
    cases = {  # kind -> (blob, signature line, words of the refusal)
        "unsigned": (forged, "", "actor refused: unsigned"),
        "unknown_key": (forged, g["other"].sign(forged).to_text(), "signed by unknown key " + g["other"].key_id),
        "bad_signature": (forged, g["signer"].sign(good).to_text(), "bad signature"),  # a trusted signature of other bytes
    }
    for kind, (data, line, words) in cases.items():
        since = len(c.diagnostics)
        publish_actor(g, data, line)
        st = controller_status(c, lambda s: s.level == ERROR and words in s.message, 30, since)
        assert st is not None, (kind, [s.message for s in c.diagnostics[since:]], g["log"].read_text()[-2000:])
        assert int(status_value(st, f"signature_refused_{kind}") or 0) >= 1, kind
        assert status_value(st, "active_generation") != "forged"
    assert "forged" not in g["gens"]  # the running actor stayed
    publish_actor(g, good)
    assert controller_status(c, lambda s: "signed-1 active" in s.message, 30) is not None
    # the policy is fixed at start: a ~/set_parameters caller cannot switch it off
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    off = Parameter(name="require_signature", value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="false"))
    r = c.call("/maa_go2_controller/set_parameters", SetParameters.Request(parameters=[off]), SetParameters)
    assert not r.results[0].successful and "read-only" in r.results[0].reason.lower(), r.results[0].reason


def _values(s) -> dict:
    return {kv.key: kv.value for kv in s.values}


def test_cmd_vel_beyond_limits_clamped_and_nan_ignored_each_reported_once(go2_graph):
    from geometry_msgs.msg import Twist
    from maa_ros import qos
    g, c = go2_graph, go2_graph["client"]
    pub = c.node.create_publisher(Twist, "cmd_vel", qos.STATE)
    end = time.monotonic() + 20
    while time.monotonic() < end and pub.get_subscription_count() < 1:
        time.sleep(0.05)
    since = len(c.diagnostics)
    for k in range(6):
        m = Twist()
        m.linear.x, m.angular.z = 5.0, -3.0 - k  # beyond vx [-1, 1] and yaw_rate [-1, 1]
        pub.publish(m)
        time.sleep(0.05)
    for _ in range(3):
        m = Twist()
        m.linear.y = float("nan")
        pub.publish(m)
        time.sleep(0.05)
    # best-effort on one machine: expect (nearly) all; each counted, in the node and in the controller
    def counted(s):  # the controller's counters reach /diagnostics once a second
        v = _values(s)
        return (int(v.get("cmd_vel_clamped", 0)) >= 5 and int(v.get("cmd_vel_rejected", 0)) >= 2
                and v.get("command_clamped") == v["cmd_vel_clamped"] and v.get("command_rejected") == v["cmd_vel_rejected"])
    assert controller_status(c, counted, 20, since) is not None, [(s.message, _values(s)) for s in c.diagnostics[since:]][-3:]
    time.sleep(1.5)  # the log is written by another process
    log = g["log"].read_text()
    assert log.count("beyond command_limits (vx (-0.8, 1.2)") == 1, log[-3000:]  # the node's report, once
    assert log.count("NaN or Inf ignored") == 1


def test_gamepad_client_drives_the_simulated_go2(go2_graph):
    """`maa go2-gamepad` writes rt/wirelesscontroller on the simulated robot's DDS domain, as the
    remote does on the robot: L2+A stands the controller up, L2+B damps it."""
    g, c = go2_graph, go2_graph["client"]
    since = len(c.diagnostics)
    out = subprocess.run([sys.executable, "-m", "maa_core", "go2-gamepad", "--domain", str(DDS_DOMAIN),
                          "--press", "L2+A", "--for", "1.5", "--press", "L2+B", "--for", "0.3"],
                         capture_output=True, text=True, timeout=60, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "samples sent on rt/wirelesscontroller" in out.stdout
    up = controller_status(c, lambda s: s.message == "remote: DAMP -> STAND_UP: stand (gamepad L2+A)", 10, since)
    down = controller_status(c, lambda s: s.message == "remote: STAND_UP -> DAMP: damp (gamepad L2+B)", 10, since)
    assert up is not None and down is not None, ([s.message for s in c.diagnostics[since:]], g["log"].read_text()[-2000:])


# real-time loops, DDS and ROS graphs: one pytest-xdist worker runs all such files, in order (see Makefile)
pytestmark = pytest.mark.xdist_group("realtime")
