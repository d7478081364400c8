"""Output decoders by layout name; importing this package registers the built-in ones."""

# The decoder modules are imported only to register the built-in decoders.
from hobot_npu_infer.core.decoders import (  # noqa: F401
    centerface,
    classify,
    semantic,
    ssd,
    yolo,
    yolo_end2end,
    zoo_yolo,
)
from hobot_npu_infer.core.decoders.base import (
                                                create_decoder,
                                                Decoder,
                                                decoder_names,
                                                register_decoder,
)

__all__ = ['Decoder', 'create_decoder', 'decoder_names', 'register_decoder']
