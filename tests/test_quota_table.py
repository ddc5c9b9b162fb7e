"""The quota table against the catalogs it serves: every GPU type and accelerator the project accepts has a row, and
every row says where it was read."""

import datetime
import re

import pytest

from components.catalog.gcp_machines import ACCELERATORS, GCE_ACCELERATOR_TYPES
from components.catalog.quotas import QUOTAS, QuotaRow, ec2_class, quota_for
from components.catalog.sagemaker_instances import _SUPPLEMENT_REGIONS, instances_in, known_regions
from components.targets.registry import PLATFORMS, check_quota_table

AWS_CODE = re.compile(r"^L-[0-9A-F]{8}$")
GCE_METRIC = re.compile(r"^[A-Z][A-Z0-9_]*_GPUS$|^(PREEMPTIBLE_)?TPU_[A-Z0-9_]+$|^GPUS_ALL_REGIONS$")
VERTEX_METRIC = re.compile(
    r"^aiplatform\.googleapis\.com/custom_model_serving_([a-z0-9_]+_gpus|(preemptible_)?tpu_v[0-9a-z]+)$")

# need kind -> (service, unit, scope); the platform is the registered one whose quota_services name the service
KINDS = {
    "sagemaker-endpoint": ("sagemaker", "instances", "region"),
    "ec2-vcpus": ("ec2", "vCPUs", "region"),
    "fargate-vcpus": ("fargate", "vCPUs", "region"),
    "gce-gpus": ("compute.googleapis.com", "GPUs", "region"),
    "gce-gpus-all-regions": ("compute.googleapis.com", "GPUs", "global"),
    "vertex-gpus": ("aiplatform.googleapis.com", "GPUs", "region"),
    "vertex-gpus-spot": ("aiplatform.googleapis.com", "GPUs", "region"),
    "cloud-run-cpu": ("run.googleapis.com", "milli-vCPUs", "region"),
    "gce-tpus": ("compute.googleapis.com", "TPUs", "region"),
    "gce-tpus-spot": ("compute.googleapis.com", "TPUs", "region"),
    "vertex-tpus": ("aiplatform.googleapis.com", "TPUs", "region"),
    "vertex-tpus-spot": ("aiplatform.googleapis.com", "TPUs", "region"),
    "azure-ml-cores": ("Microsoft.MachineLearningServices", "vCPUs", "region"),
    "azure-ml-total-cores": ("Microsoft.MachineLearningServices", "vCPUs", "region"),
    "azure-ml-computes": ("Microsoft.MachineLearningServices", "computes", "region"),
    "azure-ml-endpoints": ("Microsoft.MachineLearningServices", "endpoints", "region"),
}


def platform_of(service: str) -> str:
    """The one registered platform whose quota rows are filed under `service`."""
    (name,) = [p.name for p in PLATFORMS.values() if service in p.quota_services]
    return name


def test_every_row_names_a_registered_platform_and_one_of_its_services():
    check_quota_table()
    row = QUOTAS["sagemaker-endpoint:ml.g5.2xlarge"]
    for bad in ({"platform": "azure"}, {"service": "compute.googleapis.com"}):
        with pytest.raises(ValueError, match="azure|compute.googleapis.com"):
            check_quota_table([QuotaRow(**{**row.__dict__, **bad})])


def sagemaker_gpu_types() -> set[str]:
    types: set[str] = set()
    for region in {*known_regions(), *_SUPPLEMENT_REGIONS}:
        types |= set(instances_in(region))
    return types


def test_every_sagemaker_gpu_type_has_an_endpoint_quota():
    types = sagemaker_gpu_types()
    assert types, "the SageMaker catalog is empty"
    missing = sorted(t for t in types if quota_for(f"sagemaker-endpoint:{t}") is None)
    assert not missing, f"no quota row for {missing}"
    for t in types:
        assert QUOTAS[f"sagemaker-endpoint:{t}"].quota_name == f"{t} for endpoint usage"


@pytest.mark.parametrize("purchase", ["on-demand", "spot"])
def test_every_gce_accelerator_has_a_gpu_quota(purchase):
    missing = sorted(a for a in GCE_ACCELERATOR_TYPES.values() if quota_for(f"gce-gpus:{purchase}:{a}") is None)
    assert not missing, f"no {purchase} quota row for {missing}"
    assert quota_for("gce-gpus-all-regions") is not None


def test_every_vertex_accelerator_has_a_serving_quota():
    missing = sorted(e for e in ACCELERATORS if quota_for(f"vertex-gpus:{e}") is None)
    assert not missing, f"no quota row for {missing}"
    assert set(ACCELERATORS) == set(GCE_ACCELERATOR_TYPES), "the two accelerator tables name different GPUs"


def test_the_ec2_classes_of_gpu_pools_have_rows():
    for t in sagemaker_gpu_types():
        ec2 = t.removeprefix("ml.")
        assert quota_for(f"ec2-vcpus:on-demand:{ec2_class(ec2)}") is not None, ec2
        assert quota_for(f"ec2-vcpus:spot:{ec2_class(ec2, spot=True)}") is not None, ec2
    assert quota_for("ec2-vcpus:on-demand:standard") and quota_for("ec2-vcpus:spot:standard")


