"""Benchmarks of specstore against raw redis-py and hand-rolled baselines, as ratios.

Run ``python -m benchmarks.run [--quick] [--json out.json] [--cluster] [--profile]`` from the
repository root; see :mod:`benchmarks.run`.
"""
