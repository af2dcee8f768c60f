"""``kmine --help``, every command's ``--help`` and argument errors answer without importing
torch, the server's or the UI's libraries: those load only inside the commands that use them
(the help once took 49–56 s under load). The engine's packages re-export lazily
(:mod:`kmine._lazy`) and the modules holding the CLI's choice lists import heavy libraries on
first use, so the lists stay written once, in the engine.

Each check runs ``python -X importtime -m server.cli …`` in a fresh interpreter, the way the
console script runs, and reads every module it imported from ``-X importtime``. No timing is
asserted: the machine may be loaded.
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command

from kmine.data import SUBSETS
from kmine.evaluation import FRAMES
from kmine.predict import MODES
from kmine.prompts import PROMPT_CHOICES
from kmine.teacher import TEACHER_NAMES
from kmine.training import SCHEDULES
from server.cli import app
from server.core.roles import TOKEN_ROLES
from server.services.export_formats import EXPORT_FORMATS

ROOT = Path(__file__).resolve().parents[1]

# Top-level packages a help text or an argument error must not import.
HEAVY = {
    "torch", "torchvision", "segmentation_models_pytorch", "segment_anything", "mobile_sam", "timm",
    "gradio", "fastapi", "starlette", "uvicorn", "sqlalchemy", "alembic", "celery", "kombu", "scipy", "PIL",
}
COMMANDS = ["split", "train", "pretrain", "predict", "evaluate", "experiment", "demo", "serve", "worker", "token", "export"]
# Command groups and their commands (checked like the others, as "group command").
GROUPS = {"token": ["create", "list", "revoke"]}
LEAVES = [c for c in COMMANDS if c not in GROUPS] + [f"{g} {c}" for g, cs in GROUPS.items() for c in cs]
NO_PARAMS = {"token list"}  # commands that take no argument or option
# The engine's lists each command offers as choices: its help shows them in full.
CHOICES = {
    "train": [SCHEDULES, TEACHER_NAMES, PROMPT_CHOICES],
    "predict": [MODES, TEACHER_NAMES, PROMPT_CHOICES],
    "evaluate": [(*SUBSETS, "all"), MODES, FRAMES, TEACHER_NAMES],
    "token create": [TOKEN_ROLES],
    "export": [EXPORT_FORMATS],
}
# Packages whose __init__ re-exports lazily (kmine._lazy).
LAZY_PACKAGES = ["kmine.data", "kmine.teacher", "kmine.training", "kmine.student"]


def run(*args: str, code: str | None = None) -> tuple[subprocess.CompletedProcess, set[str]]:
    """``python -X importtime -m server.cli *args`` (or ``-c code``) from this tree; the result,
    its stderr without the import-time lines, and every module the process imported."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "COLUMNS": "200"}
    command = ["-c", code] if code is not None else ["-m", "server.cli", *args]
    proc = subprocess.run([sys.executable, "-X", "importtime", *command], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)
    lines = proc.stderr.splitlines()
    imported = {line.rsplit("|", 1)[1].strip() for line in lines if line.startswith("import time:") and "|" in line}
    proc.stderr = "\n".join(line for line in lines if not line.startswith("import time:"))
    return proc, imported


def heavy(imported: set[str]) -> list[str]:
    """The heavy packages among ``imported``."""
    return sorted({m.split(".")[0] for m in imported} & HEAVY)


def test_every_command_is_checked():
    commands = get_command(app).commands
    assert sorted(commands) == sorted(COMMANDS)
    for group, names in GROUPS.items():
        assert sorted(commands[group].commands) == sorted(names)


def command_of(name: str):
    """The click command ``name`` names ("train", "token create")."""
    command = get_command(app)
    for part in name.split():
        command = command.commands[part]
    return command


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_group_help_lists_its_commands_without_heavy_imports(group):
    proc, imported = run(group, "--help")
    assert proc.returncode == 0, proc.stderr
    assert not heavy(imported), f"`kmine {group} --help` imported {heavy(imported)}"
    for command in GROUPS[group]:
        assert command in proc.stdout


def test_top_level_help_lists_the_commands_without_heavy_imports():
    proc, imported = run("--help")
    assert proc.returncode == 0, proc.stderr
    assert "kmine.cli" in imported and not heavy(imported), heavy(imported)
    for command in COMMANDS:
        assert command in proc.stdout


