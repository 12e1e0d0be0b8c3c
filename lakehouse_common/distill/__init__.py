"""Distillation (SPEC §7; docs/distill.md): the system's daily work → training and retrieval data.

Batch jobs over observerd's `_kb` streams, one module per stage, each a pure function of its
input whose outputs are byte-identical on a re-run:

- :mod:`.materialize` — `_kb/*.jsonl` → day-partitioned evidence (one transform per stream,
  :mod:`.transforms`; the record and its hashes, :mod:`.records`);
- :mod:`.score` — a tier per record (accepted / partial / rejected), human labels overriding;
- :mod:`.export` — SFT, RAG and preference-pair rows through the contamination firewall
  (:mod:`.firewall`);
- :mod:`.run` — all stages in order and the run summary; :mod:`.audit_full` — phases 0–7 and
  the baselines; :mod:`.drift` — two baselines compared;
- :mod:`.replay` — recorded iterate tasks re-run through the live stack;
  :mod:`.events` — the `human_feedback` and `replay_runs` events distillation writes.

Shared: :mod:`.layout` (where files live), :mod:`.jsonl` (streaming reads, idempotent writes),
:mod:`.stage` (receipts). The command line is `lakehouse distill …`
(:mod:`lakehouse_common.cli.distill`).
"""
