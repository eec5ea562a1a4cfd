"""fsdp=true: the trained network sharded over the processes with FSDP2 (torch's fully_shard), on GPUs or
on CPUs (gloo). Every U-ViT block is one shard group and the rest of the network the root group. The
frozen encoders are left out (ignored_params) and stay whole on every process.

Weights, gradients and the AdamW moments then live 1/R on each of R processes, and so does the EMA: it
averages each process's own slice (ShardedEMA). Checkpoints are gathered into the layout a single
process writes (full tensors, the optimizer's state by parameter index), so a run can be resumed with
or without FSDP and with any number of processes. accelerate's own --use_fsdp is not used: it does not
shard on CPUs, and its wrapper hides the slices the EMA needs.
"""

from __future__ import annotations

import torch

from .ema import frozen_children


def fsdp_mesh(device: torch.device):
    """A 1-D device mesh over all processes (the process group accelerate started)."""
    from torch.distributed.device_mesh import init_device_mesh

    return init_device_mesh(device.type, (torch.distributed.get_world_size(),))


def shard_network(net: torch.nn.Module, mesh) -> None:
    """fully_shard every U-ViT block, then the whole network; the frozen children's parameters ignored."""
    from torch.distributed.fsdp import fully_shard

    frozen = {p for name in frozen_children(net) for p in getattr(net, name).parameters()}
    uvit = net.uvit
    for block in [*uvit.in_blocks, uvit.mid_block, *uvit.out_blocks]:
        fully_shard(block, mesh=mesh)
    fully_shard(net, mesh=mesh, ignored_params=frozen or None)


def is_sharded(t) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(t, DTensor)


def full(t: torch.Tensor) -> torch.Tensor:
    """The whole tensor of a shard (a collective: every process must call it), on the CPU; others as they are."""
    return (t.full_tensor() if is_sharded(t) else t).detach().cpu()


def gathered(items, keep: bool = True) -> dict:
    """{key: whole value} of (key, value) pairs, tensors gathered one at a time (collective). keep False: take
    part in each gather and drop the result at once (the processes that do not write), so only one process
    pays the memory."""
    out = {}
    for key, value in items:
        whole = full(value).contiguous() if torch.is_tensor(value) else value
        if keep:
            out[key] = whole
    return out


def full_model_state(net: torch.nn.Module, frozen: set[str], keep: bool = True) -> dict:
    """The trained entries of net's state dict as whole tensors (collective; keep: as gathered)."""
    return gathered(((k, v) for k, v in net.state_dict().items() if k.split(".", 1)[0] not in frozen), keep)


def full_optimizer_state(opt: torch.optim.Optimizer, keep: bool = True) -> dict:
    """The optimizer's state_dict with whole tensors (collective): the single-process layout (keep: as gathered)."""
    state = opt.state_dict()
    return {"param_groups": state["param_groups"], "state": {i: gathered(s.items(), keep) for i, s in state["state"].items()}}


def load_optimizer_state(opt: torch.optim.Optimizer, state: dict) -> None:
    """Load a single-process optimizer state into an optimizer over sharded parameters: each process keeps its slice."""
    from torch.distributed.tensor import distribute_tensor

    opt.load_state_dict(state)
    for group in opt.param_groups:
        for p in group["params"]:
            for key, value in opt.state.get(p, {}).items():
                if is_sharded(p) and torch.is_tensor(value) and value.shape == p.shape:
                    opt.state[p][key] = distribute_tensor(value.to(p.device), p.device_mesh, p.placements)


