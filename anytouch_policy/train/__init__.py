"""Imitation learning of the pouring policy from episode bags: frozen (cached embeddings) or fine-tuned encoder."""

from anytouch_policy.train.augment import Augment
from anytouch_policy.train.cache import EmbeddingCache
from anytouch_policy.train.config import TrainConfig, TrainMode
from anytouch_policy.train.run import TrainResult, train

__all__ = ["Augment", "EmbeddingCache", "TrainConfig", "TrainMode", "TrainResult", "train"]
