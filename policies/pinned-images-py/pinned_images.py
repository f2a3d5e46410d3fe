"""Example policy, in Python: an image must name an exact version.

Refuses images tagged `latest` or carrying no tag; with
`{"require_digest": true}` in its settings, only `@sha256:` references pass.
"""
import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.policy import PolicyInput, PolicyOutput
from wit_world.imports import config
from wit_world.imports.types import Denial, Source_Image


def deny(field: str, reason: str):
    raise Err(Denial(field=field, reason=reason))


def require_digest() -> bool:
    # Settings that cannot be read deny every request rather than loosen the policy.
    try:
        settings = json.loads(config.settings())
        value = settings.get("require_digest", False)
    except (ValueError, AttributeError) as e:
        deny("settings", f"pinned-images: {e}")
    if not isinstance(value, bool):
        deny("settings", "pinned-images: require_digest must be true or false")
    return value


def check(image: str, digest_required: bool) -> None:
    # A package's purl names an exact version; the host pins its tree by a lock.
    if "@sha256:" in image or image.startswith("pkg:"):
        return
    if digest_required:
        deny("source.image", f"'{image}' must be pinned by digest (@sha256:...)")
    # The tag follows the last ':' after the last '/' (a ':' before it is a registry port).
    name = image.rsplit("/", 1)[-1]
    if ":" not in name:
        deny("source.image", f"'{image}' has no tag: pin a version")
    if name.split(":", 1)[1] == "latest":
        deny("source.image", f"'{image}' uses the moving tag 'latest': pin a version")


class Policy(exports.Policy):
    def evaluate(self, input: PolicyInput) -> PolicyOutput:
        source = input.request.entry.source
        if isinstance(source, Source_Image):
            check(source.value.image, require_digest())
        return PolicyOutput(effective=input.effective, warnings=input.warnings)
