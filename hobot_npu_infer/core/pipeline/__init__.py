"""
One image batch through a model.

Pre-processing, the detection pipeline and its contract, crops.
"""
