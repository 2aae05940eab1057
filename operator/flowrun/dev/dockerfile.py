"""Parse a Dockerfile into stages of instructions, with ARG/ENV substitution as Docker does it.

Only what a plain multi-stage Dockerfile uses is understood (FROM/ARG/ENV/WORKDIR/COPY/RUN/LABEL/
USER/EXPOSE/ENTRYPOINT/CMD); anything else is an error naming the line, never silently skipped.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

KNOWN = {"FROM", "ARG", "ENV", "WORKDIR", "COPY", "RUN", "LABEL", "USER", "EXPOSE",
         "ENTRYPOINT", "CMD"}  # fmt: skip
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class DockerfileError(ValueError):
    """An instruction this builder does not support, or a malformed one."""


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Dockerfile:
    global_args: dict[str, str | None]
    stages: list[Stage]


def substitute(text: str, values: dict[str, str]) -> str:
    """`$VAR` and `${VAR}` from `values`; unknown variables become empty, as in Docker."""
    return _VAR.sub(lambda m: values.get(m.group(1) or m.group(2), ""), text)


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    if pending:
        lines.append(pending)
    return lines


def parse(text: str) -> Dockerfile:
    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    for line in _logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        rest = rest.strip()
        if keyword not in KNOWN:
            raise DockerfileError(f"unsupported instruction {keyword!r} in: {line}")
        if keyword == "FROM":
            words = rest.split()
            as_name = len(words) == 3 and words[1].upper() == "AS"
            if len(words) != 1 and not as_name:
                raise DockerfileError(f"FROM must be `FROM image [AS name]`: {line}")
            stages.append(Stage(words[0], words[2] if as_name else None))
        elif not stages:
            if keyword != "ARG":
                raise DockerfileError(f"only ARG may come before the first FROM: {line}")
            key, eq, value = rest.partition("=")
            global_args[key] = value if eq else None
        else:
            stages[-1].instructions.append((keyword, rest))
    if not stages:
        raise DockerfileError("the Dockerfile has no FROM")
    return Dockerfile(global_args, stages)


def env_pairs(rest: str, values: dict[str, str]) -> list[tuple[str, str]]:
    """The key=value pairs of an ENV or LABEL instruction, variables substituted."""
    pairs = []
    for word in shlex.split(rest):
        key, eq, value = word.partition("=")
        if not eq:
            raise DockerfileError(f"use the KEY=VALUE form: {rest}")
        pairs.append((key, substitute(value, values)))
    return pairs


def exec_form(rest: str) -> list[str]:
    """ENTRYPOINT/CMD: the JSON exec form, or the shell form wrapped in /bin/sh -c."""
    if rest.startswith("["):
        argv = json.loads(rest)
        if not all(isinstance(a, str) for a in argv):
            raise DockerfileError(f"exec form must be a list of strings: {rest}")
        return list(argv)
    return ["/bin/sh", "-c", rest]
