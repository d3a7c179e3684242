"""The shape of ``cli/``'s InfluxDB code: one module builds the auth header, one method per endpoint.

Why grep tests: both rules are about where code lives, not what it does (the behaviour is covered
by the tests against the real servers). A second place that builds an ``Authorization`` header
or calls an endpoint is how the three client stacks this package replaced came to differ, so the
rules are checked on every run.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

CLI = Path(__file__).resolve().parent.parent / "cli"
AUTH_MODULE = CLI / "influx" / "auth.py"
CLIENT_MODULES = {CLI / "influx" / f"v{n}.py" for n in (1, 2, 3)}

# A string literal that is the header's name, or an f-string that starts a header's value.
_HEADER_NAME = re.compile(r"""["']Authorization["']""")
_HEADER_VALUE = re.compile(r"""f?["'](?:Basic|Token|Bearer) (?:\{|["'] *\+)""")
# An endpoint path as a string literal of its own: "/api/v2/buckets", f"/api/v2/tasks/{id}",
# "/query", "/write", "/ping", "/health".
_PATH = re.compile(r"""f?["'](/api/v\d/[\w/{}\[\]'".-]*?|/query|/write|/ping|/health)["']""")
# An HTTP method followed by the path it is sent to (a ``links.next`` page may come first).
_CALL = re.compile(
    r"""["'](GET|POST|PUT|PATCH|DELETE)["'],\s*(?:\w+ or )?f?["'](/[\w/{}\[\]'".-]*?)["']"""
)


def _sources() -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for path in sorted(CLI.rglob("*.py"))}


def test_only_the_auth_module_builds_the_authorization_header() -> None:
    builders = [
        f"{path.relative_to(CLI)}:{text.count(chr(10), 0, match.start()) + 1}"
        for path, text in _sources().items()
        for pattern in (_HEADER_NAME, _HEADER_VALUE)
        for match in pattern.finditer(text)
        if path != AUTH_MODULE
    ]
    assert builders == []
    auth = AUTH_MODULE.read_text(encoding="utf-8")
    assert _HEADER_NAME.search(auth)
    assert _HEADER_VALUE.search(auth)


def test_endpoint_paths_appear_only_in_the_version_clients() -> None:
    outside = [
        f"{path.relative_to(CLI)}: {match[1]}"
        for path, text in _sources().items()
        if path not in CLIENT_MODULES
        for match in _PATH.finditer(text)
    ]
    assert outside == []


def test_each_endpoint_is_called_from_one_method() -> None:
    calls: Counter[tuple[str, str, str]] = Counter()
    for path, text in _sources().items():
        for match in _CALL.finditer(text):
            calls[(path.name, match[1], match[2])] += 1
    assert calls, "no endpoint call found: the pattern no longer matches the clients"
    repeated = sorted(key for key, count in calls.items() if count > 1)
    assert repeated == []
    assert {name for name, _, _ in calls} <= {p.name for p in CLIENT_MODULES}
