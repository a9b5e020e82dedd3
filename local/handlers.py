"""Importing a function's handler module in-process, the way a new Lambda container would:
the layer on sys.path (Lambda mounts it under /opt/python) and fresh module state."""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType

from local.template import ROOT

LAYER_PATHS = [ROOT / "layers" / "common"]


def ensure_layers_on_path() -> None:
    for path in LAYER_PATHS:
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def load_handler_module(function_dir: str) -> ModuleType:
    """Import functions/<dir>/app.py under a unique name, discarding any earlier import."""
    ensure_layers_on_path()
    name = f"handler_{function_dir}"
    sys.modules.pop(name, None)
    spec = importlib.util.spec_from_file_location(name, ROOT / "functions" / function_dir / "app.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"no handler at functions/{function_dir}/app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
