"""template.yaml, read once and resolved: the single source of truth for the local stack and tests.

Tests and `make serve` create resources, pick environment variables, API routes and queue event
sources from here, so nothing local can drift from what deploys. The template's Fn::ForEach loops
(AWS::LanguageExtensions) are expanded here the way CloudFormation expands them; `make build`
builds that expansion, because SAM CLI's own build cannot read Fn::ForEach yet.

    python -m local.template expand OUT.yaml
"""

from __future__ import annotations

import copy
import json
import re
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from samcli.yamlhelper import yaml_dump, yaml_parse

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"

LOCAL_ACCOUNT = "123456789012"
LOCAL_REGION = "us-east-1"
LOCAL_STACK_NAME = "cxone-relay-local"
# The second CXone environment keeps its credentials in a secret of its own, named as a deployment
# must name an extra environment's secret (<stack name>/...); the local stack creates it.
LOCAL_EMEA_SECRET = f"{LOCAL_STACK_NAME}/cxone-credentials-emea"
# Local values for the parameters a deployment must set (they have no default in the template):
# two CXone environments, each with its own credentials and DNC group, as opt-outs must reach both.
LOCAL_PARAMETERS = {
    "CxoneEnvironments": json.dumps(
        [
            {"name": "primary", "dfo_channel_id": "sms-channel", "dnc_group_id": "1"},
            {"name": "emea", "credentials_secret_arn": LOCAL_EMEA_SECRET, "dnc_group_id": "7"},
        ]
    ),
}


@dataclass(frozen=True)
class ApiRoute:
    function_id: str
    path: str
    method: str
    api_key_required: bool
    # The API passes bodies to the function base64-encoded (BinaryMediaTypes */*).
    binary_bodies: bool = False


@dataclass(frozen=True)
class QueueSource:
    function_id: str
    queue_id: str
    batch_size: int
    batching_window_seconds: int
    report_batch_item_failures: bool
    # ScalingConfig.MaximumConcurrency: how many invocations Lambda runs at once for this source.
    maximum_concurrency: int | None = None


@dataclass(frozen=True)
class ScheduleSource:
    function_id: str
    name: str
    expression: str


