"""Every rule runs in a pinned conda-forge environment that provides what its code imports.

Conda channels cannot be reached from CI, so the environments are checked
statically. Each file under envs/ must parse, use only conda-forge and pin
every package. For every rule (read through the Snakemake API), the
environment must list a conda package for every third-party module that the
rule's script imports, directly or through the equipipe modules it imports. equipipe itself
is installed into the environment by a pip entry that points at the repository
(``-e ..``: conda runs pip in the directory of the environment file).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from workflow_harness import REPO, list_rules

ENVS = REPO / "envs"
LIBRARY = REPO / "src"

# Import name -> conda-forge package name, where they differ (the rest map to
# the import name in lower case with "_" replaced by "-").
CONDA_PACKAGES = {
    "torch": "pytorch",
    "sklearn": "scikit-learn",
    "yaml": "pyyaml",
    "openTSNE": "opentsne",
    "PIL": "pillow",
    "skimage": "scikit-image",
    "cv2": "opencv",
    "dateutil": "python-dateutil",
    "Bio": "biopython",
    "torchdeq": "torchdeq",
}
# conda-forge packages that provide an import under another package's name.
ALSO_PROVIDED_BY = {"matplotlib": {"matplotlib-base"}}
# Distribution names in pyproject.toml -> conda-forge package names.
DISTRIBUTION_PACKAGES = {"torch": "pytorch", "opentsne": "opentsne", "matplotlib": "matplotlib"}
# Provided to every rule's script by Snakemake itself, which appends its own
# module search path to the script's sys.path.
PROVIDED_BY_SNAKEMAKE = {"snakemake"}
# The pip entry that installs this repository in editable mode.
EQUIPIPE_PIP_ENTRY = "-e .."
PINNED = re.compile(r"^(?P<name>[A-Za-z0-9_.\-]+)=(?P<version>[0-9][A-Za-z0-9_.+!]*)$")
CHANNELS = {"conda-forge", "nodefaults"}


def env_files() -> list[Path]:
    return sorted(ENVS.glob("*.yaml"))


def load_env(path: Path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def conda_packages(env: dict) -> dict[str, str]:
    """Return ``{package name: version}`` of the conda dependencies of an environment."""
    packages = {}
    for entry in env["dependencies"]:
        if isinstance(entry, str):
            match = PINNED.match(entry.removeprefix("conda-forge::"))
            if match:
                packages[match.group("name").lower()] = match.group("version")
            else:
                packages[entry.lower()] = ""
    return packages


def pip_entries(env: dict) -> list[str]:
    return [item for entry in env["dependencies"] if isinstance(entry, dict) for item in entry.get("pip", [])]


# ------------------------------------------------------------------ imports


def _guarded_by_import_error(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """Return True when ``node`` sits in a try block that handles ImportError."""
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.Try) and child in parent.body:
            for handler in parent.handlers:
                names = []
                if isinstance(handler.type, ast.Name):
                    names = [handler.type.id]
                elif isinstance(handler.type, ast.Tuple):
                    names = [elt.id for elt in handler.type.elts if isinstance(elt, ast.Name)]
                if {"ImportError", "ModuleNotFoundError"} & set(names):
                    return True
        child, parent = parent, parents.get(parent)
    return False


def imported_modules(path: Path) -> set[str]:
    """Return the absolute module names that a Python file imports.

    Relative imports are resolved against the file's package under src/;
    imports in a try block that handles ImportError are optional and skipped.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}
    package = _package_of(path)
    modules = set()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or _guarded_by_import_error(node, parents):
            continue
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(filter(None, [*parts, base]))
        modules.add(base)
        # `from package import name` may import the submodule package.name.
        modules.update(f"{base}.{alias.name}" for alias in node.names)
    return modules


def _package_of(path: Path) -> str:
    try:
        relative = path.resolve().relative_to(LIBRARY)
    except ValueError:
        return ""
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1])
    return ".".join(parts[:-1])


def library_file(module: str) -> Path | None:
    """Return the source file of an equipipe module, or None when it is not a module."""
    base = LIBRARY.joinpath(*module.split("."))
    if (base / "__init__.py").exists():
        return base / "__init__.py"
    if base.with_suffix(".py").exists():
        return base.with_suffix(".py")
    return None


def third_party_imports(script: Path) -> dict[str, str]:
    """Return ``{top-level module: file that imports it}`` for a script and the library it uses.

    equipipe modules are followed recursively, parent packages included, since
    importing ``equipipe.a.b`` runs ``equipipe/__init__.py`` and ``equipipe/a/__init__.py``.
    """
    found: dict[str, str] = {}
    queue = [script]
    visited: set[Path] = set()
    while queue:
        path = queue.pop()
        if path in visited:
            continue
        visited.add(path)
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top == "equipipe":
                parts = module.split(".")
                for depth in range(1, len(parts) + 1):
                    source = library_file(".".join(parts[:depth]))
                    if source is not None:
                        queue.append(source)
                found.setdefault("equipipe", _display(path))
            elif top and top not in sys.stdlib_module_names and top != "__future__":
                found.setdefault(top, _display(path))
    return found


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def conda_package_for(module: str) -> str:
    return CONDA_PACKAGES.get(module, module.lower().replace("_", "-"))


# ------------------------------------------------------------------ tests


@pytest.fixture(scope="module")
def rules() -> dict[str, dict]:
    return list_rules()


def test_envs_exist():
    assert env_files(), f"no environment files in {ENVS}"


