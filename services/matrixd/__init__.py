"""matrixd (SPEC §5): staffing search — retrieval, the role gate and playbook learning — and
the evidence bundles chat prompts are built from. See docs/matrix.md."""
