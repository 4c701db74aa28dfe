"""Source extraction: the MicroPython a decorated method sends to the board.

A task's method becomes a board ``def`` (`function_source()`); a setup's or
teardown's body runs at the board's global scope (`body_source()`). Both read the
method with `inspect.getsource()` and drop what is host-only: decorators, ``self``,
annotations, docstrings (and, for bodies, top-level ``global`` statements).
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

from actorhw.core.errors import InvalidArgumentError

__all__ = ["body_source", "function_source"]


def _function_node(func: Callable[..., Any]) -> ast.FunctionDef:
    """The ``def`` of ``func``, parsed from its (dedented) source."""
    if not inspect.isfunction(func):
        raise InvalidArgumentError(
            f"{func!r} is not a plain function; decorate a method defined with def",
            argument="func",
        )
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError) as e:
        raise InvalidArgumentError(
            f"no source for {func.__qualname__}: board code must live in a .py file ({e})",
            argument="func",
        ) from e
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == func.__name__:
            return node
        if isinstance(node, ast.AsyncFunctionDef):
            break
    raise InvalidArgumentError(
        f"{func.__qualname__} must be a plain 'def' (not async, not a lambda)",
        argument="func",
    )


def _strip_docstring(body: list[ast.stmt]) -> list[ast.stmt]:
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        return body[1:]
    return body


def _positional(node: ast.FunctionDef) -> list[ast.arg]:
    return [*node.args.posonlyargs, *node.args.args]


def function_source(func: Callable[..., Any]) -> str:
    """The board-side ``def`` of a task method.

    The method's source (`inspect.getsource()`, dedented) loses its decorators, its
    first parameter (``self``), its annotations and its docstring, which are host-side
    only; default values stay.

    Args:
        func: the undecorated method.

    Returns:
        MicroPython source defining a function of the method's name.

    Raises:
        InvalidArgumentError: no source, not a plain ``def``, or no ``self`` parameter.
    """
    node = _function_node(func)
    if node.args.posonlyargs:
        node.args.posonlyargs = node.args.posonlyargs[1:]
    elif node.args.args:
        node.args.args = node.args.args[1:]
    else:
        raise InvalidArgumentError(
            f"{func.__qualname__} must take self as its first parameter", argument="func"
        )
    node.decorator_list = []
    node.returns = None
    for arg in (*_positional(node), *node.args.kwonlyargs, node.args.vararg, node.args.kwarg):
        if arg is not None:
            arg.annotation = None
    node.body = _strip_docstring(node.body) or [ast.Pass()]
    return ast.unparse(node)


class _ReturnFinder(ast.NodeVisitor):
    """Finds return/yield at the top level of a body (not inside nested scopes)."""

    def __init__(self) -> None:
        self.found: str | None = None

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        return

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        return

    def visit_Lambda(self, node: ast.Lambda) -> None:
        return

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        return

    def visit_Return(self, node: ast.Return) -> None:
        self.found = self.found or "return"

    def visit_Yield(self, node: ast.Yield) -> None:
        self.found = self.found or "yield"

    def visit_YieldFrom(self, node: ast.YieldFrom) -> None:
        self.found = self.found or "yield from"


def body_source(func: Callable[..., Any]) -> str:
    """The body of a setup or teardown method, to run at the board's global scope.

    Decorators, the ``def`` line, the docstring and top-level ``global`` statements
    (no-ops at global scope) are dropped; what is left is dedented.

    Args:
        func: the undecorated method; it takes only ``self``.

    Returns:
        MicroPython source (``pass`` if the body was only a docstring).

    Raises:
        InvalidArgumentError: no source, parameters besides ``self``, or a ``return``
            / ``yield`` in the body (it runs at global scope, not as a function).
    """
    node = _function_node(func)
    params = _positional(node)
    args = node.args
    if len(params) != 1 or args.vararg or args.kwarg or args.kwonlyargs:
        raise InvalidArgumentError(
            f"{func.__qualname__}: setups and teardowns take only self", argument="func"
        )
    body = [s for s in _strip_docstring(node.body) if not isinstance(s, ast.Global)]
    finder = _ReturnFinder()
    for stmt in body:
        finder.visit(stmt)
    if finder.found:
        raise InvalidArgumentError(
            f"{func.__qualname__}: '{finder.found}' is not allowed here: the body runs "
            "at the board's global scope",
            argument="func",
        )
    return "\n".join(ast.unparse(s) for s in body) or "pass"
