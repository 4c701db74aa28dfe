"""Core: ids, lifecycle table, errors, messages, codec, events, resource figures.

May import: nothing else of actorhw; no pykka, no I/O.
"""
