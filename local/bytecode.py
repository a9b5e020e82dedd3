"""Compiled bytecode shipped with every built function and layer (`make build` runs this after
`sam build`), and a check that each function still fits Lambda's size limit.

Lambda's code and layers are read-only (/var/task, /opt), so Python cannot cache what it compiles:
without __pycache__ in the package, every cold start compiles every module it imports from source
again (botocore, Powertools, pydantic, the relay). `make bench` measures the handlers both ways.

The .pyc files are hash-based: a zip keeps modification times only to 2 seconds, so
timestamp-based .pyc could look stale in Lambda and be compiled again anyway. A layer's are
unchecked (a layer version cannot change, and the build directory is written afresh by every
build); a function's are checked against their source's hash, because the Lambda console can edit
a function's code in place, and an edited handler must not run as its old bytecode. They record the
paths the code has in Lambda (/var/task, /opt/python), so tracebacks read as they would have.

    python -m local.bytecode [BUILD_DIR]     (default .aws-sam/build)
"""

from __future__ import annotations

import compileall
import py_compile
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from local.template import ROOT, Template, load_template

BUILD_DIR = ROOT / ".aws-sam" / "build"
# Lambda's limit on a function's code and all its layers, unzipped: 250 MiB.
MIB = 1024 * 1024
UNZIPPED_LIMIT_BYTES = 250 * MIB
# phonenumbers' geocoding and carrier-name data: 20 MB of source the relay never imports (quiet
# hours use its time-zone data, which is compiled). Compiled, they would only take space.
NEVER_IMPORTED = re.compile(r"/phonenumbers/(geodata|carrierdata)/")
FUNCTION_ROOT = "/var/task"
LAYER_ROOT = "/opt/python"


@dataclass(frozen=True)
class Artifact:
    """One built function or layer: where its Python code is here, and where Lambda puts it."""

    logical_id: str
    directory: Path
    lambda_path: str
    invalidation: py_compile.PycInvalidationMode


def built_artifacts(template: Template, build_dir: Path) -> tuple[list[Artifact], dict[str, list[str]]]:
    """Every function and layer of the built template, and each function's layers (logical ids)."""
    artifacts = []
    for layer_id, layer in template.resources_of_type("AWS::Serverless::LayerVersion").items():
        code = build_dir / str(layer["Properties"]["ContentUri"]) / "python"
        artifacts.append(Artifact(layer_id, code, LAYER_ROOT, py_compile.PycInvalidationMode.UNCHECKED_HASH))
    layers_of = {}
    for function_id in template.function_ids():
        properties = template.function_properties(function_id)
        code = build_dir / str(properties["CodeUri"])
        artifacts.append(
            Artifact(function_id, code, FUNCTION_ROOT, py_compile.PycInvalidationMode.CHECKED_HASH)
        )
        layers_of[function_id] = [layer["Ref"] for layer in properties.get("Layers", [])]
    return artifacts, layers_of


def runtime_mismatch(template: Template, running: str) -> str | None:
    """Why Python `running` (as "3.11") cannot compile these functions' bytecode, or None.
    Bytecode is per minor version: a python3.11 function reads only cpython-311 files."""
    runtimes = {str(template.function_properties(fid)["Runtime"]) for fid in template.function_ids()}
    wanted = sorted(runtime.removeprefix("python") for runtime in runtimes)
    if wanted != [running]:
        return f"the functions run Python {', '.join(wanted)}: Python {running} cannot compile their bytecode"
    return None


def compile_artifact(artifact: Artifact) -> bool:
    """Compiles every module of the artifact that can be imported; True when all compiled."""
    return bool(
        compileall.compile_dir(
            artifact.directory,
            quiet=1,
            workers=0,  # one process per core
            rx=NEVER_IMPORTED,
            invalidation_mode=artifact.invalidation,
            stripdir=str(artifact.directory),
            prependdir=artifact.lambda_path,
        )
    )


def directory_bytes(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


def unzipped_sizes(artifacts: list[Artifact], layers_of: dict[str, list[str]]) -> dict[str, int]:
    """Each function's code and layers, unzipped, in bytes (what Lambda's limit counts)."""
    sizes = {artifact.logical_id: directory_bytes(artifact.directory) for artifact in artifacts}
    return {
        function_id: sizes[function_id] + sum(sizes[layer] for layer in layers)
        for function_id, layers in layers_of.items()
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    build_dir = Path(args[0]) if args else BUILD_DIR
    template = load_template(build_dir / "template.yaml")
    mismatch = runtime_mismatch(template, f"{sys.version_info.major}.{sys.version_info.minor}")
    if mismatch:
        print(f"bytecode: {mismatch}", file=sys.stderr)
        return 1
    artifacts, layers_of = built_artifacts(template, build_dir)
    failed = [artifact.logical_id for artifact in artifacts if not compile_artifact(artifact)]
    if failed:
        print(f"bytecode: could not compile {', '.join(failed)}", file=sys.stderr)
        return 1
    sizes = unzipped_sizes(artifacts, layers_of)
    largest = max(sizes, key=sizes.__getitem__)
    print(
        f"bytecode: compiled {len(artifacts)} functions and layers;"
        f" the largest, {largest} with its layers, is {sizes[largest] / MIB:.0f} MiB unzipped"
        f" (Lambda allows {UNZIPPED_LIMIT_BYTES / MIB:.0f} MiB)"
    )
    too_big = {fid: size for fid, size in sizes.items() if size > UNZIPPED_LIMIT_BYTES}
    for function_id, size in too_big.items():
        print(f"bytecode: {function_id} is {size} bytes unzipped, over Lambda's limit", file=sys.stderr)
    return 1 if too_big else 0


if __name__ == "__main__":
    raise SystemExit(main())
