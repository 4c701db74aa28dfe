"""API: what callers hold (Runtime, handles, sessions, limiter and monitor facades,
manager, jobs, asyncio facade).

May import: tree, drivers, links, core; never pykka.
"""
