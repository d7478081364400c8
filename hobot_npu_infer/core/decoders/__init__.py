"""Output decoders by layout name; importing this package registers the built-in ones."""

from .base import Decoder, create_decoder, decoder_names, register_decoder
from . import centerface, ssd, yolo, zoo_yolo  # noqa: F401  (register the built-in decoders)

__all__ = ['Decoder', 'create_decoder', 'decoder_names', 'register_decoder']
