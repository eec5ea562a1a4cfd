"""Reward fine-tuning of the samplers: policy.py (rollouts of the samplers' Gaussian chains with exact
log-probabilities), run.py (the frame every run shares: set-up, resume, the step loop, evaluation,
checkpoints, export), grpo.py (`proxt2i finetune grpo`), r0.py (`proxt2i finetune r0`), prompts.py
(prompt sources), diversity.py (mode-collapse monitor). The rewards themselves live in proxt2i.rewards."""
