"""The layering of the guide, checked on every import (module level and inside functions): a module
imports only from its own layer and the ones below; `models` never touches torch.distributed.
`__main__` shims (python -m hpcgan.train) are entry points, not layers."""

import ast

from tests.conftest import REPO

LAYERS = ["data", "models", "eval", "train", "launch", "cli"]


def imports(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def test_each_layer_imports_only_from_below():
    wrong = []
    for own, layer in enumerate(LAYERS):
        for path in (REPO / "hpcgan" / layer).rglob("*.py"):
            if path.name == "__main__.py":
                continue
            for name in imports(path):
                parts = name.split(".")
                if parts[0] == "hpcgan" and len(parts) > 1 and parts[1] in LAYERS and LAYERS.index(parts[1]) > own:
                    wrong.append(f"{path.relative_to(REPO)} imports {name}")
                if layer == "models" and name.startswith("torch.distributed"):
                    wrong.append(f"{path.relative_to(REPO)} imports {name}")
    assert not wrong, "\n".join(wrong)
