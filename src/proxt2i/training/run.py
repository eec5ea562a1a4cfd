"""The diffusion training loop, train(): one explicit loop for both objectives (they differ by the loss
block only). Its parts live beside it: data.py (batches, latent cache), factories.py (autoencoder,
network, init), schedules.py (learning rate), ema.py, seeding.py (per-step generators).

Runs on one CPU, one GPU or many processes through accelerate (`accelerate launch -m proxt2i train ...`).
Exact resume by construction: every random draw of step s on rank r comes from a generator seeded
with (seed, rank, s), and the data of step s is a pure function of s, so a checkpoint only needs
model, EMA, optimizer and the step.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from ..errors import UsageError
from ..extras import optional
from ..imaging import save_grid
from ..schedule import VPSchedule
from .accelerator import make_accelerator
from .checkpoint import check_resume_config, latest_checkpoint, load_checkpoint, save_checkpoint
from .data import BatchSource, dataset_latents
from .ema import ema_decay, ema_update, frozen_children, frozen_copy
from .factories import build_autoencoder, build_network, init_from_model, training_vocabulary
from ..parameterization import clean_from_eps
from .losses import (PMSchedule, consistency_intervals, consistency_loss, consistency_pair, ddim_step, denoising_score_matching_loss,
                     loss_phase, matching_batch, proximal_matching_objective)
from .presets import TrainConfig, config_dict, sampling_defaults, train_command
from .recipe import checkpoint_init_recipe
from .schedules import lr_at
from .seeding import step_generator


def distillation_teacher(cfg: TrainConfig, device):
    """For cfg.distill_guidance: captions -> eps_w(x, t, lam), the frozen init model guided at that scale (one
    batch of 2B rows, as at sampling); None otherwise."""
    if cfg.distill_guidance is None:
        return None
    from ..models.io import load_model_folder
    from ..samplers.guidance import guided_eps
    from ..shipped import resolve_model

    teacher = load_model_folder(resolve_model(cfg.init)).net.to(device).eval().requires_grad_(False)
    return lambda captions: guided_eps(teacher, captions, cfg.distill_guidance)


def consistency_objective(net, x0: torch.Tensor, captions: list[str], g, step: int, cfg: TrainConfig, schedule, teacher, autocast):
    """The consistency loss of one batch x0 [B, ...] (scalar): the student's clean estimate at t_hi against its own,
    without gradient, at t_lo on the same trajectory (consistency training), or at the teacher's guided DDIM step
    from x_hi to t_lo (distillation; `teacher` the guided eps of the init model). The target uses the current
    weights, not an EMA (improved consistency training; ECT). Returns (loss, the step's interval count N)."""
    intervals = consistency_intervals(step, cfg.steps, cfg.consistency_intervals[0], cfg.consistency_intervals[-1])
    pair = consistency_pair(x0, intervals, g, schedule)
    zero = torch.zeros_like(pair.t_hi)
    with torch.no_grad():
        x_lo = pair.x_lo if teacher is None else ddim_step(pair.x_hi, teacher(pair.x_hi, pair.t_hi, zero).float(), pair.t_hi, pair.t_lo, schedule)
        with autocast():
            eps_lo = net(x_lo, pair.t_lo, zero, captions)
        target = clean_from_eps(x_lo, eps_lo.float(), pair.t_lo, schedule)
    with autocast():
        eps = net(pair.x_hi, pair.t_hi, zero, captions)
    return consistency_loss(eps, pair, target, schedule, cfg.consistency_snr_cap).mean(), intervals


def train(cfg: TrainConfig, progress: bool = True, on_step=None) -> Path:
    """Train (or resume) cfg; returns the exported model folder OUT/final. on_step(step, seconds): after every
    optimiser step (1-based), with its wall seconds from batch to EMA update (checkpoints not included)."""
    from tqdm import tqdm

    from ..models.io import save_model_folder

    torch.set_num_threads(max(1, cfg.threads))
    acc = make_accelerator(cfg.mixed_precision, cpu=not torch.cuda.is_available())
    if cfg.fsdp:  # before anything is built
        from .fsdp import check_launch

        check_launch(acc)
    out = Path(cfg.out)
    schedule = VPSchedule()

    # --- data, autoencoder and network
    source = BatchSource(cfg)
    frozen_dtype = getattr(torch, cfg.frozen_dtype)
    autoencoder = build_autoencoder(cfg.autoencoder, frozen_dtype).to(acc.device).eval()
    if cfg.image_size % autoencoder.downsample:
        raise UsageError(f"image_size {cfg.image_size} must be a multiple of the autoencoder's downsampling {autoencoder.downsample}")
    latent_size = cfg.image_size // autoencoder.downsample
    vocab = training_vocabulary(source)
    torch.manual_seed(cfg.seed)
    net = build_network(cfg, autoencoder.latent_channels, latent_size, vocab)
    if frozen_dtype != torch.float32:  # the frozen parts only: the trained weights stay float32 (mixed_precision autocasts)
        autoencoder.to(dtype=frozen_dtype)
        for name in frozen_children(net):
            getattr(net, name).to(dtype=frozen_dtype)
    ema = frozen_copy(net).eval()
    guided_teacher = distillation_teacher(cfg, acc.device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    # --- resume = rerun the command
    start, wall_before, init_recipe = 0, 0.0, None  # init_recipe: how the init model was made (the lineage)
    ckpt = latest_checkpoint(out)
    if ckpt is None and cfg.init:
        init_recipe = init_from_model(net, cfg.init, source.same_meaning_words, reanchor=cfg.text_reanchor)
        ema.load_state_dict(net.state_dict())
        acc.print(f"initialised from {cfg.init}")
    if ckpt is not None:
        state = load_checkpoint(ckpt, net, ema, opt)
        check_resume_config(ckpt, state.get("config", {}), config_dict(cfg))
        start, wall_before = int(state["step"]), float(state.get("wall_seconds", 0.0))
        init_recipe = checkpoint_init_recipe(state, cfg.init)
        acc.print(f"resuming from {ckpt} (step {start})")
    sharded = None
    if cfg.fsdp:  # shard after loading: the checkpoint holds whole tensors
        from .fsdp import ShardedTraining, full

        sharded = ShardedTraining(acc, net, ema, opt)
        opt, ema = acc.prepare(sharded.opt), (ema if acc.is_main_process else None)  # the main process keeps a whole EMA to export into
    else:
        net, opt = acc.prepare(net, opt)
    if ema is not None:
        ema.to(acc.device)
    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(config_dict(cfg), indent=1))
    writer = _tensorboard(out) if acc.is_main_process else None
    cached = None
    if cfg.cache_latents:  # the main process encodes once; the others read its file
        if acc.is_main_process:
            dataset_latents(out / "latents.safetensors", source, autoencoder, cfg, acc.device)
        acc.wait_for_everyone()
        cached = dataset_latents(out / "latents.safetensors", source, autoencoder, cfg, acc.device)
    pm = PMSchedule(cfg.steps, cfg.pm_warmup_fraction, cfg.zeta_start, cfg.zeta_decay, cfg.zeta_stages)

    bar = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc=f"train {cfg.objective}",
               disable=not (progress and acc.is_main_process))
    t_start = t_last = time.time()
    seen = 0
    stream = None if cached is not None else source.batches(range(start, cfg.steps), acc.process_index, acc.num_processes, cfg.data_workers)
    for step in bar:
        t_step = time.perf_counter()
        # --- batch: images -> latents, captions with dropout for guidance
        g = step_generator(cfg.seed, acc.process_index, step)
        if cached is not None:
            # in the layout live encoding gives (channels-last, from the uint8 images): convolutions then sum in
            # the same order, so a cached run is bit-identical to an uncached one
            x0 = cached[source.indices(step, acc.process_index, acc.num_processes)].to(acc.device).contiguous(memory_format=torch.channels_last)
            captions = source.captions(step, acc.process_index, acc.num_processes)
        else:
            images, captions = next(stream)
            with torch.no_grad():
                x0 = autoencoder.encode(images.to(acc.device, frozen_dtype)).float()
        drop = torch.rand(len(captions), generator=g) < cfg.text_dropout
        captions = ["" if d else c for c, d in zip(captions, drop.tolist())]

        # --- loss: proximal matching, denoising score matching, the teacher's guided output, or consistency
        teacher = guided_teacher(captions) if guided_teacher is not None else None
        zeta = None
        if cfg.consistency != "none":
            loss, intervals = consistency_objective(net, x0, captions, g, step, cfg, schedule, teacher, acc.autocast)
            phase = f"{'ct' if cfg.consistency == 'training' else 'cd'} N={intervals}"
        else:
            batch = matching_batch(x0, cfg.objective, g, schedule, prox_target=cfg.prox_target, candidates=tuple(cfg.step_candidates),
                                   power=cfg.candidate_power, mode=cfg.mode, grids=tuple(cfg.candidate_grids.split(",")),
                                   chain_share=cfg.chain_inputs)
            with acc.autocast():
                eps = net(batch.x, batch.t, batch.lam, captions)
            pred = batch.prediction(eps)
            if teacher is not None:  # guidance distillation: the teacher's guided output on the same input is the target
                phase = "distill"
                with torch.no_grad():
                    target = batch.prediction(teacher(batch.x, batch.t, batch.lam))
                loss = denoising_score_matching_loss(pred, target).mean()
            elif cfg.objective == "prox":
                phase, zeta = loss_phase(step, pm)
                loss = proximal_matching_objective(pred, batch.target, phase, zeta).mean()
            else:
                phase = "dsm"
                loss = denoising_score_matching_loss(pred, batch.target).mean()

        # --- update: LR warm-up, clipping, EMA
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        opt.zero_grad(set_to_none=True)
        acc.backward(loss)
        if cfg.grad_clip > 0:
            acc.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        if sharded is not None:
            sharded.ema.update(net, ema_decay(step, cfg))
        else:
            ema_update(ema, acc.unwrap_model(net), ema_decay(step, cfg))
        seen += x0.shape[0] * acc.num_processes

        # --- logs, checkpoints, samples
        done = step + 1
        if on_step is not None:
            on_step(done, time.perf_counter() - t_step)
        if done % cfg.log_every == 0 or done == cfg.steps:
            rate = seen / max(time.time() - t_last, 1e-9)
            t_last, seen = time.time(), 0
            bar.set_postfix(loss=f"{loss.item():.4f}", phase=phase if zeta is None else f"pm z={zeta:g}", img_s=f"{rate:.0f}")
            if not progress:  # no bar: one plain line per log interval, for log files
                acc.print(f"step {done}/{cfg.steps} loss {loss.item():.4f} {phase if zeta is None else f'pm zeta={zeta:g}'} "
                          f"lr {lr_at(step, cfg):.2e} {rate:.0f} img/s", flush=True)
            if writer is not None:
                writer.add_scalar("loss", loss.item(), done)
                writer.add_scalar("lr", lr_at(step, cfg), done)
                writer.add_scalar("images_per_second", rate, done)
                if zeta is not None:
                    writer.add_scalar("zeta", zeta, done)
        if done % cfg.checkpoint_every == 0 or done == cfg.steps:
            extra = {"config": config_dict(cfg), "vocabulary": vocab, "init_recipe": init_recipe,
                     "wall_seconds": round(wall_before + time.time() - t_start, 1)}
            if sharded is not None:  # every process gathers its slices; the main one writes
                sharded.save_checkpoint(out, done, net, opt, extra, cfg.keep_checkpoints, acc.is_main_process)
            elif acc.is_main_process:
                save_checkpoint(out, done, acc.unwrap_model(net), ema, opt, extra, keep=cfg.keep_checkpoints)
        if cfg.sample_every > 0 and done % cfg.sample_every == 0:
            if sharded is not None:
                sharded.load_whole_ema(net, ema)
            if acc.is_main_process:
                _sample_grid(ema, autoencoder, cfg, latent_size, out / "samples" / f"step-{done:08d}.png")
        acc.wait_for_everyone()

    # --- export the EMA model (with a per-rank weight checksum: DDP ranks must agree)
    final = out / "final"
    if sharded is not None:  # one copy, sharded: the record is each process's share of it
        rank_local = acc.gather(torch.tensor([float(sharded.local_parameters(net))], device=acc.device)).cpu().tolist()
        sharded.load_whole_ema(net, ema)
        checksum = torch.tensor([float(sum(full(p).double().sum() for p in net.parameters()))], device=acc.device)
    else:
        checksum = torch.tensor([float(sum(p.detach().double().sum() for p in acc.unwrap_model(net).parameters()))], device=acc.device)
    rank_checksums = acc.gather(checksum).cpu().tolist()
    rank_peaks = acc.gather(torch.tensor([peak_rss_gib()], device=acc.device)).cpu().tolist()
    if acc.is_main_process:
        recipe = {"command": train_command(cfg), "config": config_dict(cfg), "steps": cfg.steps,
                  "images_seen": cfg.steps * cfg.batch * acc.num_processes, "processes": acc.num_processes,
                  "wall_seconds": round(wall_before + time.time() - t_start, 1),  # over all resumed sessions
                  "rank_weight_checksums": rank_checksums, "rank_peak_rss_gib": [round(v, 2) for v in rank_peaks],
                  "init_recipe": init_recipe}
        if sharded is not None:
            recipe["fsdp_local_trained_parameters"] = rank_local
        save_model_folder(final, ema.uvit, ema.text_encoder, autoencoder, objective=cfg.objective,
                          image_size=cfg.image_size, recipe=recipe, sampling=sampling_defaults(cfg), schedule=schedule,
                          overwrite=True)  # the run's own output: a rerun rewrites it
        if writer is not None:
            writer.close()
    acc.wait_for_everyone()
    return final


