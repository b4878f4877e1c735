"""`maa demo` (`make demo`): the main job on the simulated Go2 (config/demo_go2.yaml).

    [1/4] locomotion dataset (MuJoCo, no IsaacGym): built on first use, then reused (only when training)
    [2/4] locomotion generator (segment-mode prompts): the one shipped in `pretrained` (trained by this
          config, float16 weights), a generator trained earlier in run_dir, or trained now
    [3/4] the go2_generate graph over ROS + DDS: the shipped prompt bag -> generator node ->
          actor -> controller node -> simulated Go2; forward speed, falls, swap latency
    [4/4] plot and GIF of the walk; results JSON

Lives on the ROS side because step 3 runs ROS nodes; everything it reuses is in maa_core.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields
from pathlib import Path


from maa_core.config import read_yaml_mapping
from maa_core.errors import check


@dataclass(frozen=True)
class Go2DemoConfig:
    data_dir: str = "data/go2-walk"
    plan: dict = field(default_factory=dict)        # LocoDatasetPlan fields
    distill: dict = field(default_factory=dict)     # LocoDistillConfig overrides (every run of the dataset)
    workers: int = 2
    run_dir: str = "runs/go2-demo"
    wtw_run_dir: str = "../shared/wtw"
    prompt_bag: str = "bags/go2-walk"
    generator: dict = field(default_factory=dict)   # GeneratorConfig overrides (with 'preset')
    pretrained: str = ""                            # shipped generator folder; '' = always train run_dir/generator
    num_candidates: int = 16
    screen_steps: int = 1000                        # generator node sim_screen_steps
    walk_seconds: float = 20.0
    gif_seconds: float = 4.0
    seed: int = 0

    @classmethod
    def load(cls, path) -> "Go2DemoConfig":
        d = read_yaml_mapping(path, "demo config")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        check(not unknown, f"{path}: unknown key(s) {sorted(unknown)} (known: {sorted(known)})")
        return cls(**d)


def generator_config(cfg: Go2DemoConfig):
    from maa_core.config import GeneratorConfig, apply_overrides

    g = dict(cfg.generator)
    return apply_overrides(GeneratorConfig.preset_named(g.pop("preset", "cpu")), g)


def ensure_dataset(cfg: Go2DemoConfig, say=print) -> Path:
    from maa_core.collect.locomotion import LocoDatasetPlan, build_locomotion_dataset

    root = Path(cfg.data_dir)
    plan = LocoDatasetPlan(**cfg.plan)
    t0 = time.time()
    say(f"[1/4] locomotion dataset {root} ({plan.runs} distilled runs, {plan.heldout} held-out prompts; "
        f"reused when complete)")
    build_locomotion_dataset(root, plan, dict(cfg.distill), workers=cfg.workers)
    say(f"      ready ({time.time() - t0:.0f} s)")
    return root


def trained_generator(cfg: Go2DemoConfig) -> Path | None:
    """The generator the demo runs without training: run_dir/generator if trained earlier, else the
    shipped `pretrained` folder; None = train."""
    for d in (Path(cfg.run_dir) / "generator", Path(cfg.pretrained) if cfg.pretrained else None):
        if d is not None and (d / "generator.json").is_file():
            return d
    return None


def ensure_generator(cfg: Go2DemoConfig, data_dir: Path | None = None, say=print, progress: bool = True,
                     train: bool = False) -> Path:
    """trained_generator(cfg), or (train=True, or none there) trains run_dir/generator from the dataset
    (built first when `data_dir` is None)."""
    from maa_core.train import TrainerOptions, train_from_dataset

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
    say(f"      done ({time.time() - t0:.0f} s)")
    return gen_dir


def prompt_metadata(bag: Path) -> dict:
    meta = bag / "prompt.json"
    return json.loads(meta.read_text()) if meta.is_file() else {}


SHIP_SHARD_BYTES = 4 * 2 ** 20  # committed files stay well below the repository's 5 MB limit


def run_go2_demo(config_path="config/demo_go2.yaml", progress: bool = True, train: bool = False,
                 export: str | None = None) -> dict:
    """train: train run_dir/generator from the dataset even if one exists (shipped or earlier);
    export: then write its float16 shipping copy to this folder (how `pretrained` is made)."""
    import torch

    from maa_core.go2.locomotion import write_gif, write_plot
    from maa_core.go2.walk import WalkCriteria

    from .go2_walk import GraphWalkConfig, run_graph_walk

    t0 = time.time()
    cfg = Go2DemoConfig.load(config_path)
    check((Path(cfg.wtw_run_dir) / "adaptation_module_latest.jit").is_file() or
          (Path(cfg.wtw_run_dir) / "checkpoints" / "adaptation_module_latest.jit").is_file(),
          f"{cfg.wtw_run_dir}: no walk-these-ways adaptation module (wtw_run_dir in {config_path})")
    bag = Path(cfg.prompt_bag)
    check(bag.is_dir(), f"{bag}: the prompt bag is missing (prompt_bag in {config_path})")
    if not train and trained_generator(cfg) is not None:
        print("[1/4] locomotion dataset: not needed (the generator is already trained)")
    gen_dir = ensure_generator(cfg, progress=progress, train=train)  # builds the dataset first if it trains
    if export:
        from maa_core.pipeline import PolicyGenerator

        out = PolicyGenerator.from_pretrained(gen_dir, device="cpu").save_pretrained(
            export, dtype=torch.float16, max_shard_bytes=SHIP_SHARD_BYTES)
        print(f"      exported a float16 copy in shards of <= {SHIP_SHARD_BYTES / 2 ** 20:g} MiB -> {out}")
    run_dir = Path(cfg.run_dir)
    meta = prompt_metadata(bag)
    print(f"[3/4] go2_generate graph: prompt bag {bag} ({meta.get('description', 'recorded walk')}) -> generator "
          f"node -> controller node -> simulated Go2 over DDS")
    walk = run_graph_walk(GraphWalkConfig(str(gen_dir), str(bag), cfg.wtw_run_dir, seconds=cfg.walk_seconds,
                                          num_candidates=cfg.num_candidates, seed=cfg.seed,
                                          sim_screen_steps=cfg.screen_steps), run_dir / "graph")
    m = walk.metrics
    walks = (not m["fell"]) and m["speed"] >= WalkCriteria().min_speed
    print("[4/4] plot and animation")
    z, s = walk.log, walk.run_start
    sel = (z["t"] >= s) & (z["t"] <= s + cfg.walk_seconds)
    plot = write_plot(run_dir / "walk.png", z["t"][sel], z["pos"][sel],
                      f"generated actor on the simulated Go2 (ROS path): {m['speed']:.2f} m/s, "
                      f"{'fell' if m['fell'] else 'no fall'}", meta.get("speed"))
    import numpy as np
    poses = np.concatenate([z["pos"], z["quat"], z["q"]], axis=1)[sel]
    dt = float(np.median(np.diff(z["t"][sel]))) if sel.sum() > 1 else 0.02
    gif = write_gif(run_dir / "walk.gif", poses, dt, cfg.gif_seconds)
    result = {"walks": walks, **m, "swap_latency_ms": round(walk.swap_latency_ms, 2),
              "prompt_to_actor_s": round(walk.generation_s, 2), "prompt": meta, "plot": str(plot), "gif": str(gif),
              "total_s": round(time.time() - t0, 1)}
    print()
    print(f"  forward speed   {m['speed']:.3f} m/s over {m['seconds']:.1f} s simulated "
          f"(prompt walked {meta.get('speed', float('nan')):.3f} m/s)")
    print(f"  falls           {int(m['fell'])}")
    print(f"  step frequency  {m['step_frequency']:.2f} Hz (prompt {meta.get('step_frequency', float('nan')):.2f} Hz)")
    print(f"  lateral drift   {m['lateral']:.2f} m")
    print(f"  swap latency    {walk.swap_latency_ms:.1f} ms (actor message -> first tick running it)")
    print(f"  prompt -> actor {walk.generation_s:.1f} s ({cfg.num_candidates} candidates, each screened by a "
          f"{cfg.screen_steps}-step rollout in the sim)")
    print(f"  verdict         {'WALKS' if walks else 'does not walk'} (>= 0.4 m/s for {cfg.walk_seconds:.0f} s, no fall)")
    print(f"\nplot {plot}\nGIF  {gif} (matplotlib stick figure: no OpenGL backend for MuJoCo rendering here)")
    (run_dir / "demo_results.json").write_text(json.dumps(result, indent=1))
    print(f"results: {run_dir / 'demo_results.json'} (total {result['total_s']:.0f} s)")
    return result
