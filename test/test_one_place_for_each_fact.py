"""One place for each fact: no import cycle inside the package, a light parameter schema, the mode and network
tables as the only sources, shipped parameter files that only say what differs, generated parameter docs."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nitedr_ros.core.parameters import SCHEMA_BY_NAME, defaults, flatten, parameters_markdown
from nitedr_ros.modelspec import NETWORKS, networks_for_role
from nitedr_ros.modes import DEFAULT_NETWORKS, MODE_ROLES, MODES, ROLES

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / 'nitedr_ros'


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def import_edges() -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere (module level and inside functions: a lazy import
    back into a module that imports you is a cycle too, only a later one)."""
    modules = {module_name(p): p for p in PACKAGE.rglob('*.py')}
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == '__init__.py'
        for stmt in ast.walk(ast.parse(path.read_text())):
            if isinstance(stmt, ast.Import):
                targets = [a.name for a in stmt.names]
            elif isinstance(stmt, ast.ImportFrom):
                base = stmt.module or ''
                if stmt.level:
                    package = name.split('.') if is_package else name.split('.')[:-1]
                    package = package[:len(package) - (stmt.level - 1)]
                    base = '.'.join(package + ([base] if base else []))
                targets = [base] + [f'{base}.{a.name}' for a in stmt.names]
            else:
                continue
            edges[name].update(t for t in targets if t in modules and t != name)
    return edges


def test_no_import_cycle_inside_the_package():
    edges = import_edges()
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert not cycles, f'import cycles: {cycles}'


def test_the_walker_resolves_relative_and_lazy_imports():
    """The edges of the pipeline config <-> derain cycle this project once had (derain imported config at
    module level, config imported derain inside build_pipeline) are ones the walker sees."""
    edges = import_edges()
    assert 'nitedr_ros.modes' in edges['nitedr_ros.pipeline.config']
    assert 'nitedr_ros.pipeline.derain' in edges['nitedr_ros.pipeline.builders']  # a lazy import
    assert 'nitedr_ros.pipeline.config' not in edges['nitedr_ros.pipeline.derain']


def test_importing_the_parameter_schema_imports_neither_opencv_nor_numpy():
    code = ("import nitedr_ros.core.parameters, sys; "
            "print(sorted(m for m in ('cv2', 'numpy', 'torch', 'onnxruntime') if m in sys.modules))")
    done = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '[]'


def test_modes_and_roles_come_from_the_one_table():
    assert SCHEMA_BY_NAME['mode'].choices == MODES
    assert {f'engine_files.{role}' for role in ROLES} <= set(SCHEMA_BY_NAME)
    assert SCHEMA_BY_NAME['network'].choices == ('', *networks_for_role('derain'))
    for mode, roles in MODE_ROLES.items():
        for role in roles:
            network, _config = DEFAULT_NETWORKS[mode][role]
            assert NETWORKS[network].role == role


def test_every_network_has_a_recipe_an_objective_and_its_output_layer():
    pytest.importorskip('torch')
    from nitedr_ros.networks import build_network
    from nitedr_ros.training.objectives import OBJECTIVES, RECIPES, recipe

    for name, spec in NETWORKS.items():
        assert name in RECIPES and name in OBJECTIVES
        assert recipe(name)['kind'] == spec.role
        if RECIPES[name].get('identity_init'):
            assert spec.output_layer, f'{name} starts as identity, so it needs its output layer named'
            assert hasattr(build_network(name, 'realtime'), spec.output_layer)


@pytest.mark.parametrize('mode', MODES)
def test_shipped_mode_files_set_only_what_differs_from_the_schema(mode):
    document = yaml.safe_load((ROOT / 'config' / f'{mode}.yaml').read_text())
    given = flatten(document['/**']['ros__parameters'])
    assert given.get('mode') == mode
    same = {name: value for name, value in given.items() if name != 'mode' and defaults()[name] == value}
    assert not same, f'config/{mode}.yaml repeats schema defaults: {same}'


def test_the_parameter_docs_are_generated_from_the_schema():
    assert (ROOT / 'docs' / 'PARAMETERS.md').read_text() == parameters_markdown(), (
        'docs/PARAMETERS.md is out of date: nitedr info --parameters > docs/PARAMETERS.md')
