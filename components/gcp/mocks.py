"""The Google Cloud provider under the offline preview (components/mocking.py): what it computes for each resource
type (`RESOURCES`) and what its functions return (`call`), in Google's own formats (resource paths, self links,
project numbers).

Read through `Platform.mocks()` / `Platform.mock_call()` of the `gcp` platform (components/targets/gcp.py).
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from typing import Any

from ..mocking import Ctx, MockCallCtx, MockFn

SUBNETS = "gcp:subnets"
"""The preview's memo (Ctx.memo) key: network id -> its subnetwork's CIDR, for values providers allocate from a
subnet (PSC addresses)."""
SUBNET_RANGES = "gcp:subnet-ranges"
"""The preview's memo key: subnetwork id -> its CIDR, for internal addresses reserved in a subnetwork."""


def project_number(project: str) -> str:
    """A stable 12-digit project number for a project id (real ones are assigned by Google)."""
    return str(10**11 + int(hashlib.sha256(project.encode()).hexdigest(), 16) % (9 * 10**11))


def _digits(c: Ctx, n: int, salt: str = "") -> str:
    return str(int(c.hex(24, salt), 16) % 10 ** (n - 1) + 10 ** (n - 1))


def _gcp(path: str, key: str = "name", lower: bool = True, self_link: bool = False, **extra):
    """A GCP resource whose id is a path like projects/{project}/regions/{region}/routers/{name}."""
    def make(c: Ctx) -> tuple[str, dict]:
        name = c.autoname(key, lower)
        project = c.inputs.get("project", c.project)
        region = c.inputs.get("region") or c.inputs.get("location") or c.region
        rid = path.format(project=project, region=region, name=name, number=project_number(project))
        out: dict[str, Any] = {key: name, "project": project}
        if self_link:
            out["selfLink"] = f"https://www.googleapis.com/compute/v1/{rid}"
        out.update({k: f(c, rid) for k, f in extra.items()})
        return rid, out
    return make


def _garden_deployment(c: Ctx) -> tuple[str, dict]:
    project, location = c.inputs.get("project", c.project), c.inputs.get("location", c.region)
    endpoint = _digits(c, 19, "endpoint")
    out: dict[str, Any] = {"endpoint": endpoint, "deployedModelId": _digits(c, 19, "model"), "project": project,
                           "location": location, "deletionPolicy": "DELETE",
                           "deployedModelDisplayName": c.inputs.get("modelConfig", {}).get("modelDisplayName", c.name)}
    psc = (c.inputs.get("endpointConfig") or {}).get("privateServiceConnectConfig")
    if psc:
        # The forwarding rule PSC automation creates takes an address in the consumer network's subnet.
        automation = psc.get("pscAutomationConfigs", {})
        cidr = c.memo.get(SUBNETS, {}).get(automation.get("network", ""), "10.0.0.0/24")
        address = str(ipaddress.ip_network(cidr)[2 + int(c.hex(4, "ip"), 16) % 200])
        configs = {**automation, "ipAddress": address,
                   "state": "SUCCESSFUL",
                   "forwardingRule": f"https://www.googleapis.com/compute/v1/projects/{project}/regions/{location}"
                                     f"/forwardingRules/sca-auto-fr-{c.hex(8, 'fr')}"}
        out["endpointConfig"] = {**c.inputs["endpointConfig"],
                                 "privateServiceConnectConfig": {**psc, "pscAutomationConfigs": configs}}
    return f"projects/{project}/locations/{location}/endpoints/{endpoint}", out


def _service_account(c: Ctx) -> tuple[str, dict]:
    project = c.inputs.get("project", c.project)
    email = f"{c.inputs['accountId']}@{project}.iam.gserviceaccount.com"
    rid = f"projects/{project}/serviceAccounts/{email}"
    return rid, {"email": email, "member": f"serviceAccount:{email}", "name": rid, "uniqueId": _digits(c, 21)}


def _gcp_secret_version(c: Ctx) -> tuple[str, dict]:
    name = f"{c.inputs['secret']}/versions/1"
    return name, {"name": name, "version": "1", "enabled": True}


_subnetwork_of = _gcp("projects/{project}/regions/{region}/subnetworks/{name}", self_link=True,
                      gatewayAddress=lambda c, _: str(next(ipaddress.ip_network(c.inputs["ipCidrRange"]).hosts())))


def _subnetwork(c: Ctx) -> tuple[str, dict]:
    """A subnetwork; its range is kept for the addresses providers later take from it (PSC forwarding rules)."""
    made = _subnetwork_of(c)
    c.memo.setdefault(SUBNETS, {})[c.inputs["network"]] = c.inputs["ipCidrRange"]
    c.memo.setdefault(SUBNET_RANGES, {})[made[0]] = c.inputs["ipCidrRange"]
    return made


