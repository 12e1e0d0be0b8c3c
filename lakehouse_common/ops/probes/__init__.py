"""Probes of a live stack (SPEC §9, issue 9): the smoke chain and the parity probes.

- :mod:`.tally` — the checks a probe makes, counted and printed the same way everywhere;
- :mod:`.smoke` — one smoke per daemon (health + a few real calls);
- :mod:`.story` — the end-to-end story (ingest → index → search → playbook → validate → audit);
- :mod:`.parity` — validator error shapes, extract_json, session-log records, embed vectors;
- :mod:`.materializer` — the distill materializer against its golden evidence (no stack);
- :mod:`.subject_audit` — the audit known answers, then every live subject log.

The ``lakehouse probe …`` commands (``lakehouse_common/cli/probe.py``) run them; the scripts under
``scripts/smoke/`` and ``scripts/parity/`` call those commands. A probe is a client like the CLI
(a cold path): plain httpx.
"""

from lakehouse_common.ops.probes.tally import Probe, ProbeAborted, Tally

__all__ = ["Probe", "ProbeAborted", "Tally"]