@pytest.mark.parametrize("path", env_files(), ids=lambda path: path.name)
def test_env_file_conda_forge_pinned(path):
    env = load_env(path)
    assert isinstance(env, dict), f"{path.name}: top level must be a mapping"
    assert set(env.get("channels", [])) <= CHANNELS, f"{path.name}: channels {env.get('channels')}"
    assert "conda-forge" in env["channels"], f"{path.name}: conda-forge missing from channels"
    assert "defaults" not in env["channels"], f"{path.name}: 'defaults' channel"
    for entry in env["dependencies"]:
        if isinstance(entry, dict):
            assert set(entry) == {"pip"}, f"{path.name}: unexpected entry {entry}"
            continue
        assert "::" not in entry or entry.startswith("conda-forge::"), f"{path.name}: {entry} names another channel"
        bare = entry.removeprefix("conda-forge::")
        if bare == "pip":
            continue  # pip itself only runs the pip entries
        assert PINNED.match(bare), f"{path.name}: '{entry}' is not pinned as name=version"


@pytest.mark.parametrize("path", env_files(), ids=lambda path: path.name)
def test_env_pip_entries_pinned_or_repository(path):
    env = load_env(path)
    for entry in pip_entries(env):
        assert entry == EQUIPIPE_PIP_ENTRY or re.match(r"^[A-Za-z0-9_.\-]+==[0-9]", entry), (
            f"{path.name}: pip entry '{entry}' is neither pinned (name==version) nor the repository ({EQUIPIPE_PIP_ENTRY})"
        )
    if pip_entries(env):
        assert "pip" in conda_packages(env), f"{path.name}: pip entries need 'pip' in dependencies"


def test_every_rule_has_conda_env(rules):
    missing = [name for name, rule in rules.items() if rule["executes"] and not rule["conda_env"]]
    assert not missing, f"rules without a conda: environment: {missing}"


def test_conda_envs_are_under_envs(rules):
    for name, rule in rules.items():
        if rule["conda_env"]:
            path = Path(rule["conda_env"]).resolve()
            assert path.parent == ENVS.resolve(), f"rule {name}: environment {path} is not in envs/"
            assert path.exists(), f"rule {name}: environment {path} does not exist"


def missing_packages(script: Path, env: dict) -> list[str]:
    """Return one line per module that ``script`` (or the library it uses) imports and ``env`` lacks."""
    packages = set(conda_packages(env))
    # A package that conda-forge lacks may come from PyPI as a pinned pip entry.
    packages |= {entry.split("==")[0].lower() for entry in pip_entries(env) if "==" in entry}
    problems = []
    for module, importer in sorted(third_party_imports(script).items()):
        if module in PROVIDED_BY_SNAKEMAKE:
            continue
        if module == "equipipe":
            if EQUIPIPE_PIP_ENTRY not in pip_entries(env):
                problems.append(f"the pip entry '{EQUIPIPE_PIP_ENTRY}' (equipipe, imported by {importer})")
            continue
        wanted = {conda_package_for(module)} | ALSO_PROVIDED_BY.get(module, set())
        if not wanted & packages:
            problems.append(f"{' or '.join(sorted(wanted))} (module '{module}', imported by {importer})")
    return problems


def test_rule_envs_provide_imports(rules):
    problems = []
    for name, rule in sorted(rules.items()):
        if not rule["conda_env"] or not rule["script"]:
            continue
        env_path = Path(rule["conda_env"]).resolve()
        for problem in missing_packages(Path(rule["script"]).resolve(), load_env(env_path)):
            problems.append(f"rule {name}: envs/{env_path.name} lacks {problem}")
    assert not problems, "environments miss packages that the rules import:\n" + "\n".join(problems)


def test_envs_provide_equipipe_dependencies():
    """pip installs nothing from PyPI for ``-e ..`` when the env has all required distributions."""
    with open(REPO / "pyproject.toml", "rb") as handle:
        required = tomllib.load(handle)["project"]["dependencies"]
    names = [re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower() for requirement in required]
    problems = []
    for path in env_files():
        env = load_env(path)
        if EQUIPIPE_PIP_ENTRY not in pip_entries(env):
            continue
        packages = set(conda_packages(env))
        for name in names:
            wanted = {DISTRIBUTION_PACKAGES.get(name, name)} | ALSO_PROVIDED_BY.get(name, set())
            if not wanted & packages:
                problems.append(f"{path.name}: lacks {name}, which pyproject.toml requires, so pip would fetch it from PyPI")
    assert not problems, "\n".join(problems)


def test_import_walk_follows_library(tmp_path):
    """equipipe imports are followed into src/, optional imports and the stdlib are skipped."""
    script = tmp_path / "script.py"
    script.write_text(
        "import json\n"
        "import numpy as np\n"
        "from equipipe.logs import log_to_file\n"
        "import not_a_real_package.sub\n"
        "try:\n"
        "    import optional_package\n"
        "except ImportError:\n"
        "    optional_package = None\n"
    )
    found = third_party_imports(script)
    assert {"numpy", "equipipe", "not_a_real_package"} <= set(found)
    assert "json" not in found
    assert "optional_package" not in found
    assert "logging" not in found


def test_missing_package_reported(tmp_path):
    """An environment that lacks an imported package fails the check."""
    script = tmp_path / "script.py"
    script.write_text("import numpy\nimport torch\nfrom sklearn.cluster import KMeans\n")
    env = {"channels": ["conda-forge"], "dependencies": ["python=3.11", "numpy=2.4.6", "pytorch=2.13.0"]}
    problems = missing_packages(script, env)
    assert len(problems) == 1
    assert "scikit-learn" in problems[0]
    env["dependencies"].append("scikit-learn=1.9.1")
    assert missing_packages(script, env) == []
