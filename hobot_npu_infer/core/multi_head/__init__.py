"""Packed multi-head models: a shared trunk, heads split or packed, each head at its own rate."""
