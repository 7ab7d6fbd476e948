"""Datasets, forget splits, counterfactual tuples and the data module."""

from camu_lightning.data.datamodule import UnlearningDataModule

__all__ = ["UnlearningDataModule"]
