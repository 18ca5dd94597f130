"""Data-parallel training over processes started by ``torchrun``: DDP, gloo on CPU, nccl on GPU.

BatchNorm must see the global batch for N processes to train as one: PyTorch's SyncBatchNorm
runs on GPUs only, so on CPU :class:`GlobalBatchNorm2d` sums each channel's count, sum and sum
of squares over the processes with a differentiable all-reduce.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass
class Process:
    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return dist.is_available() and "RANK" in os.environ and "WORLD_SIZE" in os.environ


def start(device: torch.device) -> Process:
    """Join the process group when started by torchrun; otherwise a single process."""
    if not launched_by_torchrun():
        return Process(device=device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    if dist.get_rank() != 0:  # one voice: rank 0 reports progress
        logging.getLogger("followme").setLevel(logging.WARNING)
    return Process(dist.get_rank(), dist.get_world_size(), device)


def stop(process: Process, wait: bool = True) -> None:
    """Leave the process group; ``wait``: first for every process to get here, so that none
    tears its connections down (and aborts) while rank 0 still writes a checkpoint."""
    if process.world > 1 or dist.is_initialized():
        if wait:
            dist.barrier()
        dist.destroy_process_group()


def broadcast_int(value: int) -> int:
    """Rank 0's value, on every process."""
    t = torch.tensor([value])
    dist.broadcast(t, 0)
    return int(t)


def mean_over_processes(value: torch.Tensor) -> torch.Tensor:
    value = value.detach().clone()
    dist.all_reduce(value)
    return value / dist.get_world_size()


class _SumOverProcesses(torch.autograd.Function):
    """All-reduce (sum) whose gradient is the all-reduced gradient: every process's loss
    reaches the inputs of every process."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics cover the batches of all processes. Same
    parameters and buffers as nn.BatchNorm2d, so checkpoints do not change."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        xf = x.float()
        local = torch.cat([xf.sum((0, 2, 3)), (xf * xf).sum((0, 2, 3)),
                           xf.new_full((1,), xf.numel() / xf.shape[1])])
        total = _SumOverProcesses.apply(local)
        c = x.shape[1]
        n = total[2 * c]
        mean = total[:c] / n
        var = (total[c:2 * c] / n - mean * mean).clamp_min(0)
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * n / (n - 1), self.momentum)
        shape = (1, c, 1, 1)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        return (y * self.weight.view(shape) + self.bias.view(shape)).to(x.dtype)


def with_global_batchnorm(model: nn.Module) -> nn.Module:
    """Swap every BatchNorm2d of ``model`` for a GlobalBatchNorm2d holding the same state."""
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            bn = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum,
                                   child.affine, child.track_running_stats)
            bn.load_state_dict(child.state_dict())
            setattr(model, name, bn.to(child.weight.device))
        else:
            with_global_batchnorm(child)
    return model
