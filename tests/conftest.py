"""Suite-wide: the run ends with one line per reason tests were skipped, so a machine without
PostgreSQL, Redis, Chromium or ../shared says what it did not test and why."""

from __future__ import annotations

from collections import Counter


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    reasons: Counter[str] = Counter()
    for report in terminalreporter.stats.get("skipped", []):
        _, _, reason = report.longrepr if isinstance(report.longrepr, tuple) else ("", "", str(report.longrepr))
        reasons[reason.removeprefix("Skipped: ").splitlines()[0]] += 1
    if not reasons:
        return
    terminalreporter.write_sep("-", "not tested on this machine")
    for reason, count in reasons.most_common():
        terminalreporter.write_line(f"{count} test(s) skipped: {reason}")
