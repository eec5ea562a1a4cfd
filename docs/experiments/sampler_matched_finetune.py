"""Experiment (docs/models.md; run from the repository root): fine-tune the shipped prox model 800 steps with (a) training-style inputs only (control)
or (b) 50% sampler-matched PDA-hybrid inputs; report 4-step alignment/FD on 64 held-in prompts."""
import sys, json, time, torch
torch.set_num_threads(1)
from proxt2i.models.io import load_model_folder
from proxt2i.pipeline import sample_latents
from proxt2i.schedule import VPSchedule
from proxt2i.data.synthfaces import render_batch
from proxt2i.evaluation.metrics import evaluate_images
from proxt2i.evaluation import load_evaluator
mode = sys.argv[1]; steps = int(sys.argv[2])
model = load_model_folder("src/proxt2i/assets/models/synthfaces-prox")
cfg, net, ae = model.config, model.net, model.autoencoder
net.train(); opt = torch.optim.AdamW(net.parameters(), lr=2e-4)
s = VPSchedule(); g = torch.Generator().manual_seed(1)
cands = torch.tensor([2, 3, 4, 5, 10, 20, 50, 100, 1000]); w = cands.double() ** (1/3)
def alpha(t): return s.alpha(t.double()).float()
t0 = time.time()
for step in range(steps):
    imgs, _, caps = render_batch(11, step * 32, 32, 32, split="train")
    with torch.no_grad():
        x0 = ae.encode(torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255)
    caps = ["" if d else c for c, d in zip(caps, (torch.rand(32, generator=g) < 0.1).tolist())]
    n = cands[torch.multinomial(w / w.sum(), 32, replacement=True, generator=g)]
    k = (torch.rand(32, generator=g) * n).floor().clamp(max=n - 1)
    t, t1 = k / n, (k + 1) / n
    gam = (s.beta_integral(t.double(), t1.double())).float()
    a, a1 = alpha(t)[:, None, None, None], alpha(t1)[:, None, None, None]
    xt = a.sqrt() * x0 + (1 - a).sqrt() * torch.randn(x0.shape, generator=g)
    G = gam[:, None, None, None]
    y_train = xt + G.sqrt() * torch.randn(x0.shape, generator=g)
    r = (a1 / a).clamp(max=1)
    xt1 = r.sqrt() * xt + (1 - r).sqrt() * torch.randn(x0.shape, generator=g)
    y_samp = (1 + G / 2) * xt1 + G.sqrt() * torch.randn(x0.shape, generator=g)
    use = (torch.rand(32, generator=g) < (0.5 if mode == "matched" else 0.0))[:, None, None, None]
    y = torch.where(use, y_samp, y_train)
    target = (y - xt) / G.sqrt()
    eps = net(y, t, gam, caps)
    mse = ((eps - target) ** 2).flatten(1).mean(1)
    loss = (1 - torch.exp(-mse / 1.0)).mean()
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0); opt.step()
    if step % 100 == 0: print(mode, step, round(loss.item(), 4), round(time.time() - t0), flush=True)
net.eval()
prompts = open("src/proxt2i/assets/prompts/heldin.txt").read().splitlines()[:64]
ev = load_evaluator()
for N in (4, 8):
    lat = sample_latents(net, "prox", prompts, (4, 8, 8), N, 4.0, "pda-hybrid", list(range(64)))
    with torch.no_grad(): im = ae.decode(lat).clamp(0, 1)
    r = evaluate_images(im, prompts, ev, reference_num=512)
    print(json.dumps({"mode": mode, "finetune_steps": steps, "N": N, "alignment": r["alignment"], "fd": r["fd"]}), flush=True)
