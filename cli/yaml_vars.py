"""``${VAR}`` and ``${VAR:-default}`` in bridge.yaml, expanded in string values only.

Expansion runs on the parsed document (so comments are never touched) and before validation
(so ``url: ${X}`` is checked as the URL it becomes). ``$${`` writes a literal ``${``. Secrets
stay references: a variable that holds one (named like a token or password, or named by a
sink's ``token_env``/``password_env``) is never expanded into the rendered files; the sink
names it in ``token_env``/``password_env`` instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_REF = re.compile(r"\$\$\{|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
_SECRET_NAME = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|API_KEY", re.IGNORECASE)
_SECRET_REF_KEYS = ("token_env", "password_env")


@dataclass
class Expansion:
    """One document's expansion: its environment, what it found, and what it referenced."""

    env: Mapping[str, str]
    secrets: set[str]
    problems: list[str]
    used: set[str] = field(default_factory=set)

    def text(self, text: str, where: str) -> str:
        """One string value with its references replaced."""
        key = where.rsplit(".", 1)[-1]
        if key in _SECRET_REF_KEYS:
            self.problems.append(
                f"{where} = {text!r}: {key} holds the variable's name, which Telegraf reads "
                "at start-up: write it without ${...}, e.g. INFLUX_TOKEN"
            )
            return text
        if _REF.sub("", text).count("${"):
            self.problems.append(
                f"{where} = {text!r} has a malformed reference: expected ${{NAME}} or "
                "${NAME:-default}; write $${ for a literal ${"
            )
            return text
        return _REF.sub(lambda match: self._value(match, where), text)

    def _value(self, match: re.Match[str], where: str) -> str:
        name = match.group("name")
        if name is None:
            return "${"  # $${ is a literal ${
        self.used.add(name)
        if name in self.secrets or _SECRET_NAME.search(name):
            self.problems.append(
                f"{where}: ${{{name}}} would write a secret into the rendered files; name the "
                "variable in the sink's token_env (or password_env) instead"
            )
            return match.group(0)
        value = self.env.get(name)
        if value is not None:
            return value
        default = match.group("default")
        if default is not None:
            return default
        self.problems.append(
            f"{where}: environment variable {name} is not set; set it, or give a default "
            f"with ${{{name}:-value}}"
        )
        return match.group(0)

    def walk(self, node: Any, where: str = "") -> Any:
        """``node`` with every string inside it expanded; ``where`` names it in messages."""
        if isinstance(node, str):
            return self.text(node, where) if "${" in node else node
        if isinstance(node, dict):
            return {
                key: self.walk(value, f"{where}.{key}" if where else str(key))
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [self.walk(item, f"{where}[{index}]") for index, item in enumerate(node)]
        return node


def _secret_names(doc: Any) -> set[str]:
    """Variables the document names as holding a secret (token_env, password_env)."""
    found: set[str] = set()
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key in _SECRET_REF_KEYS and isinstance(value, str):
                found.add(value)
            found |= _secret_names(value)
    elif isinstance(doc, list):
        for item in doc:
            found |= _secret_names(item)
    return found


def expand(
    doc: dict[str, object], env: Mapping[str, str], problems: list[str]
) -> tuple[dict[str, object], set[str]]:
    """``doc`` with every ``${...}`` in its string values expanded from ``env``.

    Also returns the names of the variables the document references: those are in use,
    whatever else (a seed's variable group) would read them too.
    """
    expansion = Expansion(env, _secret_names(doc), problems)
    result = expansion.walk(doc)
    assert isinstance(result, dict)  # noqa: S101 - a mapping stays a mapping
    return result, expansion.used