@pytest.mark.parametrize("command", LEAVES)
def test_command_help_names_its_options_without_heavy_imports(command):
    proc, imported = run(*command.split(), "--help")
    assert proc.returncode == 0, proc.stderr
    assert not heavy(imported), f"`kmine {command} --help` imported {heavy(imported)}"
    help_text = proc.stdout
    params = [p for p in command_of(command).params if not p.hidden]
    assert bool(params) != (command in NO_PARAMS), params
    for param in params:  # every option named and described (the arguments' names are lower-cased metavars)
        assert param.opts[0] in help_text, f"`kmine {command} --help` does not name {param.opts[0]}"
        assert param.help, f"`kmine {command}`: {param.opts[0]} has no help text"
        assert " ".join(param.help.split()[:3]) in help_text, param.help
    for choices in CHOICES.get(command, []):
        assert "|".join(choices) in help_text, choices
    verbose = [line for line in help_text.splitlines() if "--verbose" in line]
    if verbose:
        assert "Log progress details." in verbose[0], verbose


ERRORS = [
    (["train"], "Missing argument 'data'."),
    (["train", "data", "--schedule", "nope"], "Invalid value for '--schedule'"),
    (["pretrain", "data", "--batch-size", "1"], "Invalid value for '--batch-size'"),
    (["nosuchcommand"], "No such command 'nosuchcommand'."),
    (["token", "create", "x", "--role", "root"], "Invalid value for '--role'"),
    (["token", "revoke", "0"], "Invalid value for 'token_id'"),
]


@pytest.mark.parametrize("args, message", ERRORS, ids=[" ".join(a) for a, _ in ERRORS])
def test_argument_error_is_one_readable_line_without_heavy_imports(args, message):
    proc, imported = run(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert not heavy(imported), f"`kmine {' '.join(args)}` imported {heavy(imported)}"
    assert "Traceback" not in proc.stderr
    assert [line for line in proc.stderr.splitlines() if message in line], proc.stderr
    assert "Usage:" in proc.stderr


def test_the_choice_lists_modules_import_light():
    """What the CLI, the API's schemas and the UI read the engine's lists from."""
    proc, imported = run(code=(
        "import kmine.data, kmine.teacher, kmine.training, kmine.student, kmine.evaluation, kmine.predict, kmine.prompts\n"
        "from kmine.data import SUBSETS\nfrom kmine.evaluation import FRAMES\nfrom kmine.predict import MODES\n"
        "from kmine.prompts import PROMPT_CHOICES\nfrom kmine.teacher import DEFAULT_TEACHER, TEACHER_NAMES\n"
        "from kmine.training import SCHEDULES, Callback\nfrom kmine.training.strategy import PseudoStrategy\n"
        "print(SUBSETS, FRAMES, MODES, PROMPT_CHOICES, TEACHER_NAMES, DEFAULT_TEACHER, SCHEDULES, PseudoStrategy())\n"
    ))
    assert proc.returncode == 0, proc.stderr
    assert not heavy(imported), heavy(imported)
    assert "mobilesam" in proc.stdout and "continuous" in proc.stdout


def _declared(package: str) -> dict[str, str]:
    """A lazy package's re-exports as its ``if TYPE_CHECKING:`` block imports them: name → module."""
    path = ROOT / package.replace(".", "/") / "__init__.py"
    declared = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for statement in node.body:
                assert isinstance(statement, ast.ImportFrom), ast.unparse(statement)
                module = f"{package}.{statement.module}" if statement.level else statement.module
                for alias in statement.names:
                    declared[alias.asname or alias.name] = module
    return declared


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_lazy_package_gives_what_it_declares(package):
    """The names a type checker sees (the TYPE_CHECKING imports) are the package's ``__all__``,
    in order, and each resolves to the very object of the module it is declared from."""
    declared = _declared(package)
    assert declared
    module = importlib.import_module(package)
    assert list(module.__all__) == list(declared)
    for name, origin in declared.items():
        assert getattr(module, name) is getattr(importlib.import_module(origin), name), name
    assert set(declared) <= set(dir(module))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        module.nope  # noqa: B018
    namespace: dict = {}
    exec(f"from {package} import *", namespace)
    assert set(declared) <= set(namespace)
