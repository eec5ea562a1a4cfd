"""Experiment (docs/finetune.md; run from the repository root): how much of a GRPO gradient is signal?

Draws K independent rollout batches of P prompts x G images from a model (4-step chain, guidance 4,
fresh held-out-composition prompts), computes the on-policy GRPO gradient of each batch (ratio 1, all
transitions: the first inner epoch of `proxt2i finetune grpo`), and reports the mean pairwise cosine
between gradients of disjoint batches, for batches of 1, 2, 4 and 8 rollout batches pooled. If every
batch gradient is g + noise with noise variance s^2 / B, the cosine is |g|^2 / (|g|^2 + s^2 / B):
near 0 means the update direction is mostly sampling noise. Prints one JSON object.

    python docs/experiments/grpo_gradient_noise.py --model synthfaces-prox --reward alignment-prob --batches 16
"""

import argparse
import itertools
import json
import time

import torch

from proxt2i.pipeline import ProxT2IPipeline
from proxt2i.samplers.guidance import guided_model
from proxt2i.rl.prompts import load_prompt_source, step_prompts
from proxt2i.rl.grpo import group_advantages, tree_advantages
from proxt2i.rl.policy import branch_strides, rollout, same_kernels_with_and_without_grad, step_log_prob
from proxt2i.rewards import combine_rewards
from proxt2i.shipped import resolve_model


def batch_gradient(net, autoencoder, objective, latent_shape, reward, prompts, group, seed, num_steps, guidance, shared_start=False,
                   strides=()):
    """Flattened GRPO gradient (ratio 1) of one rollout batch, its per-transition terms (transition 0 is
    the first, noisiest step), and the batch's mean reward. strides: a branching rollout (BranchGRPO,
    `--branches`) with tree advantages, as `proxt2i finetune grpo --branches` trains it."""
    kind = "pda-hybrid" if objective == "prox" else "euler-maruyama"
    rows = [p for p in prompts for _ in range(group)]
    g = torch.Generator().manual_seed(seed)
    x_T = torch.randn((len(rows), *latent_shape), generator=g)
    fn = [guided_model(net, objective, rows[::every], guidance) for every in strides] if strides else guided_model(net, objective, rows, guidance)
    traj = rollout(fn, x_T, num_steps, g, sampler=kind, start_group=group if shared_start else 1, strides=strides)
    with torch.no_grad():
        r = reward.total(reward.terms(autoencoder.decode(traj.x0).clamp(0, 1), rows))
    adv = tree_advantages(r, strides) if strides else [group_advantages(r, group)] * traj.chain.num_transitions
    per_transition = []
    for i in range(traj.chain.num_transitions):
        net.zero_grad(set_to_none=True)
        logp, _ = step_log_prob(fn[i] if strides else fn, traj.states[i], traj.states[i + 1], i, traj.chain, branch=traj.branch(i))
        # d/dtheta of -mean(ratio * A) at ratio 1 = -mean(A * dlogp)
        (-(adv[i].double() * logp).mean() / traj.chain.num_transitions).backward()
        per_transition.append(torch.cat([p.grad.flatten() if p.grad is not None else torch.zeros(p.numel()) for p in net.parameters()]))
    return torch.stack(per_transition).sum(0), per_transition, float(r.mean())


PARTS = {"text encoder": ("text_encoder.",), "input embeddings": ("uvit.pos_embed", "uvit.patch_embed", "uvit.time_embed",
         "uvit.lam_embed", "uvit.text_proj", "uvit.pooled_proj"), "in blocks": ("uvit.in_blocks.",),
         "mid block": ("uvit.mid_block.",), "out blocks": ("uvit.out_blocks.",), "output head": ("uvit.norm", "uvit.head", "uvit.final_conv")}


def part_slices(net):
    """{part: index tensor into the flattened gradient}, for the PARTS of the network."""
    spans, offset = {k: [] for k in PARTS}, 0
    for name, p in net.named_parameters():
        part = next((k for k, prefixes in PARTS.items() if name.startswith(prefixes)), None)
        if part is not None:
            spans[part].append(torch.arange(offset, offset + p.numel()))
        offset += p.numel()
    return {k: torch.cat(v) for k, v in spans.items() if v}


