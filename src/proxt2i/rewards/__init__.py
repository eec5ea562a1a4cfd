"""Rewards behind one protocol: reward(images float [B, 3, H, W] in [0, 1], prompts: list[str]) -> [B].

protocol.py      RewardFn and the input check every reward runs
embedded.py      alignment, alignment-acc, alignment-prob, clip, brightness (the shipped evaluator; offline)
hugging_face.py  pickscore, clipscore, hpsv2, aesthetic, imagereward (real models from local folders)
registry.py      REWARDS (name -> loader), the `NAME[:DIR][=WEIGHT],...` parser and the weighted sum

    reward = combine_rewards("alignment=1.0,clip=0.5")
    reward(images, prompts)                     # [B]
"""

from .embedded import alignment, alignment_accuracy, alignment_probability, brightness, clip
from .hugging_face import (
    AestheticReward, CLIPReward, ImageRewardModel, RewardMLP, image_preprocessing, load_reward_mlp, to_model_pixels,
)
from .protocol import RewardFn, check_images
from .registry import REWARDS, CombinedReward, combine_rewards, parse_reward_spec

__all__ = [
    "RewardFn", "check_images",
    "alignment", "alignment_accuracy", "alignment_probability", "clip", "brightness",
    "CLIPReward", "AestheticReward", "ImageRewardModel", "RewardMLP", "load_reward_mlp", "image_preprocessing", "to_model_pixels",
    "REWARDS", "CombinedReward", "combine_rewards", "parse_reward_spec",
]
