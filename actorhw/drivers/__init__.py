"""Drivers: the plugin API that actors/ may use (BoardDriver, Peripheral, PendingIO,
board definitions, plugin discovery, stream writer).

May import: core.
"""
