"""`make bench`: CPU benchmarks (framework overhead, data pipeline, HPF kernel, attention cost, 2K inference).

`python -m sr_lit.bench [--only NAMES] [--quick]` writes bench/results.json (flat keys) and prints a table;
`python -m sr_lit.bench.gpu_check` is the one-call GPU check. See bench/README.md.
"""
