"""Tooling for running the stack (SPEC §9): its lifecycle, the load generator and the scenario mix,
the smoke and parity probes, and the demo roster. No daemon imports this package; it calls the
daemons through the typed clients in :mod:`lakehouse_common.contracts`.
"""
