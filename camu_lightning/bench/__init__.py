"""Benchmarks: `grid` emits `camu fit` runs, `tables` turns their results.json files into tables."""
