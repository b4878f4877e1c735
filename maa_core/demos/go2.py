"""`maa demo` (`make demo`): the main job on the simulated Go2 (config/demo_go2.yaml).

    [1/4] go2-walk dataset (MuJoCo, no IsaacGym): built on first use, then reused (only when training)
    [2/4] locomotion generator (segment-mode prompts): the one shipped in `pretrained` (trained by this
          config, float16 weights), a generator trained earlier in run_dir, or trained now
    [3/4] the go2_generate graph over ROS + DDS: the shipped prompt bag -> generator node ->
          actor -> controller node -> simulated Go2, driven along a command course over cmd_vel;
          the per-segment tracking table, falls, swap latency
    [4/4] the walk's video (MuJoCo offscreen, chase camera), path plot and tracking plot; results JSON
          (demos/go2_outputs.py; without a GL backend: the stick-figure GIF and a line saying why)

Step 3 runs ROS nodes: it is the ROS package's `run_graph_walk`, found through an entry point
(`graph_walk.graph_walker()`), so maa_core imports no ROS. The same engine the generator node
builds, for in-process walks (benchmark, tests): `make_engine`.
"""
from __future__ import annotations

import json
import time

import numpy as np
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..config import read_yaml_mapping
from ..errors import MaaError, check
from ..files import dataclass_from_mapping
from ..resources import resolve

DEFAULT_CONFIG = "config/demo_go2.yaml"


@dataclass(frozen=True)
class Go2DemoConfig:
    data_dir: str = "data/go2-walk"
    plan: dict = field(default_factory=dict)        # LocoDatasetPlan fields (collect/go2_walk.py)
    distill: dict = field(default_factory=dict)     # LocoDistillConfig overrides (every run of the dataset)
    workers: int = 2
    run_dir: str = "runs/go2-demo"
    wtw_run_dir: str = ""                           # adaptation module run dir; "" = ours (models/go2-adaptation)
    accept_adaptation_mismatch: bool = False        # run students trained with another adaptation module
    prompt_bag: str = "bags/go2-walk"               # a path, or a bag the package ships (bags/<name>)
    generator: dict = field(default_factory=dict)   # GeneratorConfig overrides (with 'preset')
    pretrained: str = ""                            # shipped generator folder (models/<name>); '' = always train
    num_candidates: int = 16
    screen_steps: int = 1000                        # generator node sim_screen_steps
    mode: str = "generate"                          # generator node mode: generate | retrieve | auto (auto and retrieve
                                                    # need the generator folder's retrieval.safetensors, `maa index`)
    walk_seconds: float = 20.0                      # (only without a course: straight at straight_vx)
    straight_vx: float = 0.6
    course: list = field(default_factory=list)      # command segments ({name, seconds, vx, vy, yaw_rate}; go2/course.py)
    gif_seconds: float = 4.0                        # stick-figure GIF, only when there can be no video
    video: dict = field(default_factory=dict)       # VideoConfig overrides (go2/sim/render.py)
    seed: int = 0

    @classmethod
    def load(cls, path) -> "Go2DemoConfig":
        return dataclass_from_mapping(cls, read_yaml_mapping(path, "demo config"), str(path))

    @property
    def prompt_bag_path(self) -> Path:
        return resolve(self.prompt_bag, "bags")

    @property
    def pretrained_path(self) -> Path | None:
        return resolve(self.pretrained, "models") if self.pretrained else None


def generator_config(cfg: Go2DemoConfig):
    from ..config import GeneratorConfig, apply_overrides

    g = dict(cfg.generator)
    return apply_overrides(GeneratorConfig.preset_named(g.pop("preset", "cpu")), g)


def ensure_dataset(cfg: Go2DemoConfig, say=print) -> Path:
    from ..collect.go2_walk import LocoDatasetPlan, build_go2_walk_dataset

    root = Path(cfg.data_dir)
    plan = LocoDatasetPlan(**cfg.plan)
    t0 = time.time()
    say(f"[1/4] go2-walk dataset {root} ({plan.runs} distilled runs, {plan.heldout} held-out prompts; "
        f"reused when complete)")
    build_go2_walk_dataset(root, plan, dict(cfg.distill), workers=cfg.workers)
    say(f"      ready ({time.time() - t0:.0f} s)")
    return root


def trained_generator(cfg: Go2DemoConfig) -> Path | None:
    """The generator the demo runs without training: run_dir/generator if trained earlier, else the
    shipped `pretrained` folder; None = train."""
    for d in (Path(cfg.run_dir) / "generator", cfg.pretrained_path):
        if d is not None and (d / "generator.json").is_file():
            return d
    return None


