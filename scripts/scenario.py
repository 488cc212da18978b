#!/usr/bin/env python3
"""A scenario JSON from a base one (`hpsim presets --show NAME`), changed as the GPU round scripts
need: the paper's expert configuration, the ranks, top-k, routing and tokens per rank, or one rank of
a W-GPU HP layer on one GPU. Options not given keep the base's values.

  python3 scripts/scenario.py BASE.json OUT.json [--name N] [--model paper-4.2b|paper-4.2b-g|paper-2.2b]
      [--ranks W] [--top-k K] [--zipf S] [--tokens N] [--rank-of W]

--ranks W sets parallel.num_ranks and cluster.gpus_per_node (at least 1). --zipf S > 0 routes
with Zipf(S), 0 uniformly. --rank-of W keeps H/W heads and multiplies the tokens per rank by W, HP
on one GPU: the rows, heads and segments of one rank of the W-GPU layer (docs/kernels.md, rounds
46-50).
"""
import argparse
import json
import sys

PAPER = {"paper-4.2b": (768, 4, 256), "paper-4.2b-g": (1536, 8, 128), "paper-2.2b": (384, 4, 256)}

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("base")
ap.add_argument("out")
ap.add_argument("--name")
ap.add_argument("--model", choices=sorted(PAPER))
ap.add_argument("--ranks", type=int)
ap.add_argument("--top-k", type=int)
ap.add_argument("--zipf", type=float)
ap.add_argument("--tokens", type=int)
ap.add_argument("--rank-of", type=int)
a = ap.parse_args()

s = json.load(sys.stdin if a.base == "-" else open(a.base))
if a.model:
    e, k, f = PAPER[a.model]
    s["model"].update(name=a.model, num_experts=e, top_k=k, expert_hidden=f)
if a.top_k is not None:
    s["model"]["top_k"] = a.top_k
if a.tokens is not None:
    s["workload"]["tokens_per_rank"] = a.tokens
if a.zipf is not None:
    s["workload"].update(routing="zipf" if a.zipf > 0 else "uniform", zipf_skew=a.zipf)
if a.ranks is not None:
    s["parallel"]["num_ranks"] = a.ranks
    s["cluster"]["gpus_per_node"] = max(a.ranks, 1)
if a.rank_of is not None:
    heads = s["model"]["num_heads"]
    if heads % a.rank_of:
        sys.exit(f"scenario.py: --rank-of {a.rank_of} does not divide the {heads} heads")
    s["model"]["num_heads"] = heads // a.rank_of
    s["workload"]["tokens_per_rank"] *= a.rank_of
    s["parallel"] = {"num_ranks": 1, "strategy": "hp"}
    s["cluster"].update(num_nodes=1, gpus_per_node=1)
if a.name:
    s["name"] = a.name
json.dump(s, open(a.out, "w"), indent=1)
