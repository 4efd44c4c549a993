"""Ordered training streams: which block of which domain comes at each training position."""
