"""Datasets: readers for IDX and Kaggle CSV files, and the in-memory LightningDataModules."""

from cnnzoo.data.batches import TensorBatches
from cnnzoo.data.datamodule import FashionMNISTDataModule, InMemoryDataModule, MNISTDataModule, SignMNISTDataModule

__all__ = ["FashionMNISTDataModule", "InMemoryDataModule", "MNISTDataModule", "SignMNISTDataModule", "TensorBatches"]
