"""Tree: every actor (supervisor, registry, boards, devices, limiter, monitor, session
books).

May import: drivers, links, core; the only layer that imports pykka.
"""
