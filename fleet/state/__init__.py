"""The fleet's state file (SQLite): schema and upgrades, the row store with its group commit, runs and history,
holds; the lock; the owner-only opening of both.

May import: the pure top modules and ``fleet.events``. Nothing that calls AWS, renders records, or parses options.
"""
