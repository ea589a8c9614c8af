"""Serving images: AWS's prebuilt scikit-learn image per region, and whether it can install a model's pins.

Input: the config's ``deploy`` section (``region``, ``image_uri``) and a model's recorded library
versions. Output: the image URI a deploy uses (:func:`serving_image`), the Python it runs, and the
libraries whose ``Requires-Python`` that Python cannot satisfy (:func:`python_conflicts`).
"""

from __future__ import annotations

from mlops.config import Config
from mlops.errors import ConfigError

# AWS's prebuilt scikit-learn serving images (sagemaker-scikit-learn) by region: the ECR account
# differs per region (the SageMaker Python SDK's image_uri_config/sklearn.json). Other regions:
# set deploy.image_uri and deploy.image_python.
SKLEARN_IMAGE_ACCOUNTS = {
    "us-east-1": "683313688378", "us-east-2": "257758044811", "us-west-1": "746614075791",
    "us-west-2": "246618743249", "ca-central-1": "341280168497", "ca-west-1": "190319476487",
    "sa-east-1": "737474898029", "eu-west-1": "141502667606", "eu-west-2": "764974769150",
    "eu-west-3": "659782779980", "eu-central-1": "492215442770", "eu-central-2": "680994064768",
    "eu-north-1": "662702820516", "eu-south-1": "978288397137", "eu-south-2": "104374241257",
    "ap-southeast-1": "121021644041", "ap-southeast-2": "783357654285", "ap-southeast-3": "951798379941",
    "ap-southeast-4": "106583098589", "ap-northeast-1": "354813040037", "ap-northeast-2": "366743142698",
    "ap-northeast-3": "867004704886", "ap-south-1": "720646828776", "ap-south-2": "628508329040",
    "ap-east-1": "651117190479", "af-south-1": "510948584623", "me-south-1": "801668240914",
    "me-central-1": "272398656194", "il-central-1": "898809789911",
}
# sagemaker-scikit-learn:1.9-0-cpu-py3: scikit-learn 1.9.0 on Python 3.12 (Amazon Linux 2023), released
# 2026-07-16 and patched until 2027-07-16 (aws/deep-learning-containers, .github/config/image/sklearn/).
SKLEARN_IMAGE_TAG = "1.9-0-cpu-py3"
SKLEARN_IMAGE_PYTHON = "3.12"  # the Python of that image: deploys check the model's libraries install on it


def serving_image(config: Config) -> str:
    """The serving image: ``deploy.image_uri``, or AWS's prebuilt scikit-learn image for the region."""
    deploy = config.deploy
    if deploy.image_uri:
        return deploy.image_uri
    account = SKLEARN_IMAGE_ACCOUNTS.get(deploy.region)
    if account is None:
        raise ConfigError(
            f"deploy.region {deploy.region!r} has no known prebuilt scikit-learn image; set deploy.image_uri and "
            "deploy.image_python (see the SageMaker docs 'Docker Registry Paths and Example Code', "
            "sagemaker-scikit-learn)"
        )
    return f"{account}.dkr.ecr.{deploy.region}.amazonaws.com/sagemaker-scikit-learn:{SKLEARN_IMAGE_TAG}"


def image_python(config: Config) -> str:
    """The Python minor version the serving image runs (``deploy.image_python``, else the default image's)."""
    return config.deploy.image_python or SKLEARN_IMAGE_PYTHON


def python_conflicts(libraries: dict[str, str], python: str = SKLEARN_IMAGE_PYTHON) -> list[str]:
    """Libraries (name -> version, as a model's metadata records them) whose Requires-Python excludes ``python``.

    Read from the installed distributions' metadata, for the libraries installed at the recorded version.
    """
    from importlib import metadata as importlib_metadata  # pylint: disable=import-outside-toplevel  # deploy only

    from packaging.specifiers import SpecifierSet  # pylint: disable=import-outside-toplevel  # same

    conflicts = []
    for name, version in libraries.items():
        try:
            dist = importlib_metadata.distribution(name)
        except importlib_metadata.PackageNotFoundError:
            continue
        requires = dist.metadata.get("Requires-Python")
        if dist.version == version and requires and python not in SpecifierSet(requires):
            conflicts.append(f"{name} {version} (Requires-Python {requires})")
    return conflicts