def _internal_address(c: Ctx) -> tuple[str, dict]:
    """A reserved address: an internal one is taken from its subnetwork's range (past Google's reserved first
    two), unless given."""
    made = _gcp("projects/{project}/regions/{region}/addresses/{name}", self_link=True)(c)
    cidr = c.memo.get(SUBNET_RANGES, {}).get(c.inputs.get("subnetwork", ""), "10.0.0.0/24")
    chosen = str(ipaddress.ip_network(cidr)[2 + int(c.hex(4, "ip"), 16) % 200])
    return made[0], {**made[1], "address": c.inputs.get("address") or chosen,
                     "creationTimestamp": "2026-11-29T00:00:00.000-08:00", "users": []}


def _ssl_certificate(c: Ctx) -> tuple[str, dict]:
    """A self-managed certificate, named from its prefix as the provider does (a unique suffix of 26 digits)."""
    project, region = c.inputs.get("project", c.project), c.inputs.get("region", c.region)
    name = c.inputs.get("name") or f"{c.inputs.get('namePrefix', c.name + '-')}{_digits(c, 26, 'crt')}"
    rid = f"projects/{project}/regions/{region}/sslCertificates/{name}"
    return rid, {"name": name, "project": project, "selfLink": f"https://www.googleapis.com/compute/v1/{rid}",
                 "certificateId": int(_digits(c, 18, "cert")), "expireTime": "2027-11-29T00:00:00.000-08:00",
                 "creationTimestamp": "2026-11-29T00:00:00.000-08:00"}


def _cloud_run_service(c: Ctx) -> tuple[str, dict]:
    """A Cloud Run service: its deterministic run.app URL (https://SERVICE-PROJECT_NUMBER.REGION.run.app, Cloud Run
    docs "Service URLs"), also in `urls` beside the older hashed form, and its latest revision."""
    project, location = c.inputs.get("project", c.project), c.inputs.get("location", c.region)
    name = c.inputs.get("name") or c.autoname("name")
    uri = f"https://{name}-{project_number(project)}.{location}.run.app"
    return f"projects/{project}/locations/{location}/services/{name}", {
        "name": name, "project": project, "location": location, "uri": uri,
        "urls": [uri, f"https://{name}-{c.hex(10, 'url')}-uc.a.run.app"], "uid": c.uuid(), "generation": "1",
        "latestReadyRevision": f"projects/{project}/locations/{location}/services/{name}/revisions/{name}-00001-abc",
        "latestCreatedRevision": f"projects/{project}/locations/{location}/services/{name}/revisions/{name}-00001-abc",
        "terminalConditions": [{"type": "Ready", "state": "CONDITION_SUCCEEDED"}], "reconciling": False}


