"""Reading an ONNX file, with an error that names the file instead of protobuf's own."""

from hobot_npu_infer.core.errors import ModelLoadError


def read_onnx(path: str, load_external_data: bool = True):
    """Return the ``onnx.ModelProto`` in ``path``; ModelLoadError when it is not ONNX."""
    import onnx
    try:
        return onnx.load(path, load_external_data=load_external_data)
    except Exception as exc:  # protobuf's own errors for a file that is not ONNX
        raise ModelLoadError(f'cannot read {path} as ONNX: {str(exc)[:160]}') from None


def graph_inputs(model) -> list:
    """Return the graph's inputs, initialisers aside (older exports list weights as inputs)."""
    constants = {init.name for init in model.graph.initializer}
    return [value for value in model.graph.input if value.name not in constants]
