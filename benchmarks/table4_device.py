"""Paper Table 4 with a generator trained on a borrowed GPU machine, evaluated here (MetaWorld on CPU).

The reference CPU dataset (~500 MB) does not travel to a device machine (64 MiB per call), so three steps:

    # 1. here: pack what training reads (same arrays as train.TrainingData.from_dataset) and the windows
    #    the generator reads of the evaluation prompts (the first 20 per Table-4 task, reproduce_table4 order)
    .venv/bin/python benchmarks/table4_device.py pack --data data/reference-cpu --out .pack/table4.npz
    # 2. on the GPU machine: rebuild TrainingData, train each preset with train.train_generator (the code path of
    #    train_from_dataset), generate 1 policy per prompt with study.generate_params (seed 0), write them to OUT
    python3 benchmarks/table4_device.py train --pack .pack/table4.npz --presets paper,cpu --work runs/dev --out $OUT
    # 3. here: score the returned parameters with run_study, same settings as reproduce_table4 --stage eval
    .venv/bin/python benchmarks/table4_device.py eval --params DIR --data data/reference-cpu --out runs/table4-paper

What the pack changes, and nothing else: checkpoint parameters travel as float16 (relative RMS error 2e-4;
byte planes split, then lzma: 101 MB -> ~37 MB); the embedding's state/action normalizers are fitted on two
rows (mean +- std) that have the full trajectories' mean and population std (the 1.1M states themselves stay
here). Prompt windows and the trajectory windows (first n state-action pairs, m states after the first success)
are float32, bit-exact. Evaluation replays the returned parameters in run_study's order and checks, per
prompt, that the device generated from the same windows (sha1 of the windows) with the same chunk seed.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import lzma
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from maa_core.config import GeneratorConfig  # noqa: E402
from maa_core.evaluation.sources import PromptItem  # noqa: E402
from maa_core.models.behavior import prompt_windows  # noqa: E402
from maa_core.trajectory import Trajectory  # noqa: E402

PER_FILE = 160  # prompts per returned parameter file (160 x 22,664 float32 = 14.5 MB < 16 MiB)


def _z(a: np.ndarray) -> np.ndarray:
    """lzma of the array's bytes, split into byte planes (high bytes of nearby floats compress well)."""
    b = np.ascontiguousarray(a).view(np.uint8).reshape(-1, a.dtype.itemsize).T.tobytes()
    return np.frombuffer(lzma.compress(b, preset=1), np.uint8)


def _unz(z: np.ndarray, dtype, shape) -> np.ndarray:
    size = np.dtype(dtype).itemsize
    b = np.frombuffer(lzma.decompress(z.tobytes()), np.uint8).reshape(size, -1).T
    return np.ascontiguousarray(b).view(dtype).reshape(shape)


def windows_sha1(h: np.ndarray, v: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(h, np.float32).tobytes() + np.ascontiguousarray(v, np.float32).tobytes()).hexdigest()


def surrogate_trajectory(h: np.ndarray, v: np.ndarray, obs_dim: int) -> Trajectory:
    """A short trajectory whose prompt windows are exactly (h (1, n, obs+act), v (1, m, obs)): the n state-action
    pairs, then the m states, with success flagged from the first of them on."""
    n, m = h.shape[1], v.shape[1]
    states = np.concatenate([h[0, :, :obs_dim], v[0]])
    actions = np.concatenate([h[0, :, obs_dim:], np.zeros((m, h.shape[2] - obs_dim), np.float32)])
    success = np.zeros(n + m, bool)
    success[n:] = True
    return Trajectory(states, actions, success)


def eval_prompts(data: Path, per_task: int) -> list[PromptItem]:
    from reproduce_table4 import SEEN, UNSEEN

    from maa_core.evaluation import sources

    prompts = sources.from_dataset(data / "prompts", SEEN + UNSEEN, per_task)
    order = {t: i for i, t in enumerate(SEEN + UNSEEN)}
    prompts.sort(key=lambda p: order[p.task])  # as reproduce_table4
    return prompts