RESOURCES: dict[str, MockFn] = {
    "gcp:projects/service:Service": lambda c: (f"{c.inputs.get('project', c.project)}/{c.inputs['service']}", {}),
    "gcp:compute/network:Network": _gcp("projects/{project}/global/networks/{name}", self_link=True,
                                        numericId=lambda c, _: _digits(c, 19)),
    "gcp:compute/subnetwork:Subnetwork": _subnetwork,
    "gcp:compute/router:Router": _gcp("projects/{project}/regions/{region}/routers/{name}", self_link=True),
    "gcp:compute/routerNat:RouterNat": _gcp("{project}/{region}/{name}"),
    "gcp:compute/firewall:Firewall": _gcp("projects/{project}/global/firewalls/{name}", self_link=True),
    "gcp:serviceaccount/account:Account": _service_account,
    "gcp:projects/iAMMember:IAMMember": lambda c: (
        f"{c.inputs['project']}/{c.inputs['role']}/{c.inputs['member']}", {"etag": f"BwY{c.hex(9, 'etag')}="}),
    "gcp:secretmanager/secret:Secret": lambda c: (
        f"projects/{c.inputs.get('project', c.project)}/secrets/{c.inputs['secretId']}",
        {"name": f"projects/{project_number(c.inputs.get('project', c.project))}/secrets/{c.inputs['secretId']}"}),
    "gcp:secretmanager/secretVersion:SecretVersion": _gcp_secret_version,
    "gcp:secretmanager/secretIamBinding:SecretIamBinding": lambda c: (
        f"projects/{c.inputs.get('project', c.project)}/secrets/{c.inputs['secretId']}/{c.inputs['role']}",
        {"etag": f"BwY{c.hex(9, 'etag')}="}),
    "gcp:vertex/aiEndpointWithModelGardenDeployment:AiEndpointWithModelGardenDeployment": _garden_deployment,
    # Cloud KMS names: projects/P/locations/L/keyRings/R[/cryptoKeys/K] (the resources' `id`).
    "gcp:kms/keyRing:KeyRing": lambda c: (
        f"projects/{c.inputs.get('project', c.project)}/locations/{c.inputs['location']}/keyRings/{c.inputs['name']}",
        {}),
    "gcp:kms/cryptoKey:CryptoKey": lambda c: (f"{c.inputs['keyRing']}/cryptoKeys/{c.inputs['name']}", {
        "primaries": [{"name": f"{c.inputs['keyRing']}/cryptoKeys/{c.inputs['name']}/cryptoKeyVersions/1",
                       "state": "ENABLED"}]}),
    # The provider's id: b/<bucket> <role> <member> [<condition title>] (terraform-provider-google's IAM member ids).
    "gcp:storage/bucketIAMMember:BucketIAMMember": lambda c: (
        f"b/{c.inputs['bucket']} {c.inputs['role']} {c.inputs['member']} "
        f"{(c.inputs.get('condition') or {}).get('title', '')}".rstrip(), {"etag": f"CAE{c.hex(9, 'etag')}="}),
    "gcp:kms/cryptoKeyIAMMember:CryptoKeyIAMMember": lambda c: (
        f"{c.inputs['cryptoKeyId']}/{c.inputs['role']}/{c.inputs['member']}", {"etag": f"BwY{c.hex(9, 'etag')}="}),
    # A service agent: service-<project number>@gcp-sa-<service>.iam.gserviceaccount.com.
    "gcp:projects/serviceIdentity:ServiceIdentity": lambda c: (lambda email: (
        f"projects/{c.inputs.get('project', c.project)}/services/{c.inputs['service']}",
        {"email": email, "member": f"serviceAccount:{email}"}))(
        f"service-{project_number(c.inputs.get('project', c.project))}@gcp-sa-"
        f"{c.inputs['service'].split('.')[0]}.iam.gserviceaccount.com"),
    "gcp:networkconnectivity/serviceConnectionPolicy:ServiceConnectionPolicy": _gcp(
        "projects/{project}/locations/{region}/serviceConnectionPolicies/{name}"),
    "gcp:dns/managedZone:ManagedZone": _gcp("projects/{project}/managedZones/{name}",
                                            managedZoneId=lambda c, _: _digits(c, 19),
                                            nameServers=lambda c, _: ["ns-gcp-private.googledomains.com."]),
    "gcp:dns/recordSet:RecordSet": lambda c: (
        f"projects/{c.inputs.get('project', c.project)}/managedZones/{c.inputs['managedZone']}/rrsets/"
        f"{c.inputs['name']}/{c.inputs['type']}", {}),
    "gcp:bigquery/dataset:Dataset": lambda c: (
        f"projects/{c.inputs.get('project', c.project)}/datasets/{c.inputs['datasetId']}",
        {"selfLink": f"https://bigquery.googleapis.com/bigquery/v2/projects/{c.inputs.get('project', c.project)}"
                     f"/datasets/{c.inputs['datasetId']}", "etag": c.hex(22, "etag"), "creationTime": 1764374400000}),
    "gcp:artifactregistry/repository:Repository": lambda c: (lambda p, loc, rid: (
        f"projects/{p}/locations/{loc}/repositories/{rid}",
        {"name": rid, "createTime": "2026-11-29T00:00:00Z"}))(
        c.inputs.get("project", c.project), c.inputs.get("location", c.region), c.inputs["repositoryId"]),
    "gcp:artifactregistry/repositoryIamMember:RepositoryIamMember": lambda c: (
        f"projects/{c.inputs['project']}/locations/{c.inputs['location']}/repositories/{c.inputs['repository']}"
        f"/{c.inputs['role']}/{c.inputs['member']}", {"etag": f"BwY{c.hex(9, 'etag')}="}),
    "gcp:monitoring/alertPolicy:AlertPolicy": lambda c: (lambda n: (n, {"name": n}))(
        f"projects/{c.inputs.get('project', c.project)}/alertPolicies/{_digits(c, 19)}"),
    "gcp:compute/instanceTemplate:InstanceTemplate": _gcp(
        "projects/{project}/global/instanceTemplates/{name}", self_link=True,
        selfLinkUnique=lambda c, rid: f"https://www.googleapis.com/compute/v1/{rid}?uniqueId={_digits(c, 19, 'u')}",
        name=lambda c, _: f"{c.inputs.get('namePrefix', c.name)}{c.hex(26, 'tpl')}"),
    "gcp:compute/regionHealthCheck:RegionHealthCheck": _gcp(
        "projects/{project}/regions/{region}/healthChecks/{name}", self_link=True),
    "gcp:compute/regionInstanceGroupManager:RegionInstanceGroupManager": _gcp(
        "projects/{project}/regions/{region}/instanceGroupManagers/{name}", self_link=True,
        instanceGroup=lambda c, rid: "https://www.googleapis.com/compute/v1/" + rid.replace(
            "instanceGroupManagers", "instanceGroups")),
    "gcp:compute/regionAutoscaler:RegionAutoscaler": _gcp(
        "projects/{project}/regions/{region}/autoscalers/{name}", self_link=True),
    "gcp:compute/regionBackendService:RegionBackendService": _gcp(
        "projects/{project}/regions/{region}/backendServices/{name}", self_link=True,
        fingerprint=lambda c, _: c.hex(12, "fp")),
    "gcp:compute/regionUrlMap:RegionUrlMap": _gcp("projects/{project}/regions/{region}/urlMaps/{name}",
                                                  self_link=True),
    "gcp:compute/regionTargetHttpProxy:RegionTargetHttpProxy": _gcp(
        "projects/{project}/regions/{region}/targetHttpProxies/{name}", self_link=True),
    "gcp:compute/regionTargetHttpsProxy:RegionTargetHttpsProxy": _gcp(
        "projects/{project}/regions/{region}/targetHttpsProxies/{name}", self_link=True,
        proxyId=lambda c, _: int(_digits(c, 18, "proxy"))),
    "gcp:compute/regionSslCertificate:RegionSslCertificate": _ssl_certificate,
    "gcp:compute/regionSslPolicy:RegionSslPolicy": _gcp(
        "projects/{project}/regions/{region}/sslPolicies/{name}", self_link=True,
        fingerprint=lambda c, _: c.hex(12, "fp"),
        enabledFeatures=lambda c, _: ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                                      "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
                                      "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
                                      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
                                      "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"]),
    "gcp:compute/address:Address": _internal_address,
    # An internal forwarding rule takes its reserved address, or one from its subnet (mocked from the subnet's
    # range).
    "gcp:compute/forwardingRule:ForwardingRule": _gcp(
        "projects/{project}/regions/{region}/forwardingRules/{name}", self_link=True,
        ipAddress=lambda c, _: c.inputs.get("ipAddress")
        or f"10.{int(c.hex(2, 'a'), 16) % 200}.0.{int(c.hex(2, 'b'), 16) % 250 + 2}"),
    "gcp:cloudrunv2/service:Service": _cloud_run_service,
    # A project's custom role is named projects/P/roles/ID, its id the same (IAM API projects.roles).
    "gcp:projects/iAMCustomRole:IAMCustomRole": lambda c: (lambda n: (n, {"name": n, "deleted": False}))(
        f"projects/{c.inputs.get('project', c.project)}/roles/{c.inputs['roleId']}"),
    "gcp:vertex/aiEndpointIamMember:AiEndpointIamMember": lambda c: (
        f"projects/{c.inputs.get('project', c.project)}/locations/{c.inputs.get('location', c.region)}/endpoints/"
        f"{c.inputs['endpoint']}/{c.inputs['role']}/{c.inputs['member']}", {"etag": f"BwY{c.hex(9, 'etag')}="}),
    "gcp:monitoring/dashboard:Dashboard": lambda c: (
        f"projects/{project_number(c.inputs.get('project', c.project))}/dashboards/{c.uuid()}", {}),
}


