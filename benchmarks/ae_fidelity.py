"""Do the autoencoder's reconstructions of training checkpoints still work? (diagnostic)

    .venv/bin/python benchmarks/ae_fidelity.py GENERATOR_OR_RUN_DIR --data data/reference-cpu [--n 16]
    .venv/bin/python benchmarks/ae_fidelity.py runs/rs-gen --data data/robosuite-cpu --robot Panda

Takes n checkpoints spread over the dataset, encodes and decodes them with the generator's
autoencoder, and runs original and reconstruction on the checkpoint's own training configuration
(where every checkpoint succeeds) and in 5 random configurations. GENERATOR_OR_RUN_DIR is a
generator folder, or a training run dir whose autoencoder stage is done (autoencoder.done.pt).
"""
import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from maa_core.config import GeneratorConfig  # noqa: E402
from maa_core.dataset import PolicyDataset  # noqa: E402
from maa_core.evaluation.novelty import cosine  # noqa: E402
from maa_core.evaluation.runner import EvalSettings, RobosuiteSuite, evaluate_params, suite_for  # noqa: E402
from maa_core.models import ParameterAutoencoder  # noqa: E402


def load_autoencoder(path: Path, spec, preset: str):
    if (path / "generator.json").is_file():
        from maa_core.pipeline import PolicyGenerator

        return PolicyGenerator.from_pretrained(path, device="cpu").autoencoder
    ae = ParameterAutoencoder(spec, GeneratorConfig.preset_named(preset).autoencoder)
    ae.load_state_dict(torch.load(path / "autoencoder.done.pt", weights_only=True))
    return ae.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("generator", type=Path)
    ap.add_argument("--data", type=Path, default=Path("data/reference-cpu"))
    ap.add_argument("--n", type=int, default=16)
    ap.add_argument("--preset", default="cpu", help="preset of a run dir's autoencoder")
    ap.add_argument("--robot", help="Robosuite tasks: the robot (default Sawyer)")
    a = ap.parse_args()
    torch.set_num_threads(1)
    ck = PolicyDataset(a.data / "checkpoints")
    ae = load_autoencoder(a.generator, ck.spec, a.preset)
    idx = np.linspace(0, len(ck) - 1, a.n).astype(int)
    recs = [ck[int(i)] for i in idx]
    P = np.stack([r.params for r in recs])
    with torch.no_grad():
        R = ae.latents_to_params(ae.params_to_latents(torch.as_tensor(P))).numpy()
    tasks = [r.task for r in recs]
    out = {"cosine": cosine(P, R).tolist()}
    from maa_core.envs.evaluate import NumpyPolicy, evaluate_actor

    suite = suite_for(tasks, a.robot)
    rs = isinstance(suite, RobosuiteSuite)

    def own_config(r):  # MetaWorld: the configuration vector; Robosuite: the placement seed
        return int(r.source["config"][0]) if rs else np.asarray(r.source["config"])

    own = [[evaluate_actor(NumpyPolicy(spec=ck.spec, params=p), r.task, configs=[own_config(r)], keep_trajectories=False,
                           robot=suite.robot if rs else None).success_rate for p in (P[i], R[i])] for i, r in enumerate(recs)]
    s = EvalSettings(workers=1, progress=False)
    rnd_o = [x.success_rate for x in evaluate_params(ck.spec, P, tasks, s, suite)]
    rnd_r = [x.success_rate for x in evaluate_params(ck.spec, R, tasks, s, suite)]
    out.update(own_config_original=float(np.mean([o[0] for o in own])), own_config_reconstruction=float(np.mean([o[1] for o in own])),
               random5_original=float(np.mean(rnd_o)), random5_reconstruction=float(np.mean(rnd_r)),
               mean_cosine=float(np.mean(out["cosine"])))
    print(json.dumps({k: v for k, v in out.items() if k != "cosine"}, indent=1))


if __name__ == "__main__":
    main()
