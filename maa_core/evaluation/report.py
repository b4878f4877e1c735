"""Study results -> results.json, report.md (Markdown tables) and figures (matplotlib, Agg)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# Paper Table 4 (100 prompts per task): per-group averages, for the side-by-side table
PAPER_TABLE4 = {"seen": {"top5": 0.959, "qualified": 0.371}, "unseen": {"top5": 0.878, "qualified": 0.163}}
# novelty field -> column (novelty.py: the paper's cosine, and the two that see past a shared base)
NOVELTY_COLUMNS = (("cos_prompt_policy", "cos→prompt policy"), ("cos_nearest_checkpoint", "cos→nearest ckpt"),
                   ("cos_nearest_checkpoint_centered", "centered cos→nearest"),
                   ("nearest_distance_ratio", "dist→nearest / spacing"))
COLUMNS = ("task", "seen", "prompts", "policies", "mean", "std", "top5", "top10", "qualified", "mean_first_success")


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "seen" if v else "unseen"
    if isinstance(v, float):
        return "nan" if np.isnan(v) else f"{v:.3f}"
    return str(v)


def task_table(method: dict) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    for row in method["tasks"]:
        lines.append("| " + " | ".join(_fmt(row.get(c)) for c in COLUMNS) + " |")
    return "\n".join(lines)


def _note(m: dict) -> str:
    """What a baseline was made with, in a few words."""
    if "noise" in m:
        return f"noise {100 * m['noise']['mean_relative']:.1f} % of ckpt RMS" + (" (generator's spread)" if m["noise"]["scale"] is None else "")
    if "neighbours_same_task" in m:
        return f"k={m['k']}, {m['neighbours_same_task']:.2f} same task"
    if "retrieved_same_task" in m:
        return f"{m['retrieved_same_task']:.2f} same task"
    return ""


def method_rows(results: dict) -> list[dict]:
    """One row per method over all tasks (each task's metrics as in metrics.py, averaged over tasks)."""
    rows = []
    for name, m in results["methods"].items():
        g = m["all"]
        per_prompt = len(m["policies"]) / max(results["settings"]["prompts"], 1)
        row = {"method": name, "policies/prompt": f"{per_prompt:g}", "tasks": g["tasks"]}
        for f in ("mean", "top5", "top10", "qualified"):
            row[f] = f"{g[f]:.3f}"
        nov = g.get("novelty", {})
        for k, short in NOVELTY_COLUMNS:
            row[short] = f"{nov[k]['mean']:.3f}" if nov.get(k, {}).get("n") else "–"
        row["made with"] = _note(m) or "–"
        rows.append(row)
    return rows


def _table(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    cols = list(rows[0])
    return ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)] + \
        ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]


def summary_rows(results: dict) -> list[dict]:
    """One row per (method, group): mean ± std over tasks of mean / top-5 / top-10 / qualified."""
    rows = []
    for name, m in results["methods"].items():
        for group in ("seen", "unseen", "all"):
            g = m.get(group)
            if g is None or (group == "all" and ("seen" in m) + ("unseen" in m) < 2):
                continue
            row = {"method": name, "group": group, "tasks": g["tasks"]}
            for f in ("mean", "top5", "top10", "qualified"):
                row[f] = f"{g[f]:.3f} ± {g[f + '_std']:.3f}"
            nov = g.get("novelty", {})
            for k, short in NOVELTY_COLUMNS:
                row[short] = f"{nov[k]['mean']:.3f}" if nov.get(k, {}).get("n") else "–"
            rows.append(row)
    return rows


def markdown(results: dict, title: str = "Evaluation") -> str:
    s = results["settings"]
    ev = s["eval"]
    out = [f"# {title}", "",
           f"{s['prompts']} prompts, {s['num_policies']} policies per prompt, spec `{s['spec']}`; each policy in "
           f"{ev['n_configs']} random initial configurations × {ev['episodes_per_config']} episode(s), "
           f"{ev['max_episode_steps']} steps; configuration seed {ev['seed']}, generation seed {s['seed']}"
           + (f"; policies run on the {s['robot']}" if s.get("robot") else "")
           + (f"; episodes end {ev['stop_after_success']} steps after success" if ev.get("stop_after_success") is not None else "")
           + ".", "",
           "## Methods side by side (all tasks, mean over tasks)", "",
           "top5 / top10: mean success of a task's 5 / 10 best policies; qualified: share of policies that succeed "
           "in every episode; cos: parameter cosine of each policy to the prompt's own policy and to its nearest "
           "training checkpoint (paper Fig. 11).", ""]
    out += _table(method_rows(results))
    out += ["", "## Summary (mean ± std over tasks)", ""] + _table(summary_rows(results))
    ps = results.get("prompt_success", {})
    if ps:
        out += ["", "Prompts' own success (their recorded episode): " + ", ".join(f"{t} {v:.2f}" for t, v in ps.items())]
    for name, m in results["methods"].items():
        out += ["", f"## {name}", "", task_table(m)]
        if "retrieved_same_task" in m:
            out += ["", f"Retrieved checkpoint is of the prompt's task for {m['retrieved_same_task']:.2f} of the prompts."]
        if "neighbours_same_task" in m:
            out += ["", f"Average of the {m['k']} nearest checkpoints; {m['neighbours_same_task']:.2f} of them are of "
                        "the prompt's task."]
        if "noise" in m:
            rel = [q["relative"] for q in m["noise"]["per_prompt"]]
            out += ["", f"Noise: {m['noise']['rule']}; per prompt {100 * min(rel):.2f}–{100 * max(rel):.2f} % "
                        f"(mean {100 * m['noise']['mean_relative']:.2f} %) of the checkpoint's RMS."]
    if results.get("timing_s"):
        out += ["", "## Time (s)", ""] + [f"- {k}: {v:.1f}" for k, v in results["timing_s"].items()]
    return "\n".join(out) + "\n"


def figures(results: dict, out_dir) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = list(results["methods"])
    tasks = [r["task"] for r in results["methods"][names[0]]["tasks"]]
    paths = []
    for metric, label in (("top5", "top-5 success"), ("mean", "mean success")):
        fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(tasks) * max(1, len(names)) ** 0.5), 4))
        w = 0.8 / len(names)
        x = np.arange(len(tasks))
        for j, n in enumerate(names):
            vals = {r["task"]: r[metric] for r in results["methods"][n]["tasks"]}
            ax.bar(x + j * w - 0.4 + w / 2, [vals.get(t, np.nan) for t in tasks], w, label=n)
        ax.set_xticks(x, [t + ("" if r["seen"] is not False else "*") for t, r in
                          zip(tasks, results["methods"][names[0]]["tasks"])], rotation=45, ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(label)
        ax.set_title(f"{label} per task (* unseen)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        p = out_dir / f"tasks_{metric}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, 1, 12)
    ax.hist([[r["success_rate"] for r in results["methods"][n]["policies"]] for n in names], bins=bins, label=names)
    ax.set_xlabel("per-policy success rate")
    ax.set_ylabel("policies")
    ax.legend(fontsize=7)
    fig.tight_layout()
    p = out_dir / "success_hist.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths


def write(results: dict, out_dir, title: str = "Evaluation") -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    j = out_dir / "results.json"
    j.write_text(json.dumps(results, indent=1))
    md = out_dir / "report.md"
    md.write_text(markdown(results, title))
    figs = figures(results, out_dir)
    return {"json": j, "markdown": md, **{f.stem: f for f in figs}}
