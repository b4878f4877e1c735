"""One evaluation study: prompts -> policies of each method -> scores, per-task summaries, novelty.

Methods: the generator (K policies per prompt), the generator on prompts with action noise,
other generators (e.g. another preset), nearest-checkpoint retrieval, noised retrieval (K per
prompt), the average of the nearest checkpoints and behavior cloning (baselines.py).
Every method is scored by the same runner, in the same configurations.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from ..errors import check
from .baselines import (BCConfig, NoiseConfig, average_of_nearest, behavior_cloning, build_retrieval_index,
                        noised_retrieval, retrieve)
from .metrics import group_average, summarize_task
from .novelty import novelty
from .runner import EvalSettings, MetaWorldSuite, check_compatible, evaluate_params
from .sources import PromptItem, add_action_noise

BASELINES = ("retrieval", "noised-retrieval", "average", "bc", "bc-task")
NEEDS_CHECKPOINTS = ("retrieval", "noised-retrieval", "average")  # these search the training checkpoints
GEN_BATCH = 32  # prompts per generation call (bounds memory for large presets)


@dataclass
class StudyConfig:
    num_policies: int = 1  # K generated policies per prompt
    seed: int = 0  # generation seed (evaluation configurations are seeded by eval.seed)
    action_noise: float = 0.0  # > 0 adds the robustness variant: noise of this std on the prompt actions
    baselines: tuple[str, ...] = ()
    novelty: bool = True
    eval: EvalSettings = field(default_factory=EvalSettings)
    bc: BCConfig = field(default_factory=BCConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)  # noised-retrieval
    average_k: int = 5  # nearest checkpoints averaged by the `average` baseline

    def validate(self) -> "StudyConfig":
        check(self.num_policies >= 1, f"policies per prompt must be >= 1, got {self.num_policies}")
        for b in self.baselines:
            check(b in BASELINES, f"unknown baseline {b!r} (choose from {', '.join(BASELINES)})")
        check(self.average_k >= 1, f"average baseline: k must be >= 1, got {self.average_k}")
        self.noise.validate()
        self.eval.validate()
        return self


def generate_params(gen, prompts: list[PromptItem], k: int, seed: int) -> np.ndarray:
    """-> (N, K, P); batched in fixed chunks so results do not depend on anything but the seed."""
    out = []
    for s in range(0, len(prompts), GEN_BATCH):
        chunk = [p.trajectory for p in prompts[s:s + GEN_BATCH]]
        out.append(gen.generate(chunk, num_policies=k, seed=seed * 1000003 + s).params)
    return np.concatenate(out)


def check_prompts(gen, prompts: list[PromptItem], suite) -> None:
    check(len(prompts) > 0, "no prompt trajectories to evaluate")
    check_compatible(gen.spec, sorted({p.task for p in prompts}), suite)
    for p in prompts:
        gen.check_prompt(p.trajectory, where=f"prompt {p.id}")


def _method_result(name, params, prompts, spec, cfg: StudyConfig, suite, bank, timing) -> dict:
    """params (N, K, P) -> scores, per-task summaries, group averages, novelty."""
    N, K = params.shape[:2]
    tasks = [p.task for p in prompts for _ in range(K)]
    t0 = time.perf_counter()
    scores = evaluate_params(spec, params.reshape(N * K, -1), tasks, cfg.eval, suite, desc=f"eval {name}")
    timing[f"evaluate {name}"] = time.perf_counter() - t0
    policies = [{"prompt": prompts[i].id, "task": prompts[i].task, "k": k, **asdict(scores[i * K + k])}
                for i in range(N) for k in range(K)]
    summaries = []
    for task in dict.fromkeys(p.task for p in prompts):
        rows = [r for r in policies if r["task"] == task]
        summaries.append(summarize_task(task, [r["success_rate"] for r in rows], [r["prompt"] for r in rows],
                                        [r["mean_return"] for r in rows], [r["first_success"] for r in rows],
                                        seen=suite.seen(task)))
    res = {"tasks": [s.row() for s in summaries], "policies": policies}
    nov = None
    if cfg.novelty:
        src = np.stack([np.repeat(p.source_params[None], K, 0) if p.source_params is not None
                        else np.full((K, params.shape[2]), np.nan, np.float32) for p in prompts]).reshape(N * K, -1)
        nov = novelty(params.reshape(N * K, -1), src, bank)
        for k, field in (("to_nearest_checkpoint", "cos_nearest_checkpoint"),
                         ("to_nearest_checkpoint_centered", "cos_nearest_checkpoint_centered"),
                         ("nearest_distance_ratio", "nearest_distance_ratio")):
            for r, c in zip(policies, nov.get(k, [None] * len(policies))):
                r[field] = None if c is None else float(c)
        known = iter(nov.get("to_prompt_policy", []))
        for r, p in zip(policies, np.repeat(np.arange(N), K)):
            r["cos_prompt_policy"] = float(next(known)) if prompts[p].source_params is not None and "to_prompt_policy" in nov else None
    for group, flag in (("seen", True), ("unseen", False), ("all", None)):
        sel = [s for s in summaries if flag is None or s.seen is flag]
        if not sel:
            continue
        res[group] = group_average(sel)
        if nov is not None:
            names = {s.task for s in sel}
            res[group]["novelty"] = {k: _stats([r[k] for r in policies if r["task"] in names and r.get(k) is not None])
                                     for k in ("cos_prompt_policy", "cos_nearest_checkpoint",
                                               "cos_nearest_checkpoint_centered", "nearest_distance_ratio")}
    return res


def _stats(v) -> dict:
    v = np.asarray(v, dtype=np.float64)
    if v.size == 0:
        return {"n": 0}
    return {"n": int(v.size), "mean": float(v.mean()), "std": float(v.std()), "min": float(v.min()),
            "max": float(v.max())}


def run_study(gen, prompts: list[PromptItem], cfg: StudyConfig | None = None, checkpoints=None,
              other_generators: dict | None = None, suite=None, label: str = "generated", on_method=None) -> dict:
    """gen: the PolicyGenerator; checkpoints: its training PolicyDataset (retrieval, novelty);
    other_generators: {name: PolicyGenerator} evaluated on the same prompts;
    on_method(results): called after each method is scored (e.g. to write partial reports)."""
    cfg = (cfg or StudyConfig()).validate()
    suite = suite or MetaWorldSuite()
    for b in cfg.baselines:
        check(b not in NEEDS_CHECKPOINTS or checkpoints is not None,
              f"the {b} baseline needs the training checkpoints (a dataset root with checkpoints/, or --checkpoints)")
    prompts = [replace(p, task=suite.task_name(p.task)) for p in prompts]
    check_prompts(gen, prompts, suite)
    for name, g in (other_generators or {}).items():
        check(g.spec.num_params == gen.spec.num_params, f"generator {name!r} has spec {g.spec.name!r}, not {gen.spec.name!r}")
    timing: dict[str, float] = {}
    bank = checkpoints.params() if (checkpoints is not None and cfg.novelty) else None
    made: dict[str, np.ndarray] = {}  # the generator's params (noised-retrieval matches their spread)
    extras: dict[str, dict] = {}  # what a method reports beside its scores
    cache: dict = {}

    def index():
        if "index" not in cache:
            cache["index"] = build_retrieval_index(gen, checkpoints)
        return cache["index"]

    def same_task(tasks):
        return float(np.mean([t == p.task for t, p in zip(tasks, prompts)]))

    def generated(g):
        return lambda: generate_params(g, prompts, cfg.num_policies, cfg.seed)

    def noisy():
        return generate_params(gen, add_action_noise(prompts, cfg.action_noise, cfg.seed), cfg.num_policies, cfg.seed)

    def retrieval():
        p, tasks = retrieve(gen, index(), prompts)
        extras["retrieval"] = {"retrieved_same_task": same_task(tasks)}
        return p[:, None]

    def noised():
        p, noise = noised_retrieval(gen, index(), prompts, cfg.num_policies, cfg.noise, made[label], seed=cfg.seed)
        extras["noised-retrieval"] = {"noise": noise}
        return p

    def average():
        avg, rows = average_of_nearest(gen, index(), prompts, cfg.average_k)
        tasks = np.asarray(index().tasks, dtype=object)[rows]
        extras["average"] = {"k": int(rows.shape[1]), "neighbours_same_task": float(np.mean(
            [[t == p.task for t in ts] for ts, p in zip(tasks, prompts)]))}
        return avg[:, None]

    def bc(pool):
        return lambda: behavior_cloning(gen.spec, prompts, BCConfig(**{**asdict(cfg.bc), "pool": pool}),
                                        progress=cfg.eval.progress)[:, None]

    # produced and scored one after the other, so a partial run already has the generator's numbers
    methods = [(label, generated(gen))]
    if cfg.action_noise > 0:
        methods.append((f"{label} (action noise {cfg.action_noise:g})", noisy))
    methods += [(name, generated(g)) for name, g in (other_generators or {}).items()]
    makers = {"retrieval": retrieval, "noised-retrieval": noised, "average": average, "bc": bc("prompt"),
              "bc-task": bc("task")}
    methods += [(b, makers[b]) for b in cfg.baselines]

    results = {"settings": {"num_policies": cfg.num_policies, "seed": cfg.seed, "action_noise": cfg.action_noise,
                            "baselines": list(cfg.baselines), "eval": asdict(cfg.eval), "bc": asdict(cfg.bc),
                            "noise": asdict(cfg.noise), "average_k": cfg.average_k,
                            "prompts": len(prompts), "spec": gen.spec.name,
                            "robot": getattr(suite, "robot", None)},
               "prompt_success": _prompt_success(prompts), "methods": {}, "timing_s": timing}
    for name, make in methods:
        t0 = time.perf_counter()
        params = make()
        if name == label:
            made[name] = params
        timing[f"make {name}"] = time.perf_counter() - t0
        results["methods"][name] = _method_result(name, params, prompts, gen.spec, cfg, suite, bank, timing)
        results["methods"][name].update(extras.get(name, {}))
        if name == "noised-retrieval":  # the scale each policy was drawn with, beside its scores
            per_prompt, K = extras[name]["noise"]["per_prompt"], params.shape[1]
            for j, r in enumerate(results["methods"][name]["policies"]):
                r["noise_std"], r["noise_relative"] = per_prompt[j // K]["std"], per_prompt[j // K]["relative"]
        if on_method is not None:
            on_method(results)
    return results


def _prompt_success(prompts: list[PromptItem]) -> dict:
    """How the prompts themselves did (their own success flags), per task."""
    out = {}
    for task in dict.fromkeys(p.task for p in prompts):
        flags = [p.trajectory.first_success >= 0 for p in prompts if p.task == task]
        out[task] = float(np.mean(flags))
    return out
