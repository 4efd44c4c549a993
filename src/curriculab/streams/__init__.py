"""Ordered training streams: which block of which domain comes at each training position."""

from curriculab.streams import multi  # noqa: F401  (registers the K-domain schedule families)
