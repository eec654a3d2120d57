"""IPython start-up file of the simulated laptop (`make test-other-machines`): four threads in PyTorch.

PyTorch caps OMP_NUM_THREADS at the cores it may use, so on a two-core machine only
``torch.set_num_threads`` gives the four-way split of work (and of sums) that a four-core
laptop makes. The Makefile copies this file into the kernel's IPython profile.
"""
import torch

torch.set_num_threads(4)
