"""Property-based fuzzing of a running service's OpenAPI schema with schemathesis.

:func:`fuzz_openapi` loads ``<base_url>/openapi.json``, and for every operation draws
cases with schemathesis' Hypothesis strategies, positive (valid by the schema) and
negative (invalid), sends each to the live server and records the status. A reply of
500 or above, or a request that raises (the server hung up), is a failure. The run is
seeded, so a failure reproduces.

Used by the test suite (a short budget) and by ``bench/fuzz_services.py`` (a long one).
schemathesis is a development dependency (``pip install -e ".[dev]"``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class FuzzReport:
    """What a fuzzing run tried and what failed.

    Attributes:
        cases: requests sent, per ``"METHOD /path"``.
        statuses: replies per status code (all operations).
        failures: ``(operation, what)`` for every 5xx reply or transport error.
        examples: the first replies (300 characters) of each status, per status.
        accepted_5xx: 5xx replies the caller's ``accept`` declared documented, per status.
        no_cases: ``(operation, mode)`` pairs that have no case to generate (an operation
            without parameters has no negative case).
    """

    cases: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)
    no_cases: list[tuple[str, str]] = field(default_factory=list)
    accepted_5xx: Counter = field(default_factory=Counter)
    examples: dict[int, list[str]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    @property
    def server_errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code >= 500)

    def record(self, name: str, mode: str, status: int, text: str,
               accept: Callable[[int, str], bool] | None = None) -> None:
        """Count one reply of operation ``name``: its status, the first examples of each
        status, and a failure for a 5xx that ``accept`` does not declare documented."""
        self.statuses[status] += 1
        seen = self.examples.setdefault(status, [])
        if len(seen) < 3:
            seen.append(f"{mode} {name}: {text[:300]}")
        if status >= 500:
            if accept and accept(status, text):
                self.accepted_5xx[status] += 1
            else:
                self.failures.append((name, f"{status}: {text[:300]}"))


def fuzz_openapi(base_url: str, max_examples: int = 20, seed: int = 0, timeout_s: float = 60.0,
                 modes: tuple[str, ...] = ("positive", "negative"),
                 accept: Callable[[int, str], bool] | None = None,
                 files: dict[str, bytes] | None = None) -> FuzzReport:
    """Fuzz every operation of the OpenAPI schema served at ``base_url``.

    Args:
        base_url: the service's root URL (its schema is at ``/openapi.json``).
        max_examples: Hypothesis examples per operation and mode.
        seed: the Hypothesis seed.
        timeout_s: per-request timeout.
        modes: ``"positive"`` and / or ``"negative"`` generation.
        accept: ``(status, body) -> True`` for a 5xx reply that is not a failure (a
            documented 503, say); by default every 5xx is a failure.
        files: multipart file fields to put into the positive cases that carry them
            (real images and maps, so that the generated parameters reach the whole
            pipeline instead of stopping at "not a PNG").
    Returns:
        The :class:`FuzzReport`.
    """
    import hypothesis
    import schemathesis
    from schemathesis import GenerationMode

    report = FuzzReport()
    schema = schemathesis.openapi.from_url(base_url.rstrip("/") + "/openapi.json")
    for result in schema.get_all_operations():
        operation = result.ok()
        name = f"{operation.method.upper()} {operation.path}"
        for mode in modes:
            strategy = operation.as_strategy(generation_mode=GenerationMode(mode))

            @hypothesis.settings(max_examples=max_examples, deadline=None, database=None, derandomize=False,
                                 suppress_health_check=list(hypothesis.HealthCheck),
                                 phases=[hypothesis.Phase.generate])
            @hypothesis.seed(seed)
            @hypothesis.given(case=strategy)
            def send(case) -> None:
                report.cases[name] += 1
                if files and mode == "positive":
                    _put_files(case, files)
                try:
                    response = case.call(base_url=base_url, timeout=timeout_s)
                except Exception as e:
                    report.failures.append((name, f"{type(e).__name__}: {e}"[:300]))
                    return
                report.record(name, mode, response.status_code, response.text, accept)

            try:
                send()
            except hypothesis.errors.Unsatisfiable:
                report.no_cases.append((name, mode))
    return report


def _put_files(case, files: dict[str, bytes]) -> None:
    """Replace the generated bytes of the case's multipart file fields named in ``files``."""
    if isinstance(case.body, dict):
        for key, data in files.items():
            if key in case.body:
                case.body[key] = data
