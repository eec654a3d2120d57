"""Helpers shared by the chapters of the book: data, devices and plotting."""

from torchbook.data import fetch, torchvision_root
from torchbook.device import get_device

__all__ = ["fetch", "get_device", "torchvision_root"]
