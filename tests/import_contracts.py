"""A contract type of our own for import-linter (pyproject.toml, ``[tool.importlinter]``
``contract_types``): no module is part of an import cycle.

import-linter's ``acyclic_siblings`` squashes each package into one node, so it also reports
rooms that only lean on each other (``services.casework`` and ``services.reporting``), and it
cannot see a package's ``__init__`` cycling with one of its own modules. This one looks at the
graph module by module, as Python imports it: a cycle there is a real import-order hazard (a
module half initialised when another reads from it), whatever the packages say.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Mapping

import grimp
from importlinter import Contract, ContractCheck, fields, output


def strongly_connected(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of ``graph`` with more than one member (Tarjan's
    algorithm, without recursion), each sorted, in sorted order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            following = next(successors, None)
            if following is not None:
                if following not in index:
                    index[following] = low[following] = len(index)
                    stack.append(following)
                    on_stack.add(following)
                    work.append((following, iter(sorted(graph[following]))))
                elif following in on_stack:
                    low[node] = min(low[node], index[following])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return sorted(found)


def shortest_cycle(graph: Mapping[str, set[str]], start: str, within: set[str]) -> list[str]:
    """The shortest path from ``start`` back to itself inside ``within`` (breadth first)."""
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for following in sorted(graph[node] & within):
            if following == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [start, *reversed(path[:-1]), start]
            if following not in came_from:
                came_from[following] = node
                queue.append(following)
    raise ValueError(f"{start} is on no cycle")  # pragma: no cover - only called on a component


def module_graph(graph: grimp.ImportGraph, packages: Iterable[str]) -> dict[str, set[str]]:
    """The direct imports between the modules of ``packages`` (the packages included)."""
    roots = tuple(packages)

    def inside(module: str) -> bool:
        return any(module == root or module.startswith(f"{root}.") for root in roots)

    modules = {module for module in graph.modules if inside(module)}
    return {
        module: {imported for imported in graph.find_modules_directly_imported_by(module)} & modules
        for module in modules
    }


class AcyclicModulesContract(Contract):
    """Every module of ``packages`` can be imported before everything that imports it."""

    type_name = "acyclic_modules"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        modules = module_graph(graph, self.packages)  # type: ignore[arg-type]
        cycles = []
        for component in strongly_connected(modules):
            path = shortest_cycle(modules, component[0], set(component))
            lines = [
                f"{importer} -> {imported} (l. {detail['line_number']}: {detail['line_contents']})"
                for importer, imported in itertools.pairwise(path)
                for detail in graph.get_import_details(importer=importer, imported=imported)[:1]
            ]
            cycles.append({"component": component, "cycle": path, "lines": lines})
        return ContractCheck(kept=not cycles, metadata={"cycles": cycles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for found in check.metadata["cycles"]:
            output.print_error(f"{len(found['component'])} modules import each other:")
            output.print_error(", ".join(found["component"]))
            output.print_error("for example:")
            for line in found["lines"]:
                output.print_error(f"  {line}")
            output.new_line()