# -- 1. pack (here) ---------------------------------------------------------------------------------------
def pack(a) -> None:
    from maa_core.dataset import PolicyDataset
    from maa_core.train import TrainingData

    ds = PolicyDataset(a.data / "checkpoints")
    cfg = GeneratorConfig.preset_named("paper")
    check_cfg = GeneratorConfig.preset_named("cpu").embedding
    assert (check_cfg.n_steps, check_cfg.m_states, check_cfg.mode) == (cfg.embedding.n_steps, cfg.embedding.m_states,
                                                                     cfg.embedding.mode), "presets read other windows"
    d = TrainingData.from_dataset(ds, cfg)  # diffusion_pairing "own", as runs/table4
    assert d.pairs is None
    s_mean, s_std = d.states.mean(0), d.states.std(0, unbiased=False)
    a_mean, a_std = d.actions.mean(0), d.actions.std(0, unbiased=False)
    params = d.params.numpy()
    p16 = params.astype(np.float16)
    err = p16.astype(np.float32) - params
    print(f"checkpoints {params.shape}, trajectories {tuple(d.h_in.shape)}; float16 max abs error {np.abs(err).max():.2e}, "
          f"relative RMS {np.sqrt((err ** 2).mean() / (params ** 2).mean()):.2e}")
    prompts = eval_prompts(a.data, a.prompts_per_task)
    wins = [prompt_windows(p.trajectory, cfg.embedding) for p in prompts]
    ph, pv = np.stack([w[0] for w in wins]), np.stack([w[1] for w in wins])
    for p, h, v in zip(prompts, ph, pv):  # the surrogate reads the same windows as the prompt
        hs, vs = prompt_windows(surrogate_trajectory(h, v, ds.traj_obs_dim), cfg.embedding)
        assert np.array_equal(hs, h) and np.array_equal(vs, v), p.id
    man = (a.data / "checkpoints" / "manifest.json").read_bytes()
    meta = {"spec": ds.manifest["spec"], "obs_dim": ds.traj_obs_dim, "act_dim": ds.spec.act_dim,
            "checkpoints_manifest_sha256": hashlib.sha256(man).hexdigest(), "params_shape": list(params.shape),
            "h_in_shape": list(d.h_in.shape), "n_steps": cfg.embedding.n_steps, "m_states": cfg.embedding.m_states,
            "prompt_ids": [p.id for p in prompts], "prompt_tasks": [p.task for p in prompts],
            "prompt_sha1": [windows_sha1(h, v) for h, v in zip(ph, pv)]}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(a.out, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), params=_z(p16),
             h_in=_z(d.h_in.numpy()), v_in=d.v_in.numpy(), traj_record=d.traj_record.numpy(),
             states2=torch.stack([s_mean + s_std, s_mean - s_std]).numpy(),
             actions2=torch.stack([a_mean + a_std, a_mean - a_std]).numpy(),
             norm=torch.cat([s_mean, s_std, a_mean, a_std]).numpy(), prompt_h=_z(ph), prompt_v=pv)
    print(f"{a.out}: {a.out.stat().st_size / 2 ** 20:.1f} MiB, {len(prompts)} evaluation prompts")


# -- 2. train and generate (device) -----------------------------------------------------------------------
def _load_pack(path: Path):
    from maa_core.train import TrainingData

    z = np.load(path)
    meta = json.loads(z["meta"].tobytes())
    params = _unz(z["params"], np.float16, meta["params_shape"]).astype(np.float32)
    h_in = _unz(z["h_in"], np.float32, meta["h_in_shape"])
    data = TrainingData(torch.from_numpy(params), torch.from_numpy(h_in), torch.from_numpy(z["v_in"]),
                        torch.from_numpy(z["traj_record"]), torch.from_numpy(z["states2"]), torch.from_numpy(z["actions2"]))
    n = len(meta["prompt_ids"])
    ph = _unz(z["prompt_h"], np.float32, (n, 1, meta["n_steps"], meta["obs_dim"] + meta["act_dim"]))
    return meta, data, ph, z["prompt_v"], z["norm"]


def _losses(run_dir: Path) -> dict:
    """Mean of the last 20 logged values of each metric (logged every 10 steps: the last 200 steps)."""
    import csv

    out = {}
    for f in sorted((run_dir / "logs").glob("*/version_0/metrics.csv")):
        rows = list(csv.DictReader(f.open()))
        for k in (k for k in (rows[0] if rows else {}) if k not in ("epoch", "step")):
            vals = [float(r[k]) for r in rows if r.get(k) not in (None, "")]
            if vals:
                out[k] = float(np.mean(vals[-20:]))
    return out


def _watch(work: Path, every_s: float = 60.0) -> None:
    """Prints the last logged step of each stage every minute (the run itself has no progress bar)."""
    import threading

    t0 = time.perf_counter()

    def loop():
        while True:
            time.sleep(every_s)
            last = {}
            for f in sorted(work.glob("*/logs/*/version_0/metrics.csv")):
                lines = f.read_text().strip().splitlines()
                if len(lines) > 1:
                    row = dict(zip(lines[0].split(","), lines[-1].split(",")))
                    last[f"{f.parents[3].name}/{f.parents[1].name}"] = row.get("step")
            print(f"[{time.perf_counter() - t0:.0f} s] last logged step: {last}", flush=True)

    threading.Thread(target=loop, daemon=True).start()