def ensure_generator(cfg: Go2DemoConfig, data_dir: Path | None = None, say=print, progress: bool = True,
                     train: bool = False) -> Path:
    """trained_generator(cfg), or (train=True, or none there) trains run_dir/generator from the dataset
    (built first when `data_dir` is None)."""
    from ..train import TrainerOptions, train_from_dataset

    gen_dir = Path(cfg.run_dir) / "generator"
    t0 = time.time()
    found = None if train else trained_generator(cfg)
    if found is not None:
        say(f"[2/4] generator {found} ({'shipped with the repository' if found != gen_dir else 'reused'})")
        return found
    data_dir = data_dir or ensure_dataset(cfg, say)
    gcfg = generator_config(cfg)
    say(f"[2/4] training the locomotion generator ({gcfg.preset} preset, segment prompts) -> {gen_dir}")
    train_from_dataset(data_dir / "checkpoints", gen_dir, gcfg,
                       TrainerOptions(run_dir=Path(cfg.run_dir) / "train", progress=progress))
    # the students were distilled with the dataset's adaptation module: the controller checks it
    from ..go2.wtw import adaptation_record, load_wtw_run, write_adaptation_record
    write_adaptation_record(gen_dir, adaptation_record(load_wtw_run(dict(cfg.distill).get("wtw_dir", ""))))
    say(f"      done ({time.time() - t0:.0f} s)")
    return gen_dir


def make_engine(gen, wtw_run_dir: str, num_candidates: int = 8, seed: int = 0, screen_steps: int = 200,
                sim_screen: str = "go2-walk", **engine_kwargs):
    """The generator node's engine with its Go2 screening, in-process: K candidates, the best by a
    MuJoCo rollout (survival along the screening command course, then tracking it). engine_kwargs:
    Engine's (mode, retrieval, retrieval_threshold, ...)."""
    from ..go2.config import load_robot_config
    from ..serving.engine import Engine
    from ..serving.scorers import make_scorer

    cfg = load_robot_config("go2")
    scorer = make_scorer(sim_screen, screen_steps, gen.spec, wtw_run_dir)
    return Engine(gen, num_candidates, seed, True, cfg.safety.max_abs_action, scorer=scorer, **engine_kwargs)


def prompt_metadata(bag: Path) -> dict:
    meta = bag / "prompt.json"
    return json.loads(meta.read_text()) if meta.is_file() else {}


def actor_source(blob: bytes) -> str:
    """'generated' / 'retrieved' from a published actor's header ('' if it does not say)."""
    from ..actor_io import ActorBlob

    try:
        return str(ActorBlob.parse_unverified(blob, copy=False)[0].extra.get("source", ""))
    except MaaError:
        return ""


SHIP_SHARD_BYTES = 4 * 2 ** 20  # committed files stay well below the repository's 5 MB limit


