"""The prompts of a drafting session (SPEC §6): what the model is told for each payload kind.

validatord's iterate loop opens every session with :func:`system_prompt` and
:func:`opening_prompt`; distillation's replay (SPEC §7) re-runs recorded tasks with the same two
messages, so a replayed answer is comparable with the recorded one. Moved here from
``services/validatord/iterate.py`` unchanged (issue 8).
"""

from __future__ import annotations

from typing import Any, Final

import orjson

__all__ = ["SMS_MAX_CHARS", "opening_prompt", "system_prompt"]

# SPEC §6: an SMS is at most 160 characters.
SMS_MAX_CHARS: Final = 160

_SHAPES: Final[dict[str, str]] = {
    "fill": (
        'a fill proposal: {"demand": {"role": "<role>", "city": "<city>", "state": "<two-letter '
        'state>", "count": <n>}, "workers": [{"id": "w-<n>", "role": "<role>", "city": "<city>", '
        '"state": "<state>"}, ...]}. Propose exactly `count` distinct workers from the roster, '
        "each of the demand's role and living in its state; never propose an id listed in "
        "exclude_ids."
    ),
    "email": (
        'an email: {"to": "<address>", "subject": "<subject>", "body": "<body>"}. Subject and '
        "body must not be empty. Never include a Social Security number."
    ),
    "sms": (
        f'an SMS: {{"to": "<phone number>", "body": "<text>"}}. The body holds at most '
        f"{SMS_MAX_CHARS} characters. Never include a Social Security number."
    ),
}


def system_prompt(kind: str) -> str:
    return (
        f"You draft {_SHAPES[kind]} Answer with exactly one JSON object and nothing else: no "
        "prose, no Markdown."
    )


def opening_prompt(prompt: str, context: dict[str, Any] | None) -> str:
    if not context:
        return prompt
    return f"{prompt}\n\nContext (JSON):\n{orjson.dumps(context).decode()}"