@pytest.mark.parametrize("row", list(QUOTAS.values()), ids=lambda r: r.need)
def test_row_is_well_formed(row: QuotaRow):
    kind = row.need.split(":", 1)[0]
    assert kind in KINDS, row.need
    assert (row.service, row.unit, row.scope) == KINDS[kind]
    assert row.platform == platform_of(row.service)
    assert row.source.strip() and row.quota_name.strip()
    datetime.date.fromisoformat(row.as_of)
    if row.quota_code is None:
        # An empty code must say so, and why: the source names what was looked for.
        assert "no code" in row.source or "no metric" in row.source or "no regions.get metric" in row.source
        return
    if row.platform == "aws":
        assert AWS_CODE.match(row.quota_code), row.quota_code
    elif row.service == "compute.googleapis.com":
        assert GCE_METRIC.match(row.quota_code), row.quota_code
        assert row.metric == f"compute.googleapis.com/{row.quota_code.lower()}"
    elif row.platform == "azure":
        # The Azure ML usages API keys a family's quota by the family's name, which the need carries.
        assert row.quota_code == row.need.split(":", 1)[1], row.quota_code
    elif row.service == "run.googleapis.com":
        assert row.quota_code == "run.googleapis.com/cpu_allocation" and row.metric == row.quota_code
    else:
        assert VERTEX_METRIC.match(row.quota_code), row.quota_code
        assert row.metric == row.quota_code


def test_codes_are_not_shared():
    seen: dict[tuple[str, str], str] = {}
    for row in QUOTAS.values():
        if row.quota_code:
            other = seen.setdefault((row.service, row.quota_code), row.need)
            assert other == row.need, f"{row.need} and {other} share {row.quota_code}"


def test_known_codes():
    assert QUOTAS["sagemaker-endpoint:ml.g5.2xlarge"].quota_code == "L-9614C779"
    assert QUOTAS["ec2-vcpus:on-demand:G"].quota_code == "L-DB2E81BA"
    assert QUOTAS["ec2-vcpus:on-demand:P"].quota_code == "L-417A185B"
    assert QUOTAS["ec2-vcpus:on-demand:G"].quota_name == "Running On-Demand G and VT instances"
    assert QUOTAS["fargate-vcpus:on-demand"].quota_code == "L-3032A538"
    assert QUOTAS["fargate-vcpus:on-demand"].quota_name == "Fargate On-Demand vCPU resource count"
    assert QUOTAS["gce-gpus:spot:nvidia-l4"].quota_code == "PREEMPTIBLE_NVIDIA_L4_GPUS"
    assert QUOTAS["gce-gpus-all-regions"].metric == "compute.googleapis.com/gpus_all_regions"
    assert QUOTAS["vertex-gpus:NVIDIA_L4"].quota_code == (
        "aiplatform.googleapis.com/custom_model_serving_nvidia_l4_gpus")


def test_gpu_family_rows():
    h100 = QUOTAS["gce-gpus:on-demand:nvidia-h100-80gb"]
    assert h100.quota_code is None
    assert h100.metric == "compute.googleapis.com/gpus_per_gpu_family"
    assert h100.gpu_family == "NVIDIA_H100"
    assert QUOTAS["gce-gpus:on-demand:nvidia-l4"].gpu_family is None


@pytest.mark.parametrize(("itype", "on_demand", "spot"), [
    ("g5.xlarge", "G", "G"),
    ("g6e.2xlarge", "G", "G"),
    ("ml.g4dn.12xlarge", "G", "G"),
    ("gr6.4xlarge", "G", "G"),
    ("vt1.3xlarge", "G", "G"),
    ("p3.2xlarge", "P", "P"),
    ("p4d.24xlarge", "P", "P"),
    ("p5.48xlarge", "P", "P5"),
    ("p5en.48xlarge", "P", "P5"),
    ("c7i.large", "standard", "standard"),
    ("m5.xlarge", "standard", "standard"),
    ("t3.medium", "standard", "standard"),
    ("i4i.large", "standard", "standard"),
    ("d3.xlarge", "standard", "standard"),
    ("inf2.xlarge", "inf", "inf"),
    ("dl1.24xlarge", "dl", "dl"),
    ("trn1.32xlarge", "trn", "trn"),
])
def test_ec2_class(itype, on_demand, spot):
    assert ec2_class(itype) == on_demand
    assert ec2_class(itype, spot=True) == spot


@pytest.mark.parametrize("itype", ["x2idn.16xlarge", "f1.2xlarge", "hpc7g.16xlarge", "mac2.metal", "u-6tb1.metal"])
def test_ec2_class_without_a_row_raises(itype):
    with pytest.raises(ValueError):
        ec2_class(itype)


def test_p6_spot_is_not_guessed():
    assert ec2_class("p6-b200.48xlarge") == "P"
    with pytest.raises(ValueError):
        ec2_class("p6-b200.48xlarge", spot=True)
