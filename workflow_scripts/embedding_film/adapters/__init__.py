"""One thin adapter per rule: workflow_scripts/embedding_film/adapters/<rule>.py reads its job's input and output files and
settings and calls the film's library (embedding_film.film); it never imports another adapter. An adapter
defines `main(job)` and, when its rule's jobs share heavy imports, `warm(job=None)`, which a warm worker calls
before it forks the job (embedding_film.runtime).

This module is what an adapter receives: the Job. Standard library only (the job client imports it before any
heavy library).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any


class Named(SimpleNamespace):
    """Named values with attribute access (job.input.embeddings), like Snakemake's named lists."""

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self, name, default)

    def keys(self) -> list[str]:
        return list(vars(self))

    def items(self) -> list[tuple[str, Any]]:
        return list(vars(self).items())


@dataclass
class Job:
    """One job of a rule: what its adapter (`embedding_film.adapters.<rule>.main`) reads."""

    rule: str
    input: Named = field(default_factory=Named)
    output: Named = field(default_factory=Named)
    params: Named = field(default_factory=Named)
    wildcards: Named = field(default_factory=Named)
    log: str | None = None
    threads: int = 1
    resources: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, rule: str, text: str, log_file: str | None = None) -> Job:
        spec = json.loads(text)
        return cls(
            rule=rule,
            input=Named(**spec.get("input", {})),
            output=Named(**spec.get("output", {})),
            params=Named(**spec.get("params", {})),
            wildcards=Named(**spec.get("wildcards", {})),
            log=log_file,
            threads=int(spec.get("threads", 1)),
            resources=dict(spec.get("resources", {})),
        )
