"""Discover the fleet: find every Cognito custom domain of the accounts, and the certificate to move it to.

inputs (accounts file, map file, Organizations) -> inventory (per account and region, through the same calls
layer and account loop as `run`) -> select (pure; the same certificate checks as `run`) -> output (manifest +
inventory).

May import: ``aws``, ``migration`` (settings and the certificate checks), ``records`` and the pure top modules, and
``fleet.events``. Never ``cli`` or the sandbox.
"""