def mean_pairwise_cosine(vectors):
    unit = [v / v.norm() for v in vectors]
    return float(torch.stack([a @ b for a, b in itertools.combinations(unit, 2)]).mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="synthfaces-prox")
    ap.add_argument("--reward", default="alignment-prob")
    ap.add_argument("--batches", type=int, default=16, help="independent rollout batches (K)")
    ap.add_argument("--prompts-per-batch", type=int, default=8)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--num-steps", type=int, default=4)
    ap.add_argument("--guidance", type=float, default=4.0)
    ap.add_argument("--shared-start", action="store_true", help="the images of a group share their first state (DanceGRPO)")
    ap.add_argument("--branches", default=None, help="branching rollouts, e.g. 2,2,2 (BranchGRPO; finetune grpo --branches)")
    args = ap.parse_args()
    strides = branch_strides([int(b) for b in args.branches.split(",")], args.num_steps - 1, args.group) if args.branches else ()
    torch.set_num_threads(1)
    pipe = ProxT2IPipeline.from_pretrained(resolve_model(args.model))
    net = pipe.net.eval()
    reward = combine_rewards(args.reward)
    prompts = load_prompt_source("synthfaces-heldout")
    t0 = time.time()
    grads, by_transition, rewards = [], [], []
    with same_kernels_with_and_without_grad():
        for k in range(args.batches):
            grad, per_transition, r = batch_gradient(net, pipe.autoencoder.eval(), pipe.objective, pipe.latent_shape, reward,
                                     step_prompts(prompts, args.prompts_per_batch, 0, k), args.group, 1000 + k,
                                     args.num_steps, args.guidance, args.shared_start, strides)
            grads.append(grad)
            by_transition.append(per_transition)
            rewards.append(r)
    samples = args.prompts_per_batch * args.group
    cosine = {}
    for pool in (1, 2, 4, 8):
        if args.batches // pool >= 2:
            pooled = [torch.stack(grads[j : j + pool]).mean(0) for j in range(0, args.batches - pool + 1, pool)]
            cosine[str(pool * samples)] = round(mean_pairwise_cosine(pooled), 4)
    by_transition_cos = {str(i): {"grad_norm": round(float(torch.stack([b[i].norm() for b in by_transition]).mean()), 3),
                                  "cosine_one_batch": round(mean_pairwise_cosine([b[i] for b in by_transition]), 4)}
                         for i in range(len(by_transition[0]))}
    by_part = {}
    for part, idx in part_slices(net).items():
        pooled = [torch.stack(grads[j : j + 8]).mean(0)[idx] for j in range(0, args.batches - 7, 8)]
        by_part[part] = {"parameters": int(idx.numel()), "cosine_one_batch": round(mean_pairwise_cosine([g[idx] for g in grads]), 4),
                         "cosine_8_batches_pooled": round(mean_pairwise_cosine(pooled), 4) if len(pooled) >= 2 else None}
    # network rows evaluated per batch (guidance doubles each): rollout states + output step, and the trained transitions
    nodes = [args.prompts_per_batch * args.group // every for every in (strides or [1] * args.num_steps)]
    cost = {"rollout_rows": sum(nodes), "update_rows": sum(nodes[:-1])}
    print(json.dumps({"model": args.model, "reward": args.reward, "shared_start": args.shared_start, "branches": args.branches,
                      "network_rows_per_batch": cost, "batches": args.batches, "samples_per_batch": samples,
                      "mean_reward": round(sum(rewards) / len(rewards), 4), "grad_norm_per_batch": round(float(torch.stack([g.norm() for g in grads]).mean()), 3),
                      "cosine_between_disjoint_updates_by_samples": cosine,
                      "cosine_by_part": by_part,
                      "cosine_by_transition": by_transition_cos, "seconds": round(time.time() - t0, 1)}))


if __name__ == "__main__":
    main()
