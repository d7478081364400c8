"""Rockchip NPUs: the rknn backend, what a .rknn file records, and rknn-toolkit2's simulator."""
