"""maa_ros pieces in one process: message helpers, generation engine, launch spec vs. config,
launch file and setup.py, and the launcher's argument handling."""
import ast
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import yaml

from maa_core.actor_io import ActorBlob
from maa_core.errors import MaaError
from maa_core.resources import package_path
from maa_core.specs import get_spec
from maa_core.trajectory import Trajectory
from maa_ros import launch_spec
from maa_core.serving.engine import ActorHistory, Engine
from maa_core.serving.screening import screen

REPO = Path(__file__).resolve().parents[1]


def blob(spec="metaworld-sac", seed=0):
    s = get_spec(spec)
    return ActorBlob(s, np.random.default_rng(seed).normal(size=s.num_params).astype(np.float32) * 0.1, "g-1", "p-1")


# -- messages ------------------------------------------------------------------------------------
def test_actor_message_round_trip():
    from maa_ros.messages import actor_from_msg, actor_to_msg
    b = blob()
    msg = actor_to_msg(b)
    assert msg.layout.dim[0].label == "safetensors" and msg.layout.dim[0].size == len(msg.data)
    got = actor_from_msg(msg, expected_spec=b.spec)
    assert got.checksum == b.checksum and got.generation_id == "g-1" and got.prompt_id == "p-1"
    assert np.array_equal(got.params, b.params)


def _nan_blob():
    b = blob()
    data = bytearray(b.to_bytes())
    data[-4:] = np.array([np.nan], np.float32).tobytes()
    return bytes(data)


def _flipped():
    data = bytearray(blob().to_bytes())
    data[-1] ^= 1
    return bytes(data)


@pytest.mark.parametrize("case,data,words", [
    ("truncated", blob().to_bytes()[:-100], "not a valid safetensors"),
    ("nan", _nan_blob(), "NaN|checksum"),
    ("checksum", _flipped(), "checksum mismatch"),
    ("garbage", b"\x00" * 64, "not a valid safetensors|format"),
    ("wrong spec", blob("robosuite-sac").to_bytes(), "policy spec mismatch"),
], ids=["truncated", "nan", "checksum", "garbage", "wrong-spec"])  # the blobs are random: ids must not be
def test_bad_actor_messages_raise_one_line(case, data, words):
    from maa_ros.messages import actor_from_msg, actor_to_msg
    with pytest.raises(MaaError, match=words) as e:
        actor_from_msg(actor_to_msg(data), expected_spec=get_spec("metaworld-sac"))
    assert "\n" not in str(e.value)


def test_oversized_actor_and_bad_layout():
    from maa_ros.messages import actor_from_msg, actor_to_msg
    msg = actor_to_msg(blob())
    with pytest.raises(MaaError, match="exceeds the limit"):
        actor_from_msg(msg, max_bytes=1000)
    msg.layout.dim[0].size = 3
    with pytest.raises(MaaError, match="layout says"):
        actor_from_msg(msg)


def test_prompt_message_round_trip_rclpy_types():
    from maa_ros.messages import prompt_from_msg, prompt_to_msg
    t = Trajectory(np.ones((4, 3)), np.zeros((4, 2)), np.array([0, 0, 1, 1], bool))
    msg = prompt_to_msg(t)
    assert [d.label for d in msg.layout.dim] == ["T", "state", "action", "success"]
    from rclpy.serialization import deserialize_message, serialize_message
    back = prompt_from_msg(deserialize_message(serialize_message(msg), type(msg)))
    assert np.array_equal(back.states, t.states) and np.array_equal(back.success, t.success)


# -- generation engine -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_gen():
    import torch
    from maa_core.serving.untrained import untrained_generator
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 2-core machine shared with other test runs: extra OpenMP threads only spin
    yield untrained_generator("metaworld-sac")
    torch.set_num_threads(threads)


