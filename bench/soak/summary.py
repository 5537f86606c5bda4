"""A soak's summary, as docs/performance.md shows it: operations per kind, faults injected per kind,
what each check looked at, the violations (with the history lines they name), what was explained."""

from __future__ import annotations

from collections import Counter

from bench.soak.checker import describe
from bench.soak.run import SoakResult


def _table(title: str, counts: Counter[str]) -> list[str]:
    lines = [f"| {title} | count |", "|---|---:|"]
    lines += [f"| {name} | {count:,} |" for name, count in sorted(counts.items())]
    lines.append(f"| **total** | **{sum(counts.values()):,}** |")
    return lines


def summary(result: SoakResult) -> str:
    config, report = result.config, result.report
    timing = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in result.seconds.items())
    out = [
        f"soak: seed {config.seed}, faults `{config.faults or 'none'}`, {config.duration:.0f} s of actors"
        + (f", broken build {list(config.broken)}" if config.broken else "")
        + (f", conditions {list(config.conditions)}" if config.conditions else ""),
        f"wall time: {timing}",
        f"history: {result.history_path} ({len(result.history):,} lines); fault log: {result.faults_path}",
        "",
        *_table("operation", report.operations),
        "",
        *_table("fault injected", report.faults),
        "",
        *_table("checked", report.checked),
        "",
        f"violations: {len(report.violations)}" + (f" ({dict(report.kinds())})" if report.violations else ""),
    ]
    if report.violations:
        out.append(describe(result.history, report))
    out.append(f"explained (a lost answer, or documented behaviour), not violations: {len(report.explained)}")
    out += [f"    {violation} -- {why}" for violation, why in report.explained[:20]]
    out += [f"note: {note}" for note in report.notes]
    out += [f"harness failure: {crash}" for crash in result.crashes]
    return "\n".join(out)
