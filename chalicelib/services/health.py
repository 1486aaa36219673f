"""Health: whether every resource the service uses answers (GET /health)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from chalicelib.domain.errors import DomainError, StorageUnavailableError


def check(probes: Mapping[str, Callable[[], None]]) -> dict[str, str]:
    """Run every probe; {name: "ok"} when all answer, else StorageUnavailableError naming each
    one that did not, and why."""
    failed = []
    for name, probe in probes.items():
        try:
            probe()
        except DomainError as exc:
            failed.append(f"{name}: {exc.message}")
        except Exception as exc:  # a health check answers 503 for anything that went wrong
            failed.append(f"{name}: unavailable ({type(exc).__name__})")
    if failed:
        raise StorageUnavailableError("; ".join(failed), 30)
    return dict.fromkeys(probes, "ok")
