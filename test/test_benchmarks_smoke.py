"""Benchmarks run, at a size that says nothing about speed (timing targets live in BENCHMARKS.md, not
here): a refactor that changes what a benchmark calls must not leave it broken until someone next
measures (bench_prompt_to_actor crashed for a session after the engine began embedding prompts once)."""
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_prompt_to_actor_bench_runs_and_reports():
    r = subprocess.run([sys.executable, "benchmarks/bench_prompt_to_actor.py", "--prompts", "1", "--candidates", "2",
                        "--steps", "50"], cwd=REPO, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    lines = r.stdout.splitlines()
    assert any(l.startswith("heldout-1000: ") and "/2 valid" in l for l in lines), r.stdout
    assert any(l.startswith("prompt -> actor (Engine.generate)") for l in lines), r.stdout
    assert any(l.strip().startswith("generation + decoding") for l in lines), r.stdout
