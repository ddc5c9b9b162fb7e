"""Where a model's or an adapter's weights live, parsed once from its `source`.

- `hub`: the Hugging Face Hub, at the pinned `revision` (the serving host downloads them, or the platform does).
- `s3`: the stack's own artifacts bucket on AWS, under models/<id>/<revision>/ (`selfhost stage` copies them there).
- `s3://bucket/prefix`, `gs://bucket/prefix`: a bucket the team owns (a fine-tuned checkpoint, an adapter): the
  target's identity is granted read on exactly that prefix, nothing else of the bucket.
- `pvc://claim/path`: a path on a Kubernetes PersistentVolumeClaim of the target's namespace, mounted read-only.

Which of these a target kind can read is the kind's (TargetKind.weight_schemes); the config checks it generically.
Pure: no provider SDK.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, cast

Scheme = Literal["hub", "stack", "s3", "gs", "pvc"]

# Bucket names as S3 and Cloud Storage both admit them (3-63 lowercase letters, digits, '.', '-'); a claim name is a
# DNS-1123 subdomain; the rest is a path of plain segments (no '..', no empty segment, no query).
_BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_PATH = r"(?:/[A-Za-z0-9_.=+-]+)*"
SOURCE_PATTERN = rf"^(?:hub|s3|(?:s3|gs|pvc)://{_BUCKET}{_PATH}/?)$"
SOURCE_HELP = ("hub (the Hugging Face Hub), s3 (the stack's artifacts bucket, staged), s3://bucket/prefix, "
               "gs://bucket/prefix, or pvc://claim/path")
_URI = re.compile(rf"^(s3|gs|pvc)://({_BUCKET})((?:{_PATH}))/?$")

SCHEME_HELP: dict[Scheme, str] = {
    "hub": "hub",
    "stack": "s3 (the stack's artifacts bucket)",
    "s3": "s3://bucket/prefix",
    "gs": "gs://bucket/prefix",
    "pvc": "pvc://claim/path",
}


@dataclass(frozen=True)
class Location:
    scheme: Scheme
    bucket: str = ""
    """The bucket, or the claim of a `pvc://` source; empty for the Hub and the stack's bucket."""
    prefix: str = ""
    """The key prefix (or the path on the volume), without leading or trailing '/'; may be empty (the whole
    bucket)."""

    @property
    def uri(self) -> str:
        if self.scheme in ("hub", "stack"):
            return "hub" if self.scheme == "hub" else "s3"
        return f"{self.scheme}://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")

    @property
    def owned(self) -> bool:
        """A bucket or volume of the team's own (not the Hub, not the stack's bucket)."""
        return self.scheme in ("s3", "gs", "pvc")

    @property
    def object_prefix(self) -> str:
        """The key prefix an identity is granted: the prefix and what is under it (`p/`), or the whole bucket."""
        return f"{self.prefix}/" if self.prefix else ""

    def key(self, name: str) -> str:
        """The key (or path) of `name` under the source."""
        return f"{self.prefix}/{name}" if self.prefix else name


def parse(source: str) -> Location:
    """The location of a `source` value (already checked against SOURCE_PATTERN)."""
    if source == "hub":
        return Location("hub")
    if source == "s3":
        return Location("stack")
    match = _URI.match(source)
    if match is None:
        raise ValueError(f"not a weights source: {source!r}; allowed: {SOURCE_HELP}")
    scheme, bucket, path = match.groups()
    return Location(cast(Scheme, scheme), bucket, path.strip("/"))


def allowed(schemes: tuple[Scheme, ...]) -> str:
    """The `allowed` text of a problem for a kind that reads `schemes`."""
    return ", ".join(SCHEME_HELP[s] for s in schemes)
