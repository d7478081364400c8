"""Output decoders by layout name; importing this package registers the built-in ones."""

from hobot_npu_infer.core.decoders.base import (Decoder, create_decoder, decoder_names,
                                                register_decoder)
from hobot_npu_infer.core.decoders import centerface, ssd, yolo, zoo_yolo

__all__ = ['Decoder', 'create_decoder', 'decoder_names', 'register_decoder']
