"""
The user commands.

detect, compare, model_info, rknn_convert, demo, diag_monitor, lifecycle_ctl.
"""
