"""The iam/ documents a security team reviews: linted, least privilege, and in step with the code and each other.

A reviewer reads iam/*.json and iam/role-stackset.yaml; the tool runs with whatever was deployed. These tests keep
the two honest: the linters pass, the role can do only the six things the tool calls (plus the one permission AWS
demands for a certificate update), the template deploys exactly
the JSON that was reviewed, and every AWS operation named in fleet/ is covered by a policy.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import shutil
from functools import cache
from pathlib import Path
from typing import Any

import botocore.session
import cfnlint.api
import parliament
import pytest
from botocore import xform_name
from cfnlint.decode import cfn_yaml
from moto.iam import policy_conditions
from moto.iam.access_control import IAMPolicy, PermissionResult

from fleet.aws.credentials import AwsSettings
from fleet.sandbox.auth import OTHER_ORGANIZATION, READONLY_ROLE_NAME, SANDBOX_ORGANIZATION
from fleet.sandbox.s3 import teach_moto_string_like

ROOT = Path(__file__).resolve().parents[2]
IAM = ROOT / "iam"
TEMPLATE = IAM / "role-stackset.yaml"

# What the tool calls in a member account (run and plan: Describe/Update domain + DescribeCertificate;
# discover adds ListUserPools, DescribeUserPool and, with --auto, ListCertificates).
ROLE_ACTIONS = frozenset(
    {
        "cognito-idp:DescribeUserPool",
        "cognito-idp:DescribeUserPoolDomain",
        "cognito-idp:ListUserPools",
        "cognito-idp:UpdateUserPoolDomain",
        "acm:DescribeCertificate",
        "acm:ListCertificates",
    }
)
# Not called by the tool, but demanded by AWS: AWS's Cognito developer guide ("Using your own domain for managed
# login") requires cloudfront:UpdateDistribution to set up a custom domain or update its certificate.
REQUIRED_BY_AWS = frozenset({"cloudfront:UpdateDistribution"})
ROLE_GRANTS = ROLE_ACTIONS | REQUIRED_BY_AWS
# What the hub calls: AssumeRole into each account; discover --organization [--ou] walks the organization.
HUB_ACTIONS = frozenset(
    {
        "sts:AssumeRole",
        "organizations:ListAccounts",
        "organizations:ListAccountsForParent",
        "organizations:ListOrganizationalUnitsForParent",
        "sns:Publish",  # --notify sns:TOPIC_ARN (fleet/observe/notify.py)
    }
)
# What the hub calls on an s3:// state's bucket (fleet/aws/s3.py), and the IAM action each needs (AWS's service
# authorization reference for S3: ListObjectsV2 is s3:ListBucket, DeleteObjects is s3:DeleteObject per key).
STATE_CALLS = {
    "s3:GetBucketLocation": "s3:GetBucketLocation",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:GetObject": "s3:GetObject",
    "s3:PutObject": "s3:PutObject",
    "s3:DeleteObjects": "s3:DeleteObject",
}
STATE_BUCKET_ARN = "arn:aws:s3:::example-fleet-state"
# Allowed to everyone by AWS, whatever the policies say: never needs (or gets) a statement.
NEEDS_NO_PERMISSION = frozenset({"sts:GetCallerIdentity"})
# The one write the role may make (and the CloudFront permission AWS checks with it); a verb below in any action
# name means a policy grew a power it must not have.
ONLY_WRITE = "cognito-idp:UpdateUserPoolDomain"
WRITES = {ONLY_WRITE: "Write", "cloudfront:UpdateDistribution": "Write"}
FORBIDDEN_VERBS = (
    "Add", "Admin", "Associate", "Attach", "Create", "Delete", "Detach", "Disable", "Disassociate", "Enable",
    "Export", "Import", "Put", "Remove", "Renew", "Request", "Resend", "Reset", "Revoke", "Set", "Sign",
    "Start", "Stop", "Tag", "Untag",
)  # fmt: skip

# The placeholders iam/role-trust-policy.json carries where the template has its parameters.
PLACEHOLDERS = {
    "HubPrincipalArn": "arn:aws:iam::111122223333:role/CognitoFleetHub",
    "ExternalId": "REPLACE-WITH-YOUR-EXTERNAL-ID",
}

POOL_ARN = "arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_AbCdEf123"
CERT_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/0f2b5c4e-1234-4abc-9def-0123456789ab"


def load_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((IAM / name).read_text(encoding="utf-8"))
    return data


def actions(policy: dict[str, Any]) -> list[str]:
    """Every Action of every statement (a string or a list in IAM's grammar)."""
    out: list[str] = []
    for stmt in policy["Statement"]:
        value = stmt["Action"]
        out += [value] if isinstance(value, str) else list(value)
    return out


@cache
def template() -> dict[str, Any]:
    """The template through cfn-lint's own decoder (it understands !Ref, !Sub, !GetAtt), as plain JSON types."""
    decoded = cfn_yaml.load(str(TEMPLATE))
    plain: dict[str, Any] = json.loads(json.dumps(decoded))
    return plain


def role_properties(name: str = "CognitoFleetRole") -> dict[str, Any]:
    roles = {k: v for k, v in template()["Resources"].items() if v["Type"] == "AWS::IAM::Role"}
    assert list(roles) == ["CognitoFleetRole", READONLY_ROLE_NAME], "the template creates exactly the two roles"
    props: dict[str, Any] = roles[name]["Properties"]
    return props


def substitute(node: Any, values: dict[str, str]) -> Any:
    """Replace {"Ref": Parameter} with its value; any other intrinsic function is an error (it would hide a
    difference the JSON comparison cannot see)."""
    if isinstance(node, dict):
        if len(node) == 1 and next(iter(node)) == "Ref":
            return values[node["Ref"]]
        intrinsic = [k for k in node if k.startswith("Fn::")]
        assert not intrinsic, f"unexpected {intrinsic} in a policy document"
        return {k: substitute(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [substitute(v, values) for v in node]
    return node


# ---- linters -----------------------------------------------------------------------------------------------------
def test_template_passes_cfn_lint() -> None:
    matches = cfnlint.api.lint_file(TEMPLATE)
    assert [str(m) for m in matches] == []


@pytest.mark.parametrize(
    ("old", "new", "rule"),
    [
        ("MaxSessionDuration: 3600", "MaxSessionDuration: 86400", "E3034"),  # IAM's maximum is 43200
        ("sts:ExternalId: !Ref ExternalId", "sts:ExternalId: !Ref ExternalID", "E1020"),  # no such parameter
        ("StringEquals:", "StringEqual:", "E3530"),  # trust policy: no such condition operator
        ("- acm:ListCertificates", "- acmListCertificates", "W3037"),  # inline policy: not service:action
    ],
)
def test_cfn_lint_catches_a_broken_template(old: str, new: str, rule: str) -> None:
    # The lint gate above is only worth something if the same call reports a mistake in this very template.
    text = TEMPLATE.read_text(encoding="utf-8")
    assert text.count(old) == 2  # once in each role (the writing one and the read-only one)
    found = cfnlint.api.lint(text.replace(old, new))
    assert rule in {m.rule.id for m in found}, [str(m) for m in found]


# The one finding a reviewer accepts knowingly: cloudfront:UpdateDistribution on "*", because AWS's Cognito guide
# asks for exactly that (the distribution is in an AWS-owned account, whose ARN nobody can name).
ACCEPTED_FINDINGS = {"role-policy.json": [("RESOURCE_STAR", ["cloudfront:UpdateDistribution"])]}


@pytest.mark.parametrize("name", ["hub-policy.json", "role-policy.json", "readonly-role-policy.json"])
def test_parliament_finds_nothing(name: str) -> None:
    policy = parliament.analyze_policy_string((IAM / name).read_text(encoding="utf-8"))
    assert [(f.issue, f.detail) for f in policy.findings] == ACCEPTED_FINDINGS.get(name, [])


@pytest.mark.parametrize(
    ("statement", "added", "issue"),
    [
        (0, "cognito-idp:ListUserPools", "RESOURCE_MISMATCH"),  # has no resource type: a pool ARN never matches
        (2, "acm:DescribeCertificates", "UNKNOWN_ACTION"),  # a typo AWS would accept silently and never grant
    ],
)
def test_parliament_catches_a_wrong_statement(statement: int, added: str, issue: str) -> None:
    policy = load_json("role-policy.json")
    policy["Statement"][statement]["Action"].append(added)
    found = parliament.analyze_policy_string(json.dumps(policy)).findings
    assert issue in {f.issue for f in found}


def test_parliament_community_auditors_flag_only_assume_role() -> None:
    # The stricter community auditors: the role policy stays clean; the hub's one finding is that sts:AssumeRole
    # hands out credentials, which is the hub's whole job (and why the trust policy wants an external id).
    role = parliament.analyze_policy_string(
        (IAM / "role-policy.json").read_text(encoding="utf-8"), include_community_auditors=True
    )
    assert [(f.issue, f.detail) for f in role.findings] == ACCEPTED_FINDINGS["role-policy.json"]
    hub = parliament.analyze_policy_string(
        (IAM / "hub-policy.json").read_text(encoding="utf-8"), include_community_auditors=True
    )
    assert [f.issue for f in hub.findings] == ["CREDENTIALS_EXPOSURE"]


# ---- least privilege ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["hub-policy.json", "role-policy.json", "readonly-role-policy.json"])
def test_policies_only_allow_named_actions_on_named_resources(name: str) -> None:
    policy = load_json(name)
    assert policy["Version"] == "2012-10-17"
    for stmt in policy["Statement"]:
        assert stmt["Effect"] == "Allow"
        # NotAction / NotResource grant everything *except* a list: never what a reviewer expects. A Condition
        # only narrows (the hub's AssumeRole: test_hub_policy_assumes_roles_only_inside_the_organization).
        assert set(stmt) <= {"Sid", "Effect", "Action", "Resource", "Condition"}, stmt
        assert "Condition" not in stmt or actions({"Statement": [stmt]}) == ["sts:AssumeRole"], stmt
        for action in [stmt["Action"]] if isinstance(stmt["Action"], str) else stmt["Action"]:
            assert "*" not in action and "?" not in action, f"wildcard action {action!r}"
    listed = actions(policy)
    assert len(listed) == len(set(listed)), "an action is listed twice"


def test_role_policy_grants_exactly_what_the_tool_calls() -> None:
    granted = actions(load_json("role-policy.json"))
    assert set(granted) == ROLE_GRANTS
    for action in granted:
        verb = action.split(":", 1)[1]
        assert not verb.startswith(FORBIDDEN_VERBS), f"{action} is not an action the tool needs"


def test_role_policy_is_read_only_but_for_the_domain_update() -> None:
    # Access levels as AWS's service authorization reference gives them (parliament ships a copy).
    levels = {
        f"{svc['prefix']}:{p['privilege']}": p["access_level"]
        for svc in parliament.iam_definition
        for p in svc["privileges"]
    }
    granted = set(actions(load_json("role-policy.json")))
    assert {a: levels[a] for a in granted if levels[a] not in ("Read", "List")} == WRITES


@cache
def operations(service: str) -> list[str]:
    return list(botocore.session.get_session().get_service_model(service).operation_names)


def test_role_policy_permits_only_its_actions_in_cognito_and_acm() -> None:
    # Evaluate the document as IAM would (moto's evaluator) for every operation of both services, on the
    # resources the tool touches: the six are allowed where the tool needs them, nothing else anywhere.
    policy = IAMPolicy(json.dumps(load_json("role-policy.json")))
    permitted = set()
    for service, resource in (("cognito-idp", POOL_ARN), ("acm", CERT_ARN)):
        for op in operations(service):
            for arn in (resource, "*"):
                if policy.is_action_permitted(f"{service}:{op}", arn) == PermissionResult.PERMITTED:
                    permitted.add(f"{service}:{op}")
    assert permitted == ROLE_ACTIONS
    assert policy.is_action_permitted(ONLY_WRITE, POOL_ARN) == PermissionResult.PERMITTED
    # Cognito custom domains only take us-east-1 certificates: the role cannot read certificates elsewhere.
    elsewhere = CERT_ARN.replace("us-east-1", "eu-west-1")
    assert policy.is_action_permitted("acm:DescribeCertificate", elsewhere) != PermissionResult.PERMITTED


def test_role_policy_grants_one_cloudfront_action_in_its_own_statement() -> None:
    # AWS demands cloudfront:UpdateDistribution for a certificate update; nothing else of CloudFront is granted,
    # and the statement that grants it grants nothing else (a reviewer sees why it is there from its Sid).
    role = load_json("role-policy.json")
    (stmt,) = [s for s in role["Statement"] if any(a.startswith("cloudfront:") for a in actions({"Statement": [s]}))]
    assert stmt["Action"] == ["cloudfront:UpdateDistribution"] and stmt["Resource"] == "*"
    assert "CloudFront" in stmt["Sid"] and "Certificate" in stmt["Sid"]
    policy = IAMPolicy(json.dumps(role))
    permitted = {
        op
        for op in operations("cloudfront")
        if policy.is_action_permitted(f"cloudfront:{op}", "*") == PermissionResult.PERMITTED
    }
    assert permitted == {"UpdateDistribution"}


def test_hub_policy_assumes_only_the_fleet_role_and_lists_the_organization() -> None:
    hub = load_json("hub-policy.json")
    assert set(actions(hub)) == HUB_ACTIONS
    assert not [a for a in actions(hub) if a.split(":")[0] in ("cognito-idp", "acm")]
    by_action = {a: stmt["Resource"] for stmt in hub["Statement"] for a in actions({"Statement": [stmt]})}
    # The role name the tool assumes by default (--role-name) and the template's default name.
    role_name = AwsSettings().role_name
    assert by_action["sts:AssumeRole"] == [f"arn:aws:iam::*:role/{n}" for n in (role_name, READONLY_ROLE_NAME)]
    assert template()["Parameters"]["ReadOnlyRoleName"]["Default"] == READONLY_ROLE_NAME
    assert template()["Parameters"]["RoleName"]["Default"] == role_name
    org = {a: r for a, r in by_action.items() if a.startswith("organizations:")}
    assert org and all(a.split(":")[1].startswith("List") and r == "*" for a, r in org.items())
    evaluator = IAMPolicy(json.dumps(hub))
    other_role = "arn:aws:iam::123456789012:role/OrganizationAccountAccessRole"
    ours = {"aws:ResourceOrgID": SANDBOX_ORGANIZATION}
    assert evaluator.is_action_permitted("sts:AssumeRole", other_role, None, ours) != PermissionResult.PERMITTED


def test_hub_policy_assumes_roles_only_inside_the_organization() -> None:
    hub = load_json("hub-policy.json")
    (assume,) = [s for s in hub["Statement"] if "sts:AssumeRole" in actions({"Statement": [s]})]
    # The placeholder to fill with the organization's id (iam/README.md); the sandbox plays that organization.
    assert assume["Condition"] == {"StringEquals": {"aws:ResourceOrgID": SANDBOX_ORGANIZATION}}
    assert re.fullmatch(r"o-[a-z0-9]{10,32}", SANDBOX_ORGANIZATION)  # the form AWS organization ids take
    assert not [s for s in hub["Statement"] if s is not assume and "Condition" in s]
    evaluator = IAMPolicy(json.dumps(hub))
    role = f"arn:aws:iam::111122223333:role/{AwsSettings().role_name}"
    decide = lambda org: evaluator.is_action_permitted("sts:AssumeRole", role, None, org)  # noqa: E731
    assert decide({"aws:ResourceOrgID": SANDBOX_ORGANIZATION}) == PermissionResult.PERMITTED
    assert decide({"aws:ResourceOrgID": OTHER_ORGANIZATION}) != PermissionResult.PERMITTED


NAMED_NOT_CALLED = frozenset({"sso"})


def fleet_aws_calls(package: Path = ROOT / "fleet") -> dict[str, set[str]]:
    """Every AWS operation the tool's code names, as service:Operation -> where.

    An operation appears in fleet/ either as its API name (a string passed to the engine's call wrapper, e.g.
    "DescribeUserPoolDomain") or as its client method / paginator name (assume_role, "list_accounts").
    The sandbox (moto + fidelity layer) is test scaffolding and is not scanned.
    """
    session = botocore.session.get_session()
    available = set(session.get_available_services())
    trees = [
        (path.relative_to(package.parent), ast.parse(path.read_text(encoding="utf-8")))
        for path in sorted(package.rglob("*.py"))
        if "sandbox" not in path.relative_to(package).parts
    ]
    names: dict[str, set[str]] = {}
    for path, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                name = node.value
            elif isinstance(node, ast.Attribute):
                name = node.attr
            else:
                continue
            names.setdefault(name, set()).add(f"{path}:{node.lineno}")
    # sts: the hub's client, named in one place. "sso" is named by aws/endpoints.py only to check the SSO
    # portal's address for plain HTTP (botocore's own provider calls it, not the tool): no client of ours.
    services = ({n for n in names if n in available} - NAMED_NOT_CALLED) | {"sts"}
    found: dict[str, set[str]] = {}
    for service in services:
        for op in operations(service):
            for name in (op, xform_name(op)):
                if name in names:
                    found.setdefault(f"{service}:{op}", set()).update(names[name])
    return found


def test_policies_cover_every_aws_call_in_the_code() -> None:
    # A new call in fleet/ (say cognito-idp:DescribeUserPoolClient) fails here until a policy, the README's
    # table and the reviewers catch up; a dropped call fails here until its permission is dropped too.
    called = set(fleet_aws_calls()) - NEEDS_NO_PERMISSION
    assert called == ROLE_ACTIONS | HUB_ACTIONS | set(STATE_CALLS), {a: sorted(w) for a, w in fleet_aws_calls().items()}


def test_code_scan_sees_a_new_call(tmp_path: Path) -> None:
    # The scan above must notice a call added the way fleet/ adds them, and must skip the sandbox.
    copy = tmp_path / "fleet"
    shutil.copytree(ROOT / "fleet", copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "discover" / "inventory.py").open("a", encoding="utf-8") as fh:
        fh.write("\n\nasync def clients(self, cognito, limits, pool):\n")
        fh.write('    return await self._call(cognito, "DescribeUserPoolClient", limits, pool, UserPoolId=pool)\n')
    (copy / "sandbox" / "extra.py").write_text('OPERATION = "DeleteUserPool"\n', encoding="utf-8")
    found = fleet_aws_calls(copy)
    assert set(found) - set(fleet_aws_calls()) == {"cognito-idp:DescribeUserPoolClient"}
    assert {w.split(":")[0] for w in found["cognito-idp:DescribeUserPoolClient"]} == {"fleet/discover/inventory.py"}


# ---- the template deploys what was reviewed ----------------------------------------------------------------------
def test_template_inline_policy_is_role_policy_json() -> None:
    policies = role_properties()["Policies"]
    assert len(policies) == 1, "one inline policy, the reviewed one"
    assert policies[0]["PolicyDocument"] == load_json("role-policy.json")
    assert "ManagedPolicyArns" not in role_properties(), "no managed policy may widen the role"


def test_template_trust_policy_is_role_trust_policy_json() -> None:
    trust = role_properties()["AssumeRolePolicyDocument"]
    assert substitute(trust, PLACEHOLDERS) == load_json("role-trust-policy.json")
    # Both parameters are used, so a deployment cannot leave the external id out.
    refs = re.findall(r'\{"Ref": "(\w+)"\}', json.dumps(trust))
    assert sorted(refs) == sorted(PLACEHOLDERS)


def test_comparison_sees_a_changed_template() -> None:
    # The equality checks above would pass vacuously if they compared a document with itself.
    props = copy.deepcopy(role_properties())
    props["Policies"][0]["PolicyDocument"]["Statement"][0]["Action"].append("cognito-idp:DeleteUserPool")
    assert props["Policies"][0]["PolicyDocument"] != load_json("role-policy.json")
    props["AssumeRolePolicyDocument"]["Statement"][0]["Condition"] = {}
    assert substitute(props["AssumeRolePolicyDocument"], PLACEHOLDERS) != load_json("role-trust-policy.json")


def test_trust_policy_trusts_one_principal_with_an_external_id() -> None:
    (stmt,) = load_json("role-trust-policy.json")["Statement"]
    assert stmt["Effect"] == "Allow" and stmt["Action"] == "sts:AssumeRole"
    assert set(stmt["Principal"]) == {"AWS"} and "*" not in stmt["Principal"]["AWS"]
    assert stmt["Condition"] == {"StringEquals": {"sts:ExternalId": PLACEHOLDERS["ExternalId"]}}


def test_template_role_settings() -> None:
    params = template()["Parameters"]
    assert set(params) == {"HubPrincipalArn", "ExternalId", "RoleName", "ReadOnlyRoleName"}
    assert params["ExternalId"].get("NoEcho") is True
    props = role_properties()
    assert props["RoleName"] == {"Ref": "RoleName"}
    # The tool asks STS for sessions of this length; a shorter maximum would make every AssumeRole fail.
    assert props["MaxSessionDuration"] == 3600 >= AwsSettings().session_duration
    assert template()["Description"] and props["Description"]
    # CloudFormation checks parameters against these patterns: the documented placeholders must pass them.
    defaults = {n: params[n]["Default"] for n in ("RoleName", "ReadOnlyRoleName")}
    for name, value in {**PLACEHOLDERS, **defaults}.items():
        assert re.fullmatch(params[name]["AllowedPattern"], value), name


def test_template_header_shows_the_stackset_commands() -> None:
    header = [ln for ln in TEMPLATE.read_text(encoding="utf-8").splitlines() if ln.startswith("#")]
    text = "\n".join(header)
    for needed in (
        "aws cloudformation create-stack-set",
        "--template-body file://iam/role-stackset.yaml",
        "--capabilities CAPABILITY_NAMED_IAM",  # RoleName is set, so IAM wants the named capability
        "--permission-model SERVICE_MANAGED",
        "--auto-deployment Enabled=true,",
        "aws cloudformation create-stack-instances",
        "--deployment-targets OrganizationalUnitIds=ou-",
        "--regions us-east-1",
    ):
        assert needed in text, needed
    # Every parameter without a default is passed by the documented command.
    required = {k for k, v in template()["Parameters"].items() if "Default" not in v}
    assert set(re.findall(r"ParameterKey=(\w+)", text)) == required


# ---- the state bucket (an s3:// state: docs/s3-state.md) ----------------------------------------------------------
def test_state_bucket_policy_passes_parliament_with_community_auditors() -> None:
    text = (IAM / "state-bucket-policy.json").read_text(encoding="utf-8")
    assert [(f.issue, f.detail) for f in parliament.analyze_policy_string(text).findings] == []
    strict = parliament.analyze_policy_string(text, include_community_auditors=True)
    assert [(f.issue, f.detail) for f in strict.findings] == []


def test_state_bucket_policy_grants_exactly_what_the_state_calls_on_its_prefix_only() -> None:
    policy = load_json("state-bucket-policy.json")
    assert sorted(set(actions(policy))) == sorted(set(STATE_CALLS.values()))
    for stmt in policy["Statement"]:
        assert stmt["Effect"] == "Allow" and set(stmt) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        resources = [stmt["Resource"]] if isinstance(stmt["Resource"], str) else stmt["Resource"]
        assert all(r == STATE_BUCKET_ARN or r.startswith(STATE_BUCKET_ARN + "/cognito-fleet/") for r in resources)
    teach_moto_string_like()  # as the sandbox does: moto alone ignores StringLike (allows)
    assert "StringLike" in policy_conditions.CONDITION_OPERATIONS
    evaluated = IAMPolicy(json.dumps(policy))

    def allowed(action: str, resource: str, context: dict[str, str] | None = None) -> bool:
        decision = evaluated.is_action_permitted(action, resource, incoming_condition_values=context)
        return bool(decision == PermissionResult.PERMITTED)

    state = f"{STATE_BUCKET_ARN}/cognito-fleet/prod/state.sqlite"
    assert allowed("s3:PutObject", state) and allowed("s3:GetObject", state)
    assert allowed("s3:DeleteObject", state + ".lock") and allowed("s3:DeleteObject", state + ".journal/r/0000000001")
    assert not allowed("s3:DeleteObject", state)  # the snapshot is replaced conditionally, never deleted
    assert not allowed("s3:PutObject", f"{STATE_BUCKET_ARN}/elsewhere/state.sqlite")
    assert allowed("s3:ListBucket", STATE_BUCKET_ARN, {"s3:prefix": "cognito-fleet/prod/state.sqlite.journal/"})
    assert not allowed("s3:ListBucket", STATE_BUCKET_ARN, {"s3:prefix": "secrets/"})


# ---- the read-only role (discover, plan, the watcher) -------------------------------------------------------------
def test_readonly_role_policy_grants_the_reads_and_nothing_that_writes() -> None:
    levels = {
        f"{svc['prefix']}:{p['privilege']}": p["access_level"]
        for svc in parliament.iam_definition
        for p in svc["privileges"]
    }
    granted = set(actions(load_json("readonly-role-policy.json")))
    assert granted == ROLE_ACTIONS - {ONLY_WRITE}
    assert {a: levels[a] for a in granted if levels[a] not in ("Read", "List")} == {}
    policy = IAMPolicy(json.dumps(load_json("readonly-role-policy.json")))
    for action in (ONLY_WRITE, "cloudfront:UpdateDistribution"):
        assert policy.is_action_permitted(action, POOL_ARN) != PermissionResult.PERMITTED
        assert policy.is_action_permitted(action, "*") != PermissionResult.PERMITTED


def test_template_deploys_the_readonly_role_as_reviewed() -> None:
    props = role_properties(READONLY_ROLE_NAME)
    (inline,) = props["Policies"]
    assert inline["PolicyDocument"] == load_json("readonly-role-policy.json")
    assert "ManagedPolicyArns" not in props
    assert props["RoleName"] == {"Ref": "ReadOnlyRoleName"} and props["MaxSessionDuration"] == 3600
    # The same trust as the writing role: the hub principal, with the external id.
    assert substitute(props["AssumeRolePolicyDocument"], PLACEHOLDERS) == load_json("role-trust-policy.json")
