"""The three networks of Make-An-Agent: parameter autoencoder, behavior embedding, conditional U-Net."""
from .autoencoder import ParameterAutoencoder
from .behavior import BehaviorEmbedding
from .normalizer import Normalizer
from .unet import ConditionalUnet1D

__all__ = ["ParameterAutoencoder", "BehaviorEmbedding", "ConditionalUnet1D", "Normalizer"]