def prompt_for(gen, seed=0):
    r = np.random.default_rng(seed)
    T = gen.prompt_length
    return Trajectory(r.normal(size=(T, gen.obs_dim)), np.tanh(r.normal(size=(T, gen.act_dim))), np.arange(T) >= T // 2)


def test_engine_picks_a_screened_candidate_and_is_deterministic(tiny_gen):
    e = Engine(tiny_gen, num_candidates=4, seed=3, name="t")
    p = prompt_for(tiny_gen)
    r1 = e.generate("p-a", p)
    assert r1.blob.spec == tiny_gen.spec and r1.screening.valid.all()
    assert r1.blob.extra["candidate"] == r1.screening.best and r1.blob.extra["seed"] == 3
    assert ActorBlob.from_bytes(r1.data).checksum == r1.blob.checksum
    r2 = e.generate("p-a", p)  # "generate now" again: next seed
    assert r2.blob.extra["seed"] == 4
    r3 = Engine(tiny_gen, num_candidates=4, seed=3).generate("p-a", p)
    assert r3.blob.checksum == r1.blob.checksum


def test_engine_signs_each_actor_with_its_signing_key(tiny_gen):
    from maa_core.signing import Signer, TrustedKeys
    signer = Signer.generate()
    r = Engine(tiny_gen, num_candidates=2, name="t", signer=signer).generate("p-a", prompt_for(tiny_gen))
    assert TrustedKeys({signer.public_key: "test"}).check(r.data, r.signature) == signer.key_id
    assert Engine(tiny_gen, num_candidates=2).generate("p-a", prompt_for(tiny_gen)).signature == ""


def test_screening_rejects_invalid_candidates(tiny_gen):
    spec = tiny_gen.spec
    p = prompt_for(tiny_gen)
    params = np.zeros((3, spec.num_params), np.float32)
    params[0, 0] = np.nan
    params[2] = 1.0  # large weights: actions saturate the tanh, still bounded
    sc = screen(spec, params, p, max_abs_action=0.5)
    assert list(sc.valid) == [False, True, False]
    assert "non-finite" in sc.reasons[0] and "magnitude" in sc.reasons[2] and sc.best == 1


def test_simulator_rollout_screening(shared_dir):
    import torch
    from maa_core.serving.scorers import make_scorer
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        spec = get_spec("go2-wtw")
        roll = make_scorer("go2", 50, spec, str(shared_dir / "wtw"))
        params = np.zeros((2, spec.num_params), np.float32)
        params[1, -spec.act_dim:] = 3.0  # every joint far off its default: the Go2 collapses
        p = Trajectory(np.zeros((4, 70)), np.zeros((4, 12)))  # Go2 step rows: not actor inputs
        sc = screen(spec, params, p, max_abs_action=10.0, scorer=roll)
        assert sc.score[0] == 1.0 and sc.score[1] < 1.0 and sc.best == 0
        mw = get_spec("metaworld-sac")
        score = make_scorer("reach", 20, mw)(mw.unflatten(np.zeros(mw.num_params, np.float32)))
        assert np.isfinite(score)
        with pytest.raises(MaaError, match="unknown MetaWorld task"):
            make_scorer("no-such-task", 20, mw)
        make_scorer("go2", 20, spec, "")  # "" = the shipped adaptation module (models/go2-adaptation)
        with pytest.raises(MaaError, match="no-such-run"):
            make_scorer("go2", 20, spec, str(shared_dir / "no-such-run"))
    finally:
        torch.set_num_threads(threads)


def test_worker_keeps_order_and_drops_the_oldest_waiting_prompt():
    import threading
    import time
    from maa_core.serving.engine import Worker
    gate, done = threading.Event(), []

    class SlowEngine:
        def generate(self, pid, traj, received_at=None):
            gate.wait(5)
            if pid == "bad":
                raise RuntimeError("boom")
            return pid

    w = Worker(SlowEngine(), done.append, max_pending=2)
    try:
        assert w.submit("a", None) is None
        time.sleep(0.3)  # "a" is being generated; b, c wait; d drops b
        assert [w.submit(p, None) for p in ("b", "c", "d")] == [None, None, "b"]
        w.submit("bad", None)  # drops c
        gate.set()
        end = time.monotonic() + 5
        while len(done) < 3 and time.monotonic() < end:
            time.sleep(0.02)
        assert done[:2] == ["a", "d"] and isinstance(done[2], MaaError) and "generation failed" in str(done[2])
    finally:
        gate.set()
        w.stop()


def test_history_revert():
    h = ActorHistory(2)
    with pytest.raises(MaaError, match="no earlier actor"):
        h.revert()
    for i in range(3):
        h.push(f"g{i}", bytes([i]))
    assert h.revert() == ("g1", b"\x01")
    with pytest.raises(MaaError):
        h.revert()


# -- launch spec, config, launch file, setup.py -----------------------------------------------------
def test_config_yaml_matches_declared_defaults():
    cfg = yaml.safe_load((REPO / "config" / "go2.yaml").read_text())
    assert set(cfg) == set(launch_spec.NODE_PARAMETERS)
    for node, defaults in launch_spec.NODE_PARAMETERS.items():
        params = cfg[node]["ros__parameters"]
        assert params == defaults, node
        assert {k: type(v) for k, v in params.items()} == {k: type(v) for k, v in defaults.items()}, node


def test_setup_py_declares_every_executable():
    tree = ast.parse((REPO / "setup.py").read_text())
    scripts = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and " = " in node.value and ":" in node.value:
            name, target = node.value.split(" = ")
            scripts[name.strip()] = target.strip()
    for exe, module in launch_spec.EXECUTABLES.items():
        assert scripts.get(exe) == f"{module}:main"
    assert scripts["maa-ros"] == "maa_ros.launcher:main"


def _stub_launch_modules(monkeypatch):
    """Minimal stand-ins for `launch` / `launch_ros` (not installable here) that record arguments."""
    class Rec:
        def __init__(self, *args, **kwargs):
            self.args, self.kwargs = args, kwargs

    class LaunchConfiguration(Rec):
        def perform(self, context):
            return context[self.args[0]]

    mods = {
        "launch": {"LaunchDescription": Rec},
        "launch.actions": {"DeclareLaunchArgument": Rec, "OpaqueFunction": Rec, "Shutdown": Rec},
        "launch.substitutions": {"LaunchConfiguration": LaunchConfiguration},
        "launch_ros": {},
        "launch_ros.actions": {"Node": Rec},
    }
    for name, attrs in mods.items():
        m = types.ModuleType(name)
        m.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, m)


