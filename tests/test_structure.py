"""The house's shape: the package's import graph has no circle, the algorithms are peers
below the loop, the registry names what `Config` accepts, and no test module imports
another (their helpers live in tests/helpers.py)."""

import ast
from pathlib import Path

import purejaxdqn
from purejaxdqn.algorithms import ALGORITHMS as REGISTRY
from purejaxdqn.config import ALGORITHMS

# Each registered algorithm's module, by the module of its block.
MODULES = [algorithm.run_block.__module__.split(".")[-1] for algorithm in REGISTRY.values()]

PACKAGE = Path(purejaxdqn.__file__).parent
TESTS = Path(__file__).parent


def imports_of(path: Path, package: str) -> set[str]:
    """The modules of `package` that the file at `path` imports, at its top or inside a
    function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parts = node.module.split(".")
            if parts[0] == package:
                found |= ({parts[1]} if len(parts) > 1 else {a.name for a in node.names})
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names
                      if a.name.startswith(package + ".")}
    return found - {path.stem}


def graph() -> dict[str, set[str]]:
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    return {p.stem: imports_of(p, "purejaxdqn") & modules for p in PACKAGE.glob("*.py")}


def reachable(graph: dict, start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for module in graph[todo.pop()] - seen:
            seen.add(module)
            todo.append(module)
    return seen


def test_the_package_has_no_import_circle():
    arrows = graph()
    assert sum(map(len, arrows.values())) > 40  # the graph was read
    circles = sorted((a, b) for a in arrows for b in arrows[a] if a in reachable(arrows, b))
    assert circles == []


def test_the_algorithms_are_peers_below_the_loop():
    arrows = graph()
    assert sorted(MODULES) == ["dqn", "pqn", "pqn_rnn", "r2d2"]
    for algorithm in MODULES:
        below = reachable(arrows, algorithm)
        assert algorithm in arrows["algorithms"]
        assert not below & ({"train", "algorithms", "runner", "cli", "commands"}
                            | set(MODULES) - {algorithm}), (algorithm, below)
    assert arrows["train"] & set(MODULES) == set()  # the loop knows them by the registry


def test_the_registry_runs_what_config_accepts():
    from purejaxdqn import Config
    from purejaxdqn.algorithms import algorithm_of

    assert tuple(name for name in REGISTRY if not name.endswith("_rnn")) == ALGORITHMS
    recurrent = Config(algorithm="pqn", memory="gru", num_envs=4, eval_every=0)
    assert algorithm_of(recurrent) is REGISTRY["pqn_rnn"]
    assert algorithm_of(Config(memory="lstm")) is REGISTRY["dqn_rnn"]
    assert algorithm_of(Config(algorithm="pqn")) is REGISTRY["pqn"]
    for algorithm in REGISTRY.values():
        assert callable(algorithm.init_state) and callable(algorithm.run_block)


def test_no_test_module_imports_another():
    for path in TESTS.glob("*.py"):
        assert imports_of(path, "tests") <= {"helpers"}, path.name
