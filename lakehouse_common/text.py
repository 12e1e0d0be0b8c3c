"""The one form in which roles, cities and query texts are compared across daemons (SPEC §5).

matrixd keys playbooks by the normalised query and role (`playbook_id`, `role_norm`) and gates
boosts by role, pathwayd indexes pathways by role, validatord compares a fill's claimed role and
city with the roster's: they must agree on what "the same role" means, so there is one function.
"""

from __future__ import annotations


def normalise(text: str) -> str:
    """Trimmed, inner whitespace collapsed to one space, case-folded
    (`"  Forklift   OPERATOR "` → `"forklift operator"`)."""
    return " ".join(text.split()).casefold()