def call(token: str, args: Mapping[str, Any], ctx: MockCallCtx) -> dict[str, Any] | None:
    """The result of the Google provider function `token` in `ctx.project`; None: not mocked."""
    project = ctx.project
    if token == "gcp:organizations/getClientConfig:getClientConfig":
        return {"accessToken": "preview-placeholder", "project": project, "region": "", "zone": "", "id": project}
    if token == "gcp:compute/getImage:getImage":
        # The family's current image, named as Deep Learning VM images are (deterministic per family).
        family, image_project = args.get("family", ""), args.get("project", project)
        name = f"{family}-v20261115"
        link = f"https://www.googleapis.com/compute/v1/projects/{image_project}/global/images/{name}"
        return {"name": name, "family": family, "project": image_project, "selfLink": link, "status": "READY",
                "id": f"projects/{image_project}/global/images/{name}", "diskSizeGb": 50,
                "imageId": str(int(hashlib.sha256(name.encode()).hexdigest(), 16) % 10**19)}
    if token == "gcp:bigquery/getDefaultServiceAccount:getDefaultServiceAccount":
        # BigQuery's encryption service account, named after the project number.
        pid = args.get("project") or project
        email = f"bq-{project_number(pid)}@bigquery-encryption.iam.gserviceaccount.com"
        return {"email": email, "member": f"serviceAccount:{email}", "project": pid, "id": pid}
    if token == "gcp:organizations/getProject:getProject":
        pid = args.get("projectId") or project
        return {"projectId": pid, "number": project_number(pid), "name": pid, "id": f"projects/{pid}"}
    return None
