"""A release: one registered version resolved once, with everything a roll-out needs.

Input: the config, the deploy target, the registry, and the version asked for (or none). Output:
a :class:`Release` (version, lineage metadata, the local ``model.tar.gz`` and its registry
address) handed to the stack, the smoke test and the promotion, so nothing reads the version's
metadata twice. Resolving picks the version (the one named; for an environment with
``requires``, what that environment serves; else ``models/LATEST``, packaged and registered
here), refuses a version that has not passed the required environment, and refuses up front
a model the default serving image's Python cannot install.

Integrity: a release carries its package's sha256, S3 version id and content digest. A version
promoted from a required environment must be byte-for-byte what that environment tested (its
pass record says which bytes); any difference is refused, naming both digests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops.config import Config
from mlops.console import say
from mlops.errors import DeployError
from mlops.images import image_python, python_conflicts, serving_image
from mlops.lineage import resolve_model_dir
from mlops.io import sha256_file
from mlops.package import build, has_wheels, requirements, tarball_digest
from mlops.registry import Registry


@dataclass(frozen=True)
class Release:
    """A registered version ready to roll out."""

    version: str
    metadata: dict
    tarball: Path  # the package, downloaded from the registry
    package_uri: str  # where the registry keeps it (s3:// for AWS)
    sha256: str = ""  # of the tarball's bytes
    version_id: str | None = None  # the S3 object version that was downloaded
    content_digest: str = ""  # what the serving container checks (mlops.serving.inference.content_digest)
    vendored: bool = False  # the package carries its wheels (deploy.vendor_wheels)

    @property
    def integrity(self) -> dict:
        """What a pass record keeps, so a later promotion can prove it deploys the same bytes."""
        return {"package_sha256": self.sha256, "package_version_id": self.version_id,
                "content_digest": self.content_digest}


def _choose(config: Config, registry: Registry, target, version: str | None, workdir: Path) -> str:
    """The version to deploy: the one named, the one serving in ``requires``, or models/LATEST packaged."""
    settings, environment = target.settings, target.environment
    if version is None and settings.requires:
        current = (registry.pointer(settings.requires) or {}).get("current")
        if not current:
            raise DeployError(f"{environment} promotes what {settings.requires} serves, but nothing has been "
                              f"deployed to {settings.requires} yet: run `make deploy ENV={settings.requires}` first")
        say(f"Promoting {current}, which {settings.requires} serves, to {environment}")
        return current
    local = config.models_dir / version if version else None
    if local is not None and (registry.has_package(version) or settings.requires or not local.is_dir()):
        registry.metadata(version)  # not registered: a clear error; registered without a package: fetch says so
        return version
    model_dir = resolve_model_dir(config, str(local) if local else None)
    package = build(config, model_dir, workdir)
    if registry.has_package(package.version):
        say(f"{package.version} is already registered with its package")
    else:
        registry.register(model_dir, extra_files=(package.tarball, package.card))
        say(f"Registered {package.version} at {registry.store.uri(registry.project + '/models/' + package.version)}")
    return package.version


def for_deploy(config: Config, target, registry: Registry, version: str | None, workdir: Path) -> Release:
    """Resolve the version to deploy to ``target`` and check it may go there."""
    version = _choose(config, registry, target, version, workdir)
    required = target.settings.requires
    if required and not registry.passed(version, required):
        record = registry.store.uri(f"{registry.project}/models/{version}/passed/{required}.json")
        raise DeployError(
            f"{target.environment} refuses {version}: it has not passed {required} (no record at {record}). "
            f"Deploy it to {required} first: make deploy ENV={required} VERSION={version}"
        )
    tested = registry.passed(version, required) if required else None
    return of_version(config, target, registry, version, workdir, tested=tested, tested_in=required)


def of_version(config: Config, target, registry: Registry, version: str, workdir: Path, *,
               tested: dict | None = None, tested_in: str | None = None) -> Release:
    """The release of a registered ``version``: metadata and package, checked against the serving image and,
    with ``tested`` (a pass record of ``tested_in``), against the bytes that environment tested."""
    metadata = registry.metadata(version)
    _check_serving_image(config, target, version, metadata)
    tarball, version_id = registry.fetch_package(version, workdir / "deploy" / "model.tar.gz")
    chosen = Release(version, metadata, tarball, registry.package_uri(version), sha256_file(tarball), version_id,
                     tarball_digest(tarball), has_wheels(tarball))
    if tested is not None:
        _check_tested(chosen, tested, tested_in or "?", target.environment)
    return chosen


def _check_tested(chosen: Release, tested: dict, where: str, environment: str) -> None:
    """Refuse unless the package is exactly the one ``where`` tested (sha256, version id, content digest)."""
    if not tested.get("package_sha256"):
        raise DeployError(
            f"{environment} refuses {chosen.version}: its {where} pass record predates release integrity records "
            f"(no package sha256), so nothing proves which bytes {where} tested. Deploy it to {where} again "
            f"(make deploy ENV={where} VERSION={chosen.version}), then promote it")
    problems = []
    if tested["package_sha256"] != chosen.sha256:
        problems.append(f"model.tar.gz sha256 is {chosen.sha256}, {where} tested {tested['package_sha256']}")
    if tested.get("package_version_id") and tested["package_version_id"] != chosen.version_id:
        problems.append(f"the S3 object version is {chosen.version_id}, {where} tested {tested['package_version_id']}")
    if tested.get("content_digest") and tested["content_digest"] != chosen.content_digest:
        problems.append(f"the content digest is {chosen.content_digest}, {where} tested {tested['content_digest']}")
    if problems:
        raise DeployError(
            f"{environment} refuses {chosen.version}: the registry's package is not the one {where} tested ("
            + "; ".join(problems) + "). It changed after the test: find out who wrote it (S3 object versions, "
            "CloudTrail), then deploy a new version. Nothing was deployed")


def _check_serving_image(config: Config, target, version: str, metadata: dict) -> None:
    """Refuse a model whose libraries the serving image's Python cannot install (staging, prod: any non-local)."""
    if target.emulator:
        return  # the `local` environment serves the package on this machine's Python, never in the image
    python = image_python(config)
    conflicts = python_conflicts(requirements(metadata), python)
    if conflicts:
        raise DeployError(
            f"{version} cannot be served by {serving_image(config)}: it runs Python {python} (deploy.image_python), "
            f"which cannot install {', '.join(conflicts)} that the model was trained with, so the endpoint would "
            "never become healthy. Use an image with a newer Python, or pin versions it can install and retrain "
            "(README: Serving image). Nothing was deployed."
        )