class ShardedEMA:
    """The EMA of a sharded network: for each trained parameter, this process's slice, float32."""

    def __init__(self, net: torch.nn.Module, start: torch.nn.Module):
        """Slices of `start` (an unsharded module with net's structure: the initial or checkpointed EMA)."""
        from torch.distributed.tensor import distribute_tensor

        whole = dict(start.named_parameters())
        self.slices = {}
        for name, p in net.named_parameters():
            if p.requires_grad:
                value = whole[name].detach().to(p.device, torch.float32)
                self.slices[name] = distribute_tensor(value, p.device_mesh, p.placements).to_local().clone() if is_sharded(p) else value.clone()

    @torch.no_grad()
    def update(self, net: torch.nn.Module, decay: float) -> None:
        for name, p in net.named_parameters():
            if name in self.slices:
                local = p.to_local() if is_sharded(p) else p
                self.slices[name].lerp_(local.detach().float(), 1.0 - decay)

    def full_state(self, net: torch.nn.Module, frozen: set[str], keep: bool = True) -> dict:
        """The EMA's state dict in net's layout, whole tensors (collective): EMA parameters, net's buffers
        (keep: as full_model_state)."""
        from torch.distributed.tensor import DTensor

        params = dict(net.named_parameters())

        def entry(key, value):
            if key not in self.slices:  # a buffer: as the network has it
                return value
            p = params[key]
            return DTensor.from_local(self.slices[key], p.device_mesh, p.placements, shape=p.shape, stride=p.stride()) \
                if is_sharded(p) else self.slices[key]

        return gathered(((k, entry(k, v)) for k, v in net.state_dict().items() if k.split(".", 1)[0] not in frozen), keep)


def check_launch(acc) -> None:
    """fsdp=true needs several processes, and not accelerate's own FSDP wrapper; else one UsageError."""
    from ..errors import UsageError

    if acc.num_processes < 2:
        raise UsageError("fsdp=true needs several processes (accelerate launch --num_processes N -m proxt2i train ..., or "
                         "python -m torch.distributed.run --nproc_per_node N -m proxt2i train ...); one process has nothing to shard")
    if acc.distributed_type.value == "FSDP":
        raise UsageError("use fsdp=true without accelerate's --use_fsdp: proxt2i shards the network itself (its EMA and "
                         "checkpoints need the slices); launch with plain accelerate launch --num_processes N")


class ShardedTraining:
    """What train() does differently with fsdp=true: shards the (loaded or initialised) network, rebuilds
    AdamW over the shards with the loaded state sliced, and keeps the EMA as slices."""

    def __init__(self, acc, net: torch.nn.Module, ema: torch.nn.Module, opt: torch.optim.Optimizer):
        """After check_launch (train() runs it before building anything)."""
        self.frozen = frozen_children(net)
        state = opt.state_dict()  # whole tensors: fresh, or loaded from a checkpoint
        net.to(acc.device)
        shard_network(net, fsdp_mesh(acc.device))
        self.opt = type(opt)(net.parameters(), **{k: v for k, v in opt.defaults.items() if k in ("lr", "weight_decay")})
        if state["state"]:
            load_optimizer_state(self.opt, state)
        self.ema = ShardedEMA(net, ema)

    def save_checkpoint(self, out, step: int, net, opt, extra: dict, keep: int, main: bool) -> None:
        """Every process takes part in the gathers, one state dict at a time; the main process writes the
        single-process layout (checkpoint.write_checkpoint), so it holds at most one whole state at once."""
        from .checkpoint import write_checkpoint

        states = (lambda: full_model_state(net, self.frozen, main), lambda: self.ema.full_state(net, self.frozen, main),
                  lambda: full_optimizer_state(opt, main))
        if main:
            write_checkpoint(out, step, *states, extra, keep=keep)
        else:
            for state in states:
                state()

    def load_whole_ema(self, net, ema) -> None:
        """Gather the EMA (collective) into the main process's whole EMA module (`ema`; None elsewhere)."""
        from .checkpoint import load_trained_state

        state = self.ema.full_state(net, self.frozen, keep=ema is not None)
        if ema is not None:
            load_trained_state(ema, {k: v.to(next(ema.parameters()).device) for k, v in state.items()}, self.frozen)

    def local_parameters(self, net) -> int:
        """Elements of the trained parameters this process holds."""
        return sum((p.to_local() if is_sharded(p) else p).numel() for p in net.parameters() if p.requires_grad)
