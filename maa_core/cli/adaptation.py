"""`maa adaptation`: rebuild maa's own walk-these-ways adaptation module in the MuJoCo Go2
(maa_core/collect/adaptation.py; the shipped one is models/go2-adaptation)."""
from __future__ import annotations


def add_parser(sub, name):
    from ..collect.adaptation import AdaptationTrainConfig as C

    p = sub.add_parser(name, help="train the Go2 adaptation module (friction, restitution) in MuJoCo")
    p.add_argument("--out", default="models/go2-adaptation", help="run directory to write (a WTW run layout)")
    p.add_argument("--episodes", type=int, default=C.episodes, help="simulated episodes, one random floor each")
    p.add_argument("--steps", type=int, default=C.steps, help="Adam steps")
    p.add_argument("--seed", type=int, default=C.seed)
    p.add_argument("--no-progress", action="store_true")
    return p


def run(args) -> int:
    from ..collect.adaptation import AdaptationTrainConfig, build
    from ..errors import check

    check(args.episodes >= 5 and args.steps >= 1, "--episodes >= 5 and --steps >= 1")
    info = build(args.out, AdaptationTrainConfig(episodes=args.episodes, steps=args.steps, seed=args.seed),
                 progress=not args.no_progress)
    h = info["heldout"]
    for k in ("friction", "restitution"):
        print(f"{k:<12} held-out MSE {h[k]['mse']:.4f} (mean predictor {h[k]['mean_predictor_mse']:.4f}), "
              f"R^2 {h[k]['r2']:.3f}")
    print(f"data {info['data_seconds']:.0f} s, training {info['train_seconds']:.0f} s -> {args.out}")
    return 0
