"""The model registry: versioned model folders plus per-environment pointers.

Input: ``registry.uri`` from the config: a local folder (the default, ``.registry``) or an
``s3://bucket/prefix``. Layout, the same for both::

    <uri>/<project>/models/<version>/{model.skops, metadata.json, metrics.json,
                                      model.tar.gz, model_card.md}
    <uri>/<project>/models/<version>/passed/<env>.json   smoke-test evidence per environment, with the
                                                         package's sha256, S3 version id and content digest
    <uri>/<project>/releases/<env>/<version>/model.tar.gz  the package an environment's endpoint serves
    <uri>/<project>/environments/<env>.json   {"current", "previous", "history", "rolled_back", "updated_at"}

Versions, pass records and releases are created once and never overwritten (S3 ``If-None-Match``,
enforced by the bucket policy); only the environment pointers change.

Output: registered versions, the record of which environments each version passed (prod
refuses a version that has not passed staging), and pointers saying what each environment
serves and served before (for rollback). The PR comparison reads the prod champion from here.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from pathlib import Path

from mlops import s3
from mlops.stores import LocalStore, S3Store, Store
from mlops.config import Config
from mlops.errors import DeployError, ModelError
from mlops.lineage import HOLDOUT_PREDICTIONS, MODEL_FILE

log = logging.getLogger(__name__)

MODEL_FILES = (MODEL_FILE, "metadata.json", "metrics.json", HOLDOUT_PREDICTIONS)
# Written by evaluate, so a version registered before it ran (or by an older suite) may lack them.
OPTIONAL_FILES = ("metrics.json", HOLDOUT_PREDICTIONS)


class Registry:
    """Versions and environment pointers of one project."""

    def __init__(self, store: Store, project: str):
        self.store, self.project = store, project

    @classmethod
    def from_config(cls, config: Config, uri: str | None = None) -> Registry:
        """The registry named by ``registry.uri`` (or ``uri``)."""
        uri = uri or config.registry.uri
        if s3.is_s3(uri):
            return cls(S3Store(*s3.parse(uri)), config.project)
        return cls(LocalStore(Path(config.resolve(uri))), config.project)

    @classmethod
    def for_target(cls, config: Config, target) -> Registry:
        """The registry a deploy target uses: S3 for AWS; a local folder for emulators (never real S3).

        ``target`` is a :class:`mlops.aws.Target` (its ``emulator`` flag, ``environment`` and ``client``).
        """
        uri = config.registry.uri
        if target.emulator:
            folder = config.resolve(".registry" if s3.is_s3(uri) else uri)
            return cls(LocalStore(Path(folder)), config.project)
        if not s3.is_s3(uri):
            raise DeployError(
                f"registry.uri in {config.path} is the local folder {uri!r}, but {target.environment} runs on AWS "
                "and SageMaker reads the model from S3. Set registry.uri to the RegistryUri output of the "
                "foundation stack (`make bootstrap` prints it), e.g. "
                "s3://<project>-artifacts-<account>-<region>/registry"
            )
        return cls(S3Store(*s3.parse(uri), client=target.client("s3")), config.project)

    def _key(self, *parts: str) -> str:
        return "/".join((self.project, *parts))

    def register(self, model_dir: Path, extra_files: tuple[Path, ...] = ()) -> str:
        """Copy a trained model folder into the registry, once; metadata.json goes last (it marks completeness).

        Each object is created, never overwritten: registering the same version again with the same
        bytes is a no-op, with other bytes a DeployError.
        """
        metadata = json.loads((model_dir / "metadata.json").read_text(encoding="utf-8"))
        version = metadata["version"]
        for path in [*(model_dir / name for name in MODEL_FILES if name != "metadata.json"), *extra_files,
                     model_dir / "metadata.json"]:
            if path.is_file():
                self.store.create(self._key("models", version, path.name), path.read_bytes())
        log.info("registered %s at %s", version, self.store.uri(self._key("models", version)))
        return version

    def versions(self) -> list[str]:
        """Registered (complete) versions, oldest first."""
        keys = self.store.list(self._key("models"))
        return sorted({k.split("/")[-2] for k in keys if k.endswith("/metadata.json")})

    def metadata(self, version: str) -> dict:
        """A registered version's lineage record."""
        text = self.store.read_text(self._key("models", version, "metadata.json"))
        if text is None:
            raise ModelError(f"version {version} is not registered in {self.store.uri(self._key('models'))}")
        return json.loads(text)

    def fetch(self, version: str, dest: Path) -> Path:
        """Download a version's model files into ``dest``; return ``dest``."""
        self.metadata(version)
        present = set(self.store.list(self._key("models", version)))
        for name in MODEL_FILES:
            key = self._key("models", version, name)
            if name in OPTIONAL_FILES and key not in present:
                continue
            self.store.download(key, dest / name)
        return dest

    def pointer(self, environment: str) -> dict | None:
        """What ``environment`` serves: {"current", "previous", "history", "updated_at"}, or None."""
        text = self.store.read_text(self._key("environments", f"{environment}.json"))
        return json.loads(text) if text else None

    def set_pointer(self, environment: str, version: str, rollback_of: str | None = None) -> dict:
        """Record that ``environment`` now serves ``version`` (the old current becomes previous).

        ``rollback_of`` names the version a rollback moved away from; later rollbacks skip it.
        """
        old = self.pointer(environment) or {"current": None, "history": []}
        if old.get("current") == version:
            return old
        rolled_back = [v for v in old.get("rolled_back", []) if v != version]
        if rollback_of:
            rolled_back = [*rolled_back, rollback_of][-20:]
        record = {
            "current": version,
            "previous": old.get("current"),
            "history": [version, *old.get("history", [])][:20],
            "rolled_back": rolled_back,
            "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        self.store.write_text(self._key("environments", f"{environment}.json"), json.dumps(record, indent=2) + "\n")
        return record

    def has_package(self, version: str) -> bool:
        """Whether ``version`` has a serving package (model.tar.gz) in the registry."""
        return any(key.endswith("/model.tar.gz") for key in self.store.list(self._key("models", version)))

    def package_uri(self, version: str) -> str:
        """Address of a version's model.tar.gz (an s3:// URL for S3 registries)."""
        return self.store.uri(self._key("models", version, "model.tar.gz"))

    def fetch_package(self, version: str, dest: Path) -> tuple[Path, str | None]:
        """Download a version's model.tar.gz to ``dest`` (a file path): (dest, the object's version id)."""
        self.metadata(version)
        if not self.has_package(version):
            raise DeployError(
                f"version {version} has no model.tar.gz in {self.store.uri(self._key('models', version))}; "
                "deploy it first to an environment without `requires` (e.g. `make deploy ENV=staging "
                f"VERSION={version}` from a checkout that has models/{version}/), which packages and registers it"
            )
        return dest, self.store.download(self._key("models", version, "model.tar.gz"), dest)

    def publish_release(self, environment: str, version: str, tarball: Path) -> str:
        """Copy the verified package to ``releases/<environment>/<version>/``, which only that environment's
        deploy role may write and its endpoint reads; return its address."""
        key = self._key("releases", environment, version, "model.tar.gz")
        self.store.create(key, tarball.read_bytes())
        return self.store.uri(key)

    def record_pass(self, version: str, environment: str, evidence: dict) -> dict:
        """Record, once, that ``version`` passed ``environment``'s deploy and smoke test; the first record stays."""
        record = {"version": version, "environment": environment,
                  "passed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **evidence}
        key = self._key("models", version, "passed", f"{environment}.json")
        existing = self.passed(version, environment)
        if existing is not None:
            return existing
        self.store.create(key, (json.dumps(record, indent=2, default=str) + "\n").encode())
        return record

    def record_failure(self, version: str, environment: str, reason: str) -> None:
        """Record that ``version`` failed ``environment``'s deploy or smoke test (one record per attempt)."""
        now = datetime.now(timezone.utc)
        record = {"version": version, "environment": environment, "failed_at": now.isoformat(timespec="seconds"),
                  "reason": reason[:2000]}
        key = self._key("models", version, "failed", f"{environment}-{now:%Y%m%dT%H%M%S%fZ}.json")
        self.store.create(key, (json.dumps(record, indent=2) + "\n").encode())

    def failed_only(self) -> list[dict]:
        """Versions that failed some environment and never passed any: safe to prune (their last failure each)."""
        keys = self.store.list(self._key("models"))
        failed, passed = {}, set()
        for key in keys:
            parts = key.split("/")
            if len(parts) >= 3 and parts[-2] == "passed":
                passed.add(parts[-3])
            elif len(parts) >= 3 and parts[-2] == "failed":
                failed[parts[-3]] = key
        out = []
        for version in sorted(set(failed) - passed):
            text = self.store.read_text(failed[version])
            out.append(json.loads(text) if text else {"version": version})
        return out

    def passed(self, version: str, environment: str) -> dict | None:
        """The evidence that ``version`` passed ``environment``, or None."""
        text = self.store.read_text(self._key("models", version, "passed", f"{environment}.json"))
        return json.loads(text) if text else None

    def rollback_target(self, environment: str) -> str:
        """The version a rollback of ``environment`` returns to: the latest earlier one not rolled back."""
        record = self.pointer(environment)
        if not record or not record.get("current"):
            raise DeployError(f"nothing has been deployed to {environment} yet, so there is nothing to roll back")
        skip = {record["current"], *record.get("rolled_back", [])}
        for version in record.get("history", []):
            if version not in skip:
                return version
        raise DeployError(
            f"{environment} serves {record['current']} and has no earlier version to roll back to "
            f"(history: {', '.join(record.get('history', [])) or 'empty'}); deploy a fixed version instead"
        )
