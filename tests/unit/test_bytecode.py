"""`make build`'s bytecode step: every module Lambda can import ships compiled, in a form Lambda
reads without its source's timestamps, naming the paths it has in Lambda; and no function
outgrows Lambda's unzipped size limit."""

from __future__ import annotations

import importlib.util
import marshal
import sys
from pathlib import Path

from local import bytecode

TEMPLATE = """\
Globals:
  Function:
    Runtime: {runtime}
    Layers:
      - !Ref CommonLayer
Resources:
  CommonLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: CommonLayer
  LanguageLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: LanguageLayer
  ApiFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: ApiFunction
  PullFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: PullFunction
      Layers:
        - !Ref LanguageLayer
"""
RUNNING = f"python{sys.version_info.major}.{sys.version_info.minor}"


def built(root: Path, runtime: str = RUNNING) -> Path:
    """A build directory laid out as `sam build` leaves it."""
    files = {
        "CommonLayer/python/relay/__init__.py": "",
        "CommonLayer/python/relay/rules.py": "LIMIT = 3\n",
        "CommonLayer/python/phonenumbers/tzdata/zones.py": "ZONES = {}\n",
        "CommonLayer/python/phonenumbers/geodata/region_1.py": "DATA = {}\n",
        "CommonLayer/python/phonenumbers/carrierdata/region_1.py": "DATA = {}\n",
        "LanguageLayer/python/lingua/__init__.py": "MODELS = 'x' * 1000\n",
        "ApiFunction/app.py": "def lambda_handler(event, context):\n    return event\n",
        "PullFunction/app.py": "def lambda_handler(event, context):\n    return None\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    (root / "template.yaml").write_text(TEMPLATE.format(runtime=runtime))
    return root


def compiled(source: Path) -> tuple[int, str] | None:
    """(the .pyc's flags, the file name its code records), or None when there is no .pyc."""
    pyc = Path(importlib.util.cache_from_source(str(source)))
    if not pyc.is_file():
        return None
    data = pyc.read_bytes()
    return int.from_bytes(data[4:8], "little"), marshal.loads(data[16:]).co_filename  # noqa: S302 - our own build


def test_every_importable_module_ships_hash_based_bytecode_naming_its_lambda_path(tmp_path):
    root = built(tmp_path)

    assert bytecode.main([str(root)]) == 0

    # PEP 552 flags: bit 0 hash-based, bit 1 check the source. A layer's code cannot change; a
    # function's can be edited in the Lambda console, so its bytecode is checked against it.
    unchecked_hash, checked_hash = 0b01, 0b11
    assert compiled(root / "CommonLayer/python/relay/rules.py") == (
        unchecked_hash,
        "/opt/python/relay/rules.py",
    )
    assert compiled(root / "CommonLayer/python/relay/__init__.py") == (
        unchecked_hash,
        "/opt/python/relay/__init__.py",
    )
    assert compiled(root / "CommonLayer/python/phonenumbers/tzdata/zones.py") is not None
    assert compiled(root / "LanguageLayer/python/lingua/__init__.py") == (
        unchecked_hash,
        "/opt/python/lingua/__init__.py",
    )
    assert compiled(root / "ApiFunction/app.py") == (checked_hash, "/var/task/app.py")
    assert compiled(root / "PullFunction/app.py") == (checked_hash, "/var/task/app.py")


def test_phone_data_the_relay_never_imports_is_left_as_source(tmp_path):
    root = built(tmp_path)

    assert bytecode.main([str(root)]) == 0

    assert compiled(root / "CommonLayer/python/phonenumbers/geodata/region_1.py") is None
    assert compiled(root / "CommonLayer/python/phonenumbers/carrierdata/region_1.py") is None


def test_a_function_is_measured_with_every_layer_it_carries(tmp_path):
    root = built(tmp_path)
    template = bytecode.load_template(root / "template.yaml")

    artifacts, layers_of = bytecode.built_artifacts(template, root)
    sizes = bytecode.unzipped_sizes(artifacts, layers_of)

    common = bytecode.directory_bytes(root / "CommonLayer/python")
    language = bytecode.directory_bytes(root / "LanguageLayer/python")
    assert layers_of == {"ApiFunction": ["CommonLayer"], "PullFunction": ["CommonLayer", "LanguageLayer"]}
    assert sizes["ApiFunction"] == common + bytecode.directory_bytes(root / "ApiFunction")
    assert sizes["PullFunction"] == common + language + bytecode.directory_bytes(root / "PullFunction")


def test_a_function_over_lambdas_unzipped_limit_fails_the_build_naming_it(tmp_path, monkeypatch, capsys):
    root = built(tmp_path)
    template = bytecode.load_template(root / "template.yaml")
    artifacts, layers_of = bytecode.built_artifacts(template, root)
    # After compiling, PullFunction carries the Language layer and ApiFunction does not.
    bytecode.main([str(root)])
    sizes = bytecode.unzipped_sizes(artifacts, layers_of)
    monkeypatch.setattr(bytecode, "UNZIPPED_LIMIT_BYTES", sizes["ApiFunction"])
    capsys.readouterr()

    assert bytecode.main([str(root)]) == 1

    errors = capsys.readouterr().err
    assert "PullFunction is" in errors
    assert "ApiFunction" not in errors


def test_bytecode_for_another_python_than_the_runtimes_is_refused(tmp_path, capsys):
    root = built(tmp_path, runtime="python3.99")

    assert bytecode.main([str(root)]) == 1

    assert "Python 3.99" in capsys.readouterr().err
    assert compiled(root / "ApiFunction/app.py") is None
