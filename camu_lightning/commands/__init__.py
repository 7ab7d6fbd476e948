"""The commands beside `camu fit`: `camu tune` (Optuna searches) and `camu score` (forget quality)."""