@dataclass
class Template:
    body: dict[str, Any]
    parameter_overrides: dict[str, str]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.body.get("Resources", {})

    def resources_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {lid: res for lid, res in self.resources.items() if res.get("Type") == resource_type}

    def parameter(self, name: str) -> str:
        if name in self.parameter_overrides:
            return self.parameter_overrides[name]
        spec = self.body.get("Parameters", {}).get(name)
        if spec is None:
            raise KeyError(f"template has no parameter {name}")
        return str(spec.get("Default", ""))

    def function_ids(self) -> list[str]:
        return list(self.resources_of_type("AWS::Serverless::Function"))

    def function_properties(self, function_id: str) -> dict[str, Any]:
        """The function's properties with Globals merged in as SAM merges them: its own value wins,
        but a list set in both is the two concatenated, Globals' first (Layers, say)."""
        globals_ = self.body.get("Globals", {}).get("Function", {})
        own = self.resources[function_id].get("Properties", {})
        merged = {**globals_, **own}
        for key, value in own.items():
            if isinstance(value, list) and isinstance(globals_.get(key), list):
                merged[key] = [*globals_[key], *value]
        merged["Environment"] = {
            "Variables": {
                **globals_.get("Environment", {}).get("Variables", {}),
                **own.get("Environment", {}).get("Variables", {}),
            }
        }
        return merged

    def events(self, *event_types: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(function id, event name, event properties) for every event of the given types."""
        found = []
        for function_id in self.function_ids():
            for name, event in self.resources[function_id].get("Properties", {}).get("Events", {}).items():
                if event.get("Type") in event_types:
                    found.append((function_id, name, event.get("Properties", {})))
        return found

    def api_routes(self) -> list[ApiRoute]:
        routes = []
        for function_id, _, props in self.events("Api"):
            api_id = _ref_target(props.get("RestApiId"))
            api = self.resources.get(api_id, {}).get("Properties", {}) if api_id else {}
            required = props.get("Auth", {}).get(
                "ApiKeyRequired", api.get("Auth", {}).get("ApiKeyRequired", False)
            )
            # SAM writes a / in a media type as ~1.
            binary = "*/*" in [str(media).replace("~1", "/") for media in api.get("BinaryMediaTypes", [])]
            routes.append(
                ApiRoute(function_id, props["Path"], props["Method"].upper(), bool(required), binary)
            )
        return routes

    def queue_sources(self) -> list[QueueSource]:
        return [
            QueueSource(
                function_id=function_id,
                queue_id=_attr_target(props["Queue"]),
                batch_size=int(props.get("BatchSize", 10)),
                batching_window_seconds=int(props.get("MaximumBatchingWindowInSeconds", 0)),
                report_batch_item_failures="ReportBatchItemFailures"
                in props.get("FunctionResponseTypes", []),
                maximum_concurrency=self._integer(props.get("ScalingConfig", {}).get("MaximumConcurrency")),
            )
            for function_id, _, props in self.events("SQS")
        ]

    def _integer(self, value: Any) -> int | None:
        """A literal number, or a Ref to a parameter holding one."""
        if value is None:
            return None
        target = _ref_target(value)
        return int(self.parameter(target) if target else value)

    def schedule_sources(self) -> list[ScheduleSource]:
        return [
            ScheduleSource(
                function_id, name, str(props.get("ScheduleExpression") or props.get("Schedule", ""))
            )
            for function_id, name, props in self.events("Schedule", "ScheduleV2")
        ]


def _ref_target(value: Any) -> str | None:
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    return None


def _attr_target(value: Any) -> str:
    """The logical id a queue event points at, whether written !GetAtt Q.Arn or !Ref Q."""
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".")[0])
    ref = _ref_target(value)
    if ref:
        return ref
    raise ValueError(f"cannot tell which queue {value!r} names")


FOR_EACH = "Fn::ForEach::"
LANGUAGE_EXTENSIONS = "AWS::LanguageExtensions"


def expand_for_each(body: dict[str, Any]) -> dict[str, Any]:
    """The template with every Fn::ForEach loop replaced by what it stamps out, and the
    LanguageExtensions transform dropped (nothing else of it is used)."""
    expanded = copy.deepcopy(body)
    for section in ("Conditions", "Resources", "Outputs"):
        if section in expanded:
            expanded[section] = _expand_section(expanded[section])
    transform = expanded.get("Transform")
    if isinstance(transform, list):
        remaining = [name for name in transform if name != LANGUAGE_EXTENSIONS]
        expanded["Transform"] = remaining[0] if len(remaining) == 1 else remaining
    return expanded


def _expand_section(section: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in section.items():
        if not key.startswith(FOR_EACH):
            result[key] = value
            continue
        identifier, collection, fragment = value
        if not isinstance(collection, list) or not all(isinstance(item, str) for item in collection):
            raise ValueError(f"{key}: only literal lists of strings are supported as collections")
        for item in collection:
            stamped = {
                _substitute(name, identifier, item): _replace(body, identifier, item)
                for name, body in fragment.items()
            }
            for name, body in _expand_section(stamped).items():
                if name in result:
                    raise ValueError(f"{key} makes {name} twice")
                result[name] = body
    return result


def _substitute(text: str, identifier: str, item: str) -> str:
    """${Id} becomes the item; &{Id} the item with non-alphanumeric characters dropped."""
    return text.replace("${" + identifier + "}", item).replace(
        "&{" + identifier + "}", re.sub(r"[^A-Za-z0-9]", "", item)
    )


def _replace(value: Any, identifier: str, item: str) -> Any:
    if isinstance(value, list):
        return [_replace(element, identifier, item) for element in value]
    if not isinstance(value, dict):
        return value
    if value == {"Ref": identifier}:
        return item
    if set(value) == {"Fn::Sub"}:
        argument = value["Fn::Sub"]
        if isinstance(argument, str):
            text = _substitute(argument, identifier, item)
            # A Sub with nothing left to substitute is its text (e.g. a logical id in GetAtt).
            return text if "${" not in text else {"Fn::Sub": text}
        text, variables = argument
        return {"Fn::Sub": [_substitute(text, identifier, item), _replace(variables, identifier, item)]}
    return {
        _substitute(key, identifier, item) if key.startswith(FOR_EACH) else key: _replace(
            inner, identifier, item
        )
        for key, inner in value.items()
    }


@cache
def _parsed(path: Path) -> dict[str, Any]:
    return expand_for_each(yaml_parse(path.read_text()))


def load_template(path: Path = TEMPLATE_PATH, **parameter_overrides: str) -> Template:
    return Template(body=_parsed(path), parameter_overrides=LOCAL_PARAMETERS | parameter_overrides)


class Resolver:
    """Resolves the intrinsic functions the template uses (Ref, GetAtt, Sub, Join, If on known
    conditions, Select) against the physical resources the local stack created."""

    def __init__(
        self,
        template: Template,
        refs: dict[str, str],
        attributes: dict[tuple[str, str], str],
        stack_name: str,
    ) -> None:
        self.template = template
        self.refs = refs
        self.attributes = attributes
        self.pseudo = {
            "AWS::Region": LOCAL_REGION,
            "AWS::AccountId": LOCAL_ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack_name,
            "AWS::NoValue": "",
        }

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.refs:
            return self.refs[name]
        if name in self.template.body.get("Parameters", {}):
            return self.template.parameter(name)
        # Resources the local stack has no stand-in for (alarms, layers) resolve to their id.
        return name

    def get_att(self, logical_id: str, attribute: str) -> str:
        return self.attributes.get((logical_id, attribute), f"{logical_id}.{attribute}")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {key: self.resolve(item) for key, item in value.items()}
        (key, arg), *_ = value.items()
        if key == "Ref":
            return self.ref(str(arg))
        if key == "Fn::GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.get_att(str(self.resolve(logical_id)), str(self.resolve(attribute)))
        if key == "Fn::Sub":
            return self._sub(arg)
        if key == "Fn::Join":
            separator, items = arg
            return separator.join(str(item) for item in self.resolve(items))
        if key == "Fn::Select":
            index, items = arg
            return self.resolve(items)[int(self.resolve(index))]
        if key == "Fn::FindInMap":
            mapping, top, second = (self.resolve(item) for item in arg)
            return self.template.body["Mappings"][mapping][str(top)][str(second)]
        if key == "Fn::If":
            condition, when_true, when_false = arg
            return self.resolve(when_true if self.condition(condition) else when_false)
        return {key: self.resolve(arg)}

    def condition(self, name: str) -> bool:
        return bool(self._evaluate(self.template.body.get("Conditions", {}).get(name, False)))

    def _evaluate(self, expression: Any) -> Any:
        if not isinstance(expression, dict):
            return expression
        (key, arg), *_ = expression.items()
        if key == "Fn::Equals":
            left, right = (self.resolve(item) for item in arg)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._evaluate(arg[0])
        if key == "Fn::And":
            return all(self._evaluate(item) for item in arg)
        if key == "Fn::Or":
            return any(self._evaluate(item) for item in arg)
        if key == "Condition":
            return self.condition(arg)
        return self.resolve(expression)

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        resolved_vars = {name: self.resolve(value) for name, value in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in resolved_vars:
                return str(resolved_vars[name])
            if "." in name and name.split(".", 1)[0] in self.template.resources:
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "expand":
        print("usage: python -m local.template expand OUT.yaml", file=sys.stderr)
        return 2
    out = Path(argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml_dump(load_template().body))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