def run_go2_demo(config_path=DEFAULT_CONFIG, progress: bool = True, train: bool = False,
                 export: str | None = None, wtw_run_dir: str | None = None,
                 accept_adaptation_mismatch: bool | None = None) -> dict:
    """train: train run_dir/generator from the dataset even if one exists (shipped or earlier);
    export: then write its float16 shipping copy to this folder (how `pretrained` is made);
    wtw_run_dir / accept_adaptation_mismatch: override the config's (None = keep)."""
    import torch

    from ..go2.commands import course_commands
    from ..go2.course import parse_course
    from ..go2.sim.render import VideoConfig
    from ..go2.config import load_robot_config
    from .go2_outputs import write_walk_outputs
    from .graph_walk import GraphWalkConfig, graph_walker, walk_course

    t0 = time.time()
    config_path = resolve(config_path, "config")
    cfg = Go2DemoConfig.load(config_path)
    try:
        video_cfg = VideoConfig.from_dict(cfg.video)
        course = parse_course(cfg.course, f"{config_path}: course") if cfg.course else ()
    except (MaaError, TypeError) as e:
        raise MaaError(f"{config_path}: {e}") from None
    from ..serving.retrieval import INDEX_FILE, MODES
    check(cfg.mode in MODES, f"{config_path}: mode {cfg.mode!r}, expected one of {', '.join(MODES)}")
    run_graph_walk = graph_walker()  # before any work: without the ROS package the demo cannot run
    from ..go2.wtw import check_adaptation_match, load_wtw_run, recorded_adaptation, write_adaptation_record
    if wtw_run_dir is not None or accept_adaptation_mismatch is not None:
        cfg = replace(cfg, **{k: v for k, v in (("wtw_run_dir", wtw_run_dir),
                                                 ("accept_adaptation_mismatch", accept_adaptation_mismatch))
                              if v is not None})
    try:
        wtw = load_wtw_run(cfg.wtw_run_dir)
    except MaaError as e:
        raise MaaError(f"{e} (wtw_run_dir in {config_path})") from None
    print(wtw.describe())
    bag = cfg.prompt_bag_path
    check(bag.is_dir(), f"{bag}: the prompt bag is missing (prompt_bag in {config_path})")
    if cfg.mode != "generate":  # before any training: a generator trained here has no index either
        have = None if train else trained_generator(cfg)
        where = have or Path(cfg.run_dir) / "generator"
        check(have is not None and (have / INDEX_FILE).is_file(),
              f"{config_path}: mode {cfg.mode} needs {where / INDEX_FILE} (`maa index {where} --dataset DIR`)")
    if not train and trained_generator(cfg) is not None:
        print("[1/4] locomotion dataset: not needed (the generator is already trained)")
    gen_dir = ensure_generator(cfg, progress=progress, train=train)  # builds the dataset first if it trains
    if export:
        from ..pipeline import PolicyGenerator

        out = PolicyGenerator.from_pretrained(gen_dir, device="cpu").save_pretrained(
            export, dtype=torch.float16, max_shard_bytes=SHIP_SHARD_BYTES)
        rec = recorded_adaptation(gen_dir)
        if rec is not None:  # which adaptation module the students were trained with travels along
            write_adaptation_record(out, rec)
        print(f"      exported a float16 copy in shards of <= {SHIP_SHARD_BYTES / 2 ** 20:g} MiB -> {out}")
    print(f"      {check_adaptation_match(gen_dir, wtw, cfg.accept_adaptation_mismatch)}")
    run_dir = Path(cfg.run_dir)
    meta = prompt_metadata(bag)
    print(f"[3/4] go2_generate graph: prompt bag {bag} ({meta.get('description', 'recorded walk')}) -> generator "
          f"node -> controller node -> simulated Go2 over DDS")
    gw = GraphWalkConfig(str(gen_dir), str(bag), wtw.source, accept_adaptation_mismatch=cfg.accept_adaptation_mismatch,
                         seconds=cfg.walk_seconds, straight_vx=cfg.straight_vx, course=course,
                         num_candidates=cfg.num_candidates, seed=cfg.seed, sim_screen_steps=cfg.screen_steps, mode=cfg.mode)
    course = walk_course(gw)
    seconds = sum(g.seconds for g in course)
    walk = run_graph_walk(gw, run_dir / "graph")
    m = walk.metrics
    table = walk.course
    completed = table is not None and table.completed
    print("[4/4] video (MuJoCo offscreen), path plot and tracking plot")
    z, s = walk.log, walk.run_start
    in_walk = z["t"][(z["t"] >= s) & (z["t"] <= s + seconds)]
    dt = 1.0 / float(load_robot_config("go2").control.rate_hz)
    cmd_rows = course_commands(course, dt, int(round(seconds / dt)) + 1)
    command = cmd_rows[np.clip(np.round((in_walk - s) / dt).astype(int), 0, len(cmd_rows) - 1)]
    outputs = write_walk_outputs(
        run_dir, z, s, seconds,
        f"generated actor on the simulated Go2 (ROS path): {len(course)}-segment course, "
        f"{'fell' if m['fell'] else 'no fall'}",
        command=command, command_label="commanded (cmd_vel)", video=video_cfg, gif_seconds=cfg.gif_seconds)
    source = actor_source(walk.actor)
    result = {"completed": completed, **m, "mode": cfg.mode, "source": source,
              "course": [r.row() for r in table.segments] if table else [],
              "worst_rmse": table.worst() if table else {}, "swap_latency_ms": round(walk.swap_latency_ms, 2),
              "prompt_to_actor_s": round(walk.generation_s, 2), "prompt": meta, **outputs,
              "total_s": round(time.time() - t0, 1)}
    print()
    if table is not None:
        print(table.table())
        print()
    print(f"  distance        {m['speed'] * m['seconds']:.2f} m forward along the start heading over "
          f"{m['seconds']:.1f} s simulated")
    print(f"  falls           {int(m['fell'])}")
    print(f"  step frequency  {m['step_frequency']:.2f} Hz (prompt {meta.get('step_frequency', float('nan')):.2f} Hz)")
    print(f"  swap latency    {walk.swap_latency_ms:.1f} ms (actor message -> first tick running it)")
    print(f"  prompt -> actor {walk.generation_s:.1f} s ({cfg.num_candidates} candidates"
          f"{' + the nearest training checkpoint' if cfg.mode == 'auto' else ''}, each screened by a "
          f"{cfg.screen_steps}-step rollout in the sim; mode {cfg.mode}, served: {source or '?'})")
    w = table.worst() if table is not None else {}
    print(f"  verdict         {'COMPLETED the course' if completed else 'did not complete the course'}"
          + (f" (worst segment RMSE vx {w['vx']:.2f} m/s, vy {w['vy']:.2f} m/s, yaw rate {w['yaw_rate']:.2f} rad/s)"
             if completed else ""))
    print()
    if outputs["video"]:
        st = outputs["video_stats"]
        print(f"video {outputs['video']} ({st['frames']} frames, {st['bytes'] / 1e6:.2f} MB, rendered in "
              f"{outputs['video_s']:.0f} s; a frame: {outputs['frame']})")
    else:
        print(f"{outputs['no_video']}; the stick figure instead: {outputs['gif']}")
    print(f"path  {outputs['path_plot']}\nplot  {outputs['plot']}")
    (run_dir / "demo_results.json").write_text(json.dumps(result, indent=1))
    print(f"results: {run_dir / 'demo_results.json'} (total {result['total_s']:.0f} s)")
    return result
