"""IPython start-up file of the simulated laptop (`make test-other-machines`): four threads in PyTorch.

With OMP_NUM_THREADS=4 alone, PyTorch 2.14.1 still ran two threads on our two cores, so
only ``torch.set_num_threads`` gives the four-way split of work (and of sums) that a four-core
laptop makes. tools/other_machines.py copies this file into the kernel's IPython profile.
"""
import torch

torch.set_num_threads(4)
