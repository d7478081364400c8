"""One image batch through a model: pre-processing, the detection pipeline and its contract, crops."""
