"""Helpers shared by the chapters of the book: the data registry and fetch, the thermometer data, splits, devices, Korean labels."""

from torchbook.data import fetch, torchvision_root
from torchbook.device import get_device, usable_cpus
from torchbook.korean import korean
from torchbook.splits import per_class_split
from torchbook.thermometer import thermometer_readings, train_val_indices

__all__ = ["fetch", "get_device", "korean", "per_class_split", "thermometer_readings", "torchvision_root", "train_val_indices", "usable_cpus"]
