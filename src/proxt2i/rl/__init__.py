"""Reward fine-tuning of the samplers: policy.py (samplers as Gaussian chains with exact
log-probabilities), grpo.py (the GRPO objective and update), diversity.py (mode-collapse monitor),
finetune.py (the loop behind `proxt2i finetune grpo`), r0.py (reward-gradient fine-tuning). The rewards
themselves live in proxt2i.rewards."""
