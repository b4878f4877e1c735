"""The maa_ros graph, described once in plain Python (no ROS imports).

Both launch paths are built from here:
  * `ros2 launch maa_ros go2_generate.launch.py key:=value ...` (launch/go2_generate.launch.py turns
    each `NodeSpec` into a launch_ros Node);
  * `maa-ros launch go2_generate key:=value ...` (maa_ros.launcher starts each `NodeSpec` as a
    process with `--ros-args`), for pip-only installs and the tests.

`NODE_PARAMETERS` are the parameters each node declares, with the defaults that config/go2.yaml
repeats (a test checks they agree).
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from maa_core.errors import MaaError, check
from maa_core.resources import package_path, resolve

PACKAGE = "maa_ros"

# ROS executable (console script) -> module with main()
EXECUTABLES = {
    "maa_generator": "maa_ros.generator_node",
    "maa_bag_player": "maa_ros.bag_player_node",
    "maa_prompt_recorder": "maa_ros.prompt_recorder_node",
    "maa_go2_controller": "maa_ros.go2_controller_node",
}

# Topic names are relative, so a namespace moves the whole graph.
PROMPT_TOPIC = "maa/prompt"
ACTOR_TOPIC = "maa/actor"
STEPS_TOPIC = "maa/go2/steps"

NODE_PARAMETERS: dict[str, dict[str, object]] = {
    "maa_generator": {
        "generator_dir": "",            # folder written by PolicyGenerator.save_pretrained
        "device": "cpu",                # torch device; "" = cuda when available
        "torch_threads": 1,             # CPU threads for generation (the controller shares the CPU); 0 = torch default
        "num_candidates": 8,            # K actors generated per prompt
        "mode": "generate",             # "generate" | "retrieve" | "auto" (nearest training checkpoint; needs `maa index`)
        "retrieval_threshold": -1.0,    # auto: retrieve at cosine distance <= this; < 0 = the index's
        "seed": 0,                      # base seed; "generate now" on the same prompt uses seed + attempt
        "screen": True,                 # validity screening (finite params/actions, action bound) + ranking
        "max_abs_action": 20.0,         # a candidate whose actions on the prompt states exceed this is invalid
        "sim_screen": "",               # "" = none; a MetaWorld/Robosuite task, "go2" or "go2-walk" (serving/scorers.py)
        "sim_screen_steps": 200,
        "wtw_run_dir": "",              # sim_screen "go2": walk-these-ways run around the candidates
        "history_size": 5,              # actors kept for revert
        "max_pending": 4,               # prompts waiting for generation; beyond, the oldest is dropped
        "max_prompt_values": 4194304,   # prompts larger than this many floats are refused
        "signing_key": "",              # private key file (maa keygen): every actor is signed; "" = unsigned
        "prompt_topic": PROMPT_TOPIC,
        "actor_topic": ACTOR_TOPIC,
    },
    "maa_bag_player": {
        "bag": "",                      # rosbag2 folder (sqlite3 or mcap); "" = idle until ~/play names one
        "topic": "",                    # topic in the bag; "" = every Float32MultiArray topic
        "window": 0,                    # > 0: treat messages as a step stream, cut windows this long
        "prompt_topic": PROMPT_TOPIC,
        "rate": 1.0,                    # prompts per second
        "loop": False,
        "wait_for_subscribers": 1,      # wait until this many subscribers match before playing
        "wait_timeout": 60.0,          # the generator node subscribes only once its model is loaded (10-20 s under load)
    },
    "maa_prompt_recorder": {
        "input": "steps",               # "steps": Float32MultiArray step rows; "joint_state": sensor_msgs/JointState
        "steps_topic": STEPS_TOPIC,
        "joint_state_topic": "joint_states",
        "joint_command_topic": "joint_commands",
        "action_field": "position",     # JointState field of the command topic used as the action
        "window": 60,                   # steps per prompt window (>= the generator's prompt_length)
        "stride": 60,                   # steps between window starts
        "windows_topic": "maa/recorded_prompts",
        "prompt_topic": PROMPT_TOPIC,
        "auto_send": False,             # send every window as a prompt (otherwise ~/send_prompt sends the last)
        "save_dir": "",                 # "" = do not save; else ~/save and shutdown write a bag here
        "save_storage": "mcap",
        "max_windows": 100,             # windows kept in memory for saving
    },
    "maa_go2_controller": {
        "backend": "sim",               # "sim" | "unitree"
        "network_interface": "",        # unitree: NIC connected to the robot
        "wtw_run_dir": "",              # walk-these-ways run: adaptation module (+ its body as first actor, if any)
        "accept_adaptation_mismatch": False,  # run actors whose students were trained with another module
        "robot_config": "go2",          # robot constants: "go2" (config/go2_robot.yaml) or a YAML path
        "spec": "go2-wtw",              # policy spec of the actors it runs (go2-walk: the MuJoCo-distilled students)
        "dds_domain": -1,               # Unitree DDS domain; -1 = robot config's (unitree) or 1 (sim)
        "actor_topic": ACTOR_TOPIC,
        "steps_topic": STEPS_TOPIC,
        "active_generation_topic": "maa/go2/active_generation",
        "cmd_vel_topic": "cmd_vel",
        "cmd_vel_timeout": 0.5,         # s without cmd_vel -> velocity command 0
        "max_actor_bytes": 67108864,
        "publish_steps": True,          # publish executed (observation, action) rows in RUN mode
        "enable_on_start": False,       # stand up (and run once an actor is active) without ~/enable
        "record_dir": "",               # folder for recordings (~/record); empty: recording off
        "record_on_start": False,       # start a recording into record_dir with the controller
        "require_signature": "auto",    # "true" | "false" | "auto" (= true on backend unitree, false on sim); read at start
        "trusted_keys": "",             # public key files (maa keygen) actors may be signed by: a list, or comma-separated
    },
}


@dataclass(frozen=True)
class Argument:
    name: str
    default: str
    help: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeSpec:
    executable: str
    name: str
    params_file: str  # YAML with `<name>: ros__parameters:`
    parameters: dict = field(default_factory=dict)  # overrides, applied after the file
    required: bool = False  # the graph shuts down when a required node dies

    @property
    def module(self) -> str:
        return EXECUTABLES[self.executable]

    def ros_args(self) -> list[str]:
        """Arguments after the executable: `--ros-args -r __node:=... --params-file ... -p k:=v`."""
        args = ["--ros-args", "-r", f"__node:={self.name}", "--params-file", self.params_file]
        for k, v in self.parameters.items():
            args += ["-p", f"{k}:={json.dumps(v)}"]  # JSON scalars are YAML scalars of the same type
        return args

    def command(self, python: str | None = None) -> list[str]:
        return [python or sys.executable, "-m", self.module, *self.ros_args()]


def _bool(s: str) -> bool:
    return str(s).lower() in ("1", "true", "yes", "on")


# -- graphs ------------------------------------------------------------------------------------
GO2_ARGUMENTS = (
    Argument("backend", "sim", "Go2 backend", ("sim", "unitree")),
    Argument("network_interface", "", "unitree backend: network interface connected to the robot"),
    Argument("generator_dir", "go2-walk", "generator folder (PolicyGenerator.save_pretrained), or the name of one "
             "the package ships in models/ (go2-walk: the locomotion generator); empty: the parameter file's"),
    Argument("wtw_run_dir", "", "walk-these-ways run folder: the actor until a generated one arrives"),
    Argument("mode", "", "generator: generate (diffusion), retrieve (nearest training checkpoint) or auto "
             "(retrieve when within the index's threshold); retrieve/auto need `maa index`; empty: the parameter "
             "file's", ("", "generate", "retrieve", "auto")),
    Argument("accept_adaptation_mismatch", "false", "controller: run actors whose students were trained with "
             "another adaptation module than wtw_run_dir's", ("true", "false")),
    Argument("prompt_bag", "", "rosbag2 folder whose prompts are played once the generator listens, or the "
             "name of one the package ships in bags/ (go2-walk: a recorded walk)"),
    Argument("prompt_topic", "", "topic to read in prompt_bag (empty: every Float32MultiArray topic)"),
    Argument("signing_key", "", "generator: private key file (maa keygen) that signs every actor; empty: unsigned"),
    Argument("trusted_keys", "", "controller: comma-separated public key files whose signed actors it runs"),
    Argument("require_signature", "auto", "controller: refuse actors without a trusted signature (auto: on the "
             "unitree backend only)", ("auto", "true", "false")),
    Argument("config", "", "parameter YAML, or the name of one in the package's config/ (empty: go2.yaml)"),
    Argument("controller", "true", "start the Go2 controller node", ("true", "false")),
    Argument("recorder", "true", "start the prompt recorder node", ("true", "false")),
)


def _generator_spec(generator_dir: str) -> str:
    """Spec name in generator_dir/generator.json; '' if there is none to read (the generator node
    then reports the folder's problem)."""
    try:
        return str(json.loads((Path(generator_dir) / "generator.json").read_text())["spec"]["name"]) if generator_dir else ""
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _package_paths(a: dict[str, str]) -> dict[str, str]:
    """Launch arguments that may name the package's own files, as paths: a path that exists is kept,
    else `models/<name>`, `bags/<name>`, `config/<name>` of the checkout or the installed share folder
    (so the defaults work after `colcon build` from any working directory)."""
    kinds = {"generator_dir": "models", "prompt_bag": "bags", "config": "config"}
    return {**a, **{k: str(resolve(a[k], kind)) for k, kind in kinds.items() if a[k]}}


def go2_generate(args: dict[str, str]) -> list[NodeSpec]:
    a = _package_paths(resolve_arguments(GO2_ARGUMENTS, args))
    cfg = a["config"] or str(config_path("go2.yaml"))
    check(Path(cfg).is_file(), f"launch argument config:={cfg}: no such parameter file")
    over = {k: a[k] for k in ("generator_dir", "wtw_run_dir", "signing_key", "mode") if a[k]}
    nodes = [NodeSpec("maa_generator", "maa_generator", cfg, over, required=True)]
    if _bool(a["controller"]):
        over = {"backend": a["backend"]}
        if a["network_interface"]:
            over["network_interface"] = a["network_interface"]
        if a["wtw_run_dir"]:
            over["wtw_run_dir"] = a["wtw_run_dir"]
        if _bool(a["accept_adaptation_mismatch"]):
            over["accept_adaptation_mismatch"] = True
        if a["trusted_keys"]:
            over["trusted_keys"] = a["trusted_keys"]
        if a["require_signature"] != "auto":  # auto: the parameter file's
            over["require_signature"] = a["require_signature"]
        spec = _generator_spec(a["generator_dir"])
        if spec:  # the controller runs the actors this generator makes (e.g. go2-walk for models/go2-walk)
            over["spec"] = spec
        nodes.append(NodeSpec("maa_go2_controller", "maa_go2_controller", cfg, over, required=True))
    if _bool(a["recorder"]):
        nodes.append(NodeSpec("maa_prompt_recorder", "maa_prompt_recorder", cfg))
    if a["prompt_bag"]:
        over = {"bag": a["prompt_bag"]}
        if a["prompt_topic"]:
            over["topic"] = a["prompt_topic"]
        nodes.append(NodeSpec("maa_bag_player", "maa_bag_player", cfg, over))
    return nodes


# launch name -> (arguments, builder); `launch/<name>.launch.py` exists for each
GRAPHS = {"go2_generate": (GO2_ARGUMENTS, go2_generate)}


def resolve_arguments(arguments, given: dict[str, str]) -> dict[str, str]:
    known = {a.name: a for a in arguments}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise MaaError(f"unknown launch argument {unknown[0]!r} (known: {', '.join(known)})")
    out = {n: str(given.get(n, a.default)) for n, a in known.items()}
    for n, a in known.items():
        check(not a.choices or out[n] in a.choices, f"launch argument {n}:={out[n]!r}: expected one of {', '.join(a.choices)}")
    return out


def build(graph: str, args: dict[str, str]) -> list[NodeSpec]:
    check(graph in GRAPHS, f"unknown launch {graph!r} (available: {', '.join(GRAPHS)})")
    return GRAPHS[graph][1](args)


def config_path(name: str) -> Path:
    """A file of the package's config/ (checkout or installed share folder)."""
    return package_path("config", name)
