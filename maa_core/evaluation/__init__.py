"""Evaluation of generated policies in the paper's protocol, baselines, novelty and reports.

metrics.py   pure arithmetic: top-k, qualified rate, per-task and per-group summaries
sources.py   prompt items (trajectory + task + the prompt's own policy when known), action noise
runner.py    evaluation of many flat-parameter policies in spawned worker processes
baselines.py nearest-checkpoint retrieval by behavior embedding (plain, with parameter noise, averaged
             over the k nearest), behavior cloning on prompts
novelty.py   cosine similarity to the prompt's policy and to the nearest training checkpoint
report.py    JSON, Markdown table and matplotlib figures
"""
