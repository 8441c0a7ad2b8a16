#!/usr/bin/env python3
"""Checks on template.yaml that cfn-lint and `sam validate --lint` do not make.

cfn-lint misses an undefined `!Ref` inside a SAM function's Environment (and the Rust code
would only find out at run time), so this script:

1. walks the whole template and fails on any `!Ref`, `!GetAtt`, `${Name}` in `!Sub`,
   `!If` condition, `Condition:` or `DependsOn` that names nothing the template defines
   (a Resource, a Parameter, a Condition, a pseudo-parameter `AWS::...`, or a resource the SAM
   transform generates, such as `ServerlessHttpApi`);
2. fails unless every AWS::Serverless::Function ends up (Globals.Function + its own
   Environment) with every `KRAFTER_*` variable the Rust code reads.

Usage: check_template_refs.py [TEMPLATE]   (default: template.yaml in the repository root)
Needs PyYAML (infra/lint-template runs it in its venv, where cfn-lint brings PyYAML).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

# The variables every function must get; the Rust code reads these names.
REQUIRED_ENV = [
    "KRAFTER_JOBS_TABLE",
    "KRAFTER_EXECUTIONS_TABLE",
    "KRAFTER_KEYS_TABLE",
    "KRAFTER_TEAMS_TABLE",
    "KRAFTER_DENY_PRIVATE_TARGETS",
    "KRAFTER_RATE_LIMITS_TABLE",
    "KRAFTER_IDEMPOTENCY_TABLE",
    "KRAFTER_AUDIT_TABLE",
    "KRAFTER_AUDIT_RETENTION_DAYS",
    "KRAFTER_RUN_QUEUE_URL",
    "KRAFTER_RUN_QUEUE_ARN",
    "KRAFTER_DEAD_LETTER_QUEUE_ARN",
    "KRAFTER_SCHEDULE_GROUP",
    "KRAFTER_SCHEDULER_ROLE_ARN",
    "KRAFTER_RATE_LIMIT",
    "KRAFTER_RATE_LIMIT_WINDOW_SECS",
    "KRAFTER_MAX_JOBS_PER_TEAM",
    "KRAFTER_EXECUTION_RETENTION_DAYS",
    "KRAFTER_NOTIFY_URL",
    "KRAFTER_DENY_PRIVATE_TARGETS",
]

# Resources the SAM transform creates from this template that it may refer to by name.
SAM_GENERATED = {"ServerlessHttpApi"}

PSEUDO_PARAMETERS = {
    "AWS::AccountId",
    "AWS::NotificationARNs",
    "AWS::NoValue",
    "AWS::Partition",
    "AWS::Region",
    "AWS::StackId",
    "AWS::StackName",
    "AWS::URLSuffix",
}


class CfnLoader(yaml.SafeLoader):
    """A YAML loader that turns CloudFormation short forms into their long forms."""


def _construct_tag(loader: CfnLoader, tag_suffix: str, node: yaml.Node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {"Fn::" + tag_suffix: value}


CfnLoader.add_multi_constructor("!", _construct_tag)

SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class Checker:
    def __init__(self, template: dict):
        self.template = template
        self.resources = set((template.get("Resources") or {}).keys())
        self.parameters = set((template.get("Parameters") or {}).keys())
        self.conditions = set((template.get("Conditions") or {}).keys())
        self.errors: list[str] = []

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")

    def known_ref(self, name: str) -> bool:
        return (
            name in self.resources
            or name in self.parameters
            or name in PSEUDO_PARAMETERS
            or name in SAM_GENERATED
        )

    def known_resource(self, name: str) -> bool:
        return name in self.resources or name in SAM_GENERATED

    def check_condition_name(self, where: str, name) -> None:
        if not isinstance(name, str) or name not in self.conditions:
            self.error(where, f"condition {name!r} is not defined under Conditions")

    def check_sub(self, where: str, value) -> None:
        if isinstance(value, str):
            text, local = value, {}
        elif isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
            text, local = value[0], value[1] if isinstance(value[1], dict) else {}
            self.walk(value[1], where + "/Fn::Sub[1]")
        else:
            self.error(where, f"malformed Fn::Sub {value!r}")
            return
        for match in SUB_VARIABLE.finditer(text):
            name = match.group(1).strip()
            if name.startswith("!"):
                continue  # ${!Literal} is written out as ${Literal}
            if name in local:
                continue
            if "." in name and not name.startswith("AWS::"):
                resource = name.split(".", 1)[0]
                if not self.known_resource(resource):
                    self.error(where, f"${{{name}}} in !Sub names unknown resource {resource!r}")
            elif not self.known_ref(name):
                self.error(where, f"${{{name}}} in !Sub names nothing defined ({name!r})")

    def walk(self, node, where: str) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                self.walk(item, f"{where}[{i}]")
            return
        if not isinstance(node, dict):
            return
        if len(node) == 1:
            (key, value), = node.items()
            if key == "Ref":
                if not isinstance(value, str) or not self.known_ref(value):
                    self.error(where, f"!Ref {value!r} names no resource, parameter or pseudo-parameter")
                return
            if key == "Fn::GetAtt":
                if isinstance(value, str):
                    value = value.split(".", 1)
                if not isinstance(value, list) or not value or not isinstance(value[0], str):
                    self.error(where, f"malformed !GetAtt {value!r}")
                elif not self.known_resource(value[0]):
                    self.error(where, f"!GetAtt {'.'.join(map(str, value))!r} names unknown resource {value[0]!r}")
                return
            if key == "Fn::Sub":
                self.check_sub(where, value)
                return
            if key == "Fn::If":
                if isinstance(value, list) and len(value) == 3:
                    self.check_condition_name(where, value[0])
                    self.walk(value[1:], where + "/Fn::If")
                else:
                    self.error(where, f"malformed !If {value!r}")
                return
            if key == "Condition" and isinstance(value, str) and where.startswith("Conditions/"):
                # {"Condition": Name} inside a condition expression.
                self.check_condition_name(where, value)
                return
        for key, value in node.items():
            self.walk(value, f"{where}/{key}")

    def check_references(self) -> None:
        for section in ("Conditions", "Globals", "Resources", "Outputs"):
            body = self.template.get(section) or {}
            for name, value in body.items():
                self.walk(value, f"{section}/{name}")
        for name, resource in (self.template.get("Resources") or {}).items():
            if not isinstance(resource, dict):
                self.error(f"Resources/{name}", "is not a mapping")
                continue
            if "Condition" in resource:
                self.check_condition_name(f"Resources/{name}/Condition", resource["Condition"])
            depends = resource.get("DependsOn", [])
            for dep in [depends] if isinstance(depends, str) else depends:
                if dep not in self.resources:
                    self.error(f"Resources/{name}/DependsOn", f"{dep!r} is not a resource")
        for name, output in (self.template.get("Outputs") or {}).items():
            if isinstance(output, dict) and "Condition" in output:
                self.check_condition_name(f"Outputs/{name}/Condition", output["Condition"])

    def check_environment(self) -> None:
        globals_fn = (self.template.get("Globals") or {}).get("Function") or {}
        global_vars = ((globals_fn.get("Environment") or {}).get("Variables")) or {}
        functions = [
            (name, res)
            for name, res in (self.template.get("Resources") or {}).items()
            if isinstance(res, dict) and res.get("Type") == "AWS::Serverless::Function"
        ]
        if not functions:
            self.error("Resources", "no AWS::Serverless::Function found")
        for name, res in functions:
            props = res.get("Properties") or {}
            own = ((props.get("Environment") or {}).get("Variables")) or {}
            if not isinstance(own, dict) or not isinstance(global_vars, dict):
                self.error(f"Resources/{name}", "Environment.Variables is not a plain mapping")
                continue
            merged = {**global_vars, **own}
            missing = [v for v in REQUIRED_ENV if v not in merged]
            if missing:
                self.error(f"Resources/{name}", "Environment lacks " + ", ".join(missing))


def main(argv: list[str]) -> int:
    if len(argv) > 2:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[1]) if len(argv) == 2 else Path(__file__).resolve().parent.parent / "template.yaml"
    with open(path, encoding="utf-8") as f:
        template = yaml.load(f, Loader=CfnLoader)  # noqa: S506 - SafeLoader subclass
    checker = Checker(template)
    checker.check_references()
    checker.check_environment()
    if checker.errors:
        for e in checker.errors:
            print(f"{path}: {e}", file=sys.stderr)
        print(f"{path}: {len(checker.errors)} problem(s)", file=sys.stderr)
        return 1
    functions = sum(
        1 for r in template["Resources"].values() if r.get("Type") == "AWS::Serverless::Function"
    )
    print(
        f"{path}: references OK ({len(checker.resources)} resources, {len(checker.parameters)} "
        f"parameters); {functions} functions each get all {len(REQUIRED_ENV)} KRAFTER_* variables"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