def peak_rss_gib() -> float:
    """This process's peak resident memory so far in GiB (-1 where the platform does not say)."""
    try:
        import resource
        import sys
    except ImportError:
        return -1.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**30 if sys.platform == "darwin" else peak / 2**20  # bytes on macOS, KiB on Linux


def _tensorboard(out: Path):
    """A SummaryWriter on OUT/tensorboard, or None without the optional `tensorboard` extra (training runs
    without it; the logs then go to the progress bar or stdout only)."""
    tensorboard = optional("torch.utils.tensorboard")
    return None if tensorboard is None else tensorboard.SummaryWriter(str(out / "tensorboard"))


@torch.no_grad()
def _sample_grid(ema, autoencoder, cfg: TrainConfig, latent_size: int, path: Path) -> None:
    """A 2x4 grid of fixed prompts sampled with the model's default sampler (PDA-hybrid, Euler-Maruyama or
    consistency), 4 steps."""
    from ..pipeline import sample_latents

    prompts = ["a smiling person with long red hair", "a person with glasses and a beard", "a sad person wearing a cap",
               "a surprised person with blond hair", "a person with short black hair, blue background",
               "a neutral person with a bun", "a person wearing sunglasses", "a person with an afro, pink background"]
    lat = sample_latents(ema, cfg.objective, prompts, (autoencoder.latent_channels, latent_size, latent_size),
                         num_steps=4, guidance_scale=3.0, seeds=list(range(len(prompts))),
                         sampler=(sampling_defaults(cfg) or {}).get("sampler"))
    save_grid(autoencoder.decode(lat).clamp(0, 1), path, cols=4)