def train(a) -> None:
    from maa_core.evaluation.study import generate_params
    from maa_core.specs import PolicySpec
    from maa_core.train import TrainerOptions, train_generator

    t_start = time.perf_counter()
    # PyTorch's CUDA defaults (float32 matmuls, TF32 cuDNN convolutions: the paper U-Net's ~0.8 TFLOP per batch
    # would not fit a 10-minute call in plain float32); cuDNN picks its fastest algorithm per shape
    torch.backends.cudnn.benchmark = True
    _watch(a.work)
    meta, data, ph, pv, norm = _load_pack(a.pack)
    spec, obs_dim, act_dim = PolicySpec.from_dict(meta["spec"]), meta["obs_dim"], meta["act_dim"]
    print(f"pack loaded in {time.perf_counter() - t_start:.1f} s: {tuple(data.params.shape)} params, device "
          f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu'}; manifest {meta['checkpoints_manifest_sha256'][:12]}")
    prompts = [PromptItem(pid, task, surrogate_trajectory(h, v, obs_dim))
               for pid, task, h, v in zip(meta["prompt_ids"], meta["prompt_tasks"], ph, pv)]
    a.out.mkdir(parents=True, exist_ok=True)
    summary = {"pack_manifest_sha256": meta["checkpoints_manifest_sha256"], "prompt_ids": meta["prompt_ids"],
               "prompt_sha1": meta["prompt_sha1"], "presets": {}}
    for preset in a.presets.split(","):
        elapsed = time.perf_counter() - t_start
        if a.stop_after_s and elapsed > a.stop_after_s:
            print(f"skipping preset {preset}: {elapsed:.0f} s elapsed")
            continue
        over = {} if not a.steps else {"train_autoencoder.steps": a.steps[0], "train_embedding.steps": a.steps[1],
                                       "train_diffusion.steps": a.steps[2]}
        cfg = GeneratorConfig.preset_named(preset, **over)
        run_dir = a.work / f"gen-{preset}.run"
        t0 = time.perf_counter()
        gen = train_generator(data, spec, obs_dim, act_dim, cfg,
                              TrainerOptions(run_dir=run_dir, progress=False, checkpoint_every=a.checkpoint_every),
                              a.work / f"gen-{preset}")
        t_train = time.perf_counter() - t0
        sn, ss, an, asd = np.split(norm, [obs_dim, 2 * obs_dim, 2 * obs_dim + act_dim])
        e = gen.embedding
        norm_err = max(float((e.state_norm.mean.cpu() - torch.from_numpy(sn)).abs().max()),
                       float((e.state_norm.std.cpu() - torch.from_numpy(ss).clamp_min(e.state_norm.min_std)).abs().max()),
                       float((e.action_norm.mean.cpu() - torch.from_numpy(an)).abs().max()),
                       float((e.action_norm.std.cpu() - torch.from_numpy(asd).clamp_min(e.action_norm.min_std)).abs().max()))
        t0 = time.perf_counter()
        params = generate_params(gen, prompts, 1, 0)  # (N, 1, P), as run_study with seed 0
        t_gen = time.perf_counter() - t0
        with torch.inference_mode():  # autoencoder fidelity on the training checkpoints
            x = data.params.to(gen.device)
            rec = torch.cat([gen.autoencoder.latents_to_params(gen.autoencoder.params_to_latents(x[i:i + 256]))
                             for i in range(0, len(x), 256)])
            ae_cos = float(torch.nn.functional.cosine_similarity(rec, x, dim=1).mean())
        gen_cpu = gen.to("cpu")  # the same generator on the CPU: how much the device changes the output
        ref = generate_params(gen_cpu, prompts[:32], 1, 0)
        cos = torch.nn.functional.cosine_similarity(torch.from_numpy(ref[:, 0]), torch.from_numpy(params[:32, 0]), dim=1)
        for i in range(0, len(params), PER_FILE):
            np.save(a.out / f"{preset}-params-{i // PER_FILE}.npy", params[i:i + PER_FILE].astype(np.float32))
        summary["presets"][preset] = {
            "train_s": t_train, "generate_s": t_gen, "steps": [cfg.train_autoencoder.steps, cfg.train_embedding.steps,
                                                            cfg.train_diffusion.steps],
            "losses_last200": _losses(run_dir), "ae_cos_train_checkpoints": ae_cos, "normalizer_max_abs_err": norm_err,
            "cuda_vs_cpu_generation": {"prompts": len(ref), "cos_min": float(cos.min()), "cos_mean": float(cos.mean()),
                                       "max_abs": float(np.abs(ref - params[:len(ref)]).max())},
            "files": [f"{preset}-params-{i // PER_FILE}.npy" for i in range(0, len(params), PER_FILE)],
            "config": cfg.to_dict()}
        print(json.dumps({k: v for k, v in summary["presets"][preset].items() if k != "config"}))
        (a.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"total {time.perf_counter() - t_start:.0f} s")


# -- 3. evaluate (here) -----------------------------------------------------------------------------------
class ReplayGenerator:
    """Stands in for a PolicyGenerator in run_study: returns parameters generated elsewhere, in call order,
    after checking that each prompt is the one (same windows, same chunk seed) they were generated from."""

    def __init__(self, spec, embedding_cfg, params: np.ndarray, sha1: list[str], obs_dim: int, act_dim: int):
        self.spec, self.cfg, self.params, self.sha1 = spec, embedding_cfg, params, sha1
        self.obs_dim, self.act_dim, self.cursor = obs_dim, act_dim, 0

    def check_prompt(self, traj, where="prompt"):
        return traj.validate(self.obs_dim, self.act_dim, where=where)

    def generate(self, trajectories, num_policies=1, seed=None):
        from maa_core.evaluation.study import GEN_BATCH
        from maa_core.pipeline import GenerationOutput

        s = self.cursor
        assert num_policies == self.params.shape[1] and seed == s and s % GEN_BATCH == 0, (seed, s)
        for k, t in enumerate(trajectories):
            assert windows_sha1(*prompt_windows(t, self.cfg)) == self.sha1[s + k], f"prompt {s + k} differs"
        self.cursor = s + len(trajectories)
        return GenerationOutput(self.params[s:self.cursor], self.spec)


def evaluate(a) -> None:
    from reproduce_table4 import Budget, table4

    from maa_core.dataset import PolicyDataset
    from maa_core.evaluation.report import write
    from maa_core.evaluation.runner import EvalSettings
    from maa_core.evaluation.study import StudyConfig, run_study

    torch.set_num_threads(1)
    summary = json.loads((a.params / "summary.json").read_text())
    prompts = eval_prompts(a.data, a.prompts_per_task)
    assert [p.id for p in prompts] == summary["prompt_ids"], "prompts differ from the packed ones"
    ckpts = PolicyDataset(a.data / "checkpoints")
    emb = GeneratorConfig.preset_named("paper").embedding
    gens = {}
    for preset, s in summary["presets"].items():
        params = np.concatenate([np.load(a.params / f) for f in s["files"]])
        gens[f"generated ({preset} preset, GPU)"] = ReplayGenerator(ckpts.spec, emb, params, summary["prompt_sha1"],
                                                                    ckpts.traj_obs_dim, ckpts.spec.act_dim)
    names = list(gens)
    cfg = StudyConfig(num_policies=1, seed=0, action_noise=0.0, baselines=(),
                      eval=EvalSettings(n_configs=a.configs, episodes_per_config=1, workers=a.workers, progress=False))
    t0 = time.perf_counter()

    def report(results):
        results["timing_total_s"] = {"evaluation study": time.perf_counter() - t0, "device": summary["presets"]}
        write(results, a.out, title="Paper Table 4, generators trained on a GPU machine (reference CPU dataset)")
        m = results["methods"]  # table4() reads its per-task table from "generated": the first preset
        (a.out / "table4.md").write_text(table4({"methods": {"generated": m[names[0]], **{n: m[n] for n in names[1:] if n in m}}},
                                                Budget(a.prompts_per_task, a.configs)))

    run_study(gens[names[0]], prompts, cfg, ckpts, {n: gens[n] for n in names[1:]}, label=names[0], on_method=report)
    print((a.out / "table4.md").read_text())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("--data", type=Path, default=Path("data/reference-cpu"))
    p.add_argument("--out", type=Path, default=Path(".pack/table4.npz"))
    p.add_argument("--prompts-per-task", type=int, default=20)
    t = sub.add_parser("train")
    t.add_argument("--pack", type=Path, default=Path(".pack/table4.npz"))
    t.add_argument("--presets", default="paper,cpu")
    t.add_argument("--work", type=Path, default=Path("runs/table4-device"))
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--checkpoint-every", type=int, default=2500, help="steps between resumable Lightning checkpoints")
    t.add_argument("--steps", type=int, nargs=3, metavar=("AE", "EMB", "DIFF"), help="override (smoke tests only)")
    t.add_argument("--stop-after-s", type=float, default=0, help="start no further preset after this many seconds")
    e = sub.add_parser("eval")
    e.add_argument("--params", type=Path, required=True, help="folder with the device's summary.json and *.npy")
    e.add_argument("--data", type=Path, default=Path("data/reference-cpu"))
    e.add_argument("--out", type=Path, default=Path("runs/table4-paper"))
    e.add_argument("--prompts-per-task", type=int, default=20)
    e.add_argument("--configs", type=int, default=5)
    e.add_argument("--workers", type=int, default=1)
    a = ap.parse_args(argv)
    {"pack": pack, "train": train, "eval": evaluate}[a.cmd](a)


if __name__ == "__main__":
    main()