@pytest.mark.parametrize("given", [{}, {"generator_dir": "/g", "prompt_bag": "/b", "backend": "unitree",
                                       "network_interface": "eth0", "controller": "false"}])
def test_launch_file_builds_the_spec_nodes(monkeypatch, given):
    _stub_launch_modules(monkeypatch)
    path = REPO / "launch" / "go2_generate.launch.py"
    ns = {"__name__": "go2_generate_launch", "__file__": str(path)}
    exec(compile(path.read_text(), str(path), "exec"), ns)
    ld = ns["generate_launch_description"]()
    actions = ld.args[0]
    declared = {a.args[0]: a.kwargs["default_value"] for a in actions[:-1]}
    assert declared == {a.name: a.default for a in launch_spec.GO2_ARGUMENTS}
    context = {**declared, **given}
    nodes = actions[-1].kwargs["function"](context)
    spec = launch_spec.build("go2_generate", given)
    assert [(n.kwargs["executable"], n.kwargs["name"]) for n in nodes] == [(s.executable, s.name) for s in spec]
    for n, s in zip(nodes, spec):
        assert n.kwargs["package"] == "maa_ros"
        assert n.kwargs["parameters"] == [s.params_file] + ([s.parameters] if s.parameters else [])
        assert (n.kwargs["on_exit"] is not None) == s.required


def test_launch_file_is_the_only_place_importing_launch():
    for py in (REPO / "maa_ros").glob("*.py"):
        tree = ast.parse(py.read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not names & {"launch", "launch_ros"}, py


def test_spec_commands():
    nodes = launch_spec.build("go2_generate", {"generator_dir": "/g d", "controller": "false", "recorder": "false"})
    (gen,) = nodes
    assert gen.required and gen.command("py")[:3] == ["py", "-m", "maa_ros.generator_node"]
    assert gen.ros_args()[-2:] == ["-p", 'generator_dir:="/g d"']
    with pytest.raises(MaaError, match="expected one of sim, unitree"):
        launch_spec.build("go2_generate", {"backend": "real"})


def test_controller_takes_the_generators_spec():
    """generator_dir:= sets the controller's spec to the generator's (the shipped go2-walk generator makes
    go2-walk actors, which a go2-wtw controller would refuse); no readable generator.json: config/go2.yaml's."""
    ctl = lambda args: next(n for n in launch_spec.build("go2_generate", args) if n.name == "maa_go2_controller")  # noqa: E731
    assert ctl({"generator_dir": str(REPO / "models/go2-walk")}).parameters["spec"] == "go2-walk"
    assert "spec" not in ctl({"generator_dir": "/nonexistent"}).parameters
    assert "spec" not in ctl({"generator_dir": ""}).parameters  # empty: the parameter file's generator
    assert ctl({}).parameters["spec"] == "go2-walk"  # the default: the shipped generator


def test_launch_arguments_name_the_packages_own_files(tmp_path, monkeypatch):
    """generator_dir defaults to the shipped generator; names resolve to models/, bags/, config/ of the
    package from any working directory; an existing path is kept as given."""
    monkeypatch.chdir(tmp_path)
    nodes = {n.name: n for n in launch_spec.build("go2_generate", {"prompt_bag": "go2-walk", "config": "go2.yaml"})}
    gen = nodes["maa_generator"]
    assert Path(gen.parameters["generator_dir"]) == package_path("models", "go2-walk")
    assert (Path(gen.parameters["generator_dir"]) / "generator.json").is_file()
    assert Path(nodes["maa_bag_player"].parameters["bag"]) == package_path("bags", "go2-walk")
    assert Path(gen.params_file) == package_path("config", "go2.yaml")
    (tmp_path / "go2-walk").mkdir()  # a folder of that name where the user stands wins
    nodes = {n.name: n for n in launch_spec.build("go2_generate", {"prompt_bag": "go2-walk"})}
    assert nodes["maa_bag_player"].parameters["bag"] == "go2-walk"


@pytest.mark.parametrize("argv,words", [
    (["launch", "go2_generate", "nope:=1"], "unknown launch argument 'nope'"),
    (["launch", "go2_generate", "backend:=x"], "expected one of"),
    (["launch", "nograph"], "unknown launch 'nograph'"),
    (["launch"], "required"),
    (["launch", "go2_generate", "stray"], "unrecognized"),
    (["launch", "go2_generate", "config:=/nonexistent.yaml"], "no such parameter file"),
])
def test_launcher_bad_arguments_exit_2_with_one_line(argv, words):
    p = subprocess.run([sys.executable, "-m", "maa_ros.launcher", *argv], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("maa-ros: error:") and words in lines[0]


# real-time loops, DDS and ROS graphs: one pytest-xdist worker runs all such files, in order (see Makefile)
pytestmark = pytest.mark.xdist_group("realtime")
