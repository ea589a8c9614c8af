"""Helpers for the serving and deploy tests: a small trained project and AWS environments on moto."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import boto3
import pytest
import yaml

from conftest import BASE_CONFIG
from mlops.config import Config, load_config
from mlops.data import load_training
from mlops.stages.datagen import generate
from mlops.registry import Registry
from mlops.contract import infer_contract, write_contract
from mlops.stages.train import train

# The repository variables a user sets from the foundation stack's outputs (make bootstrap prints them).
ROLES = {"AWS_ROLE_ARN_STAGING": "arn:aws:iam::123456789012:role/loan-default-github-deploy-staging",
         "AWS_ROLE_ARN_PROD": "arn:aws:iam::123456789012:role/loan-default-github-deploy-prod",
         "AWS_ROLE_ARN_READ": "arn:aws:iam::123456789012:role/loan-default-github-read"}

AWS_VARIABLES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN")


def write_project(root: Path, registry_uri: str = ".registry", **deploy) -> Path:
    """A binary loan project (800 rows, logistic regression) with its contract; returns mlops.yaml."""
    root.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(BASE_CONFIG)
    config["registry"] = {"uri": registry_uri}
    config["deploy"] = {"smoke_rows": 10, **deploy}
    path = root / "mlops.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    data = root / "data" / "train.csv"
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        generate(800, seed=3).to_csv(data, index=False)
        loaded = load_config(path)
        write_contract(infer_contract(loaded, load_training(loaded).frame), loaded.resolve("schema.yaml"))
    return path


def train_version(config: Config, sha: str, monkeypatch) -> str:
    """Train one model version whose id ends with ``sha`` (so two trainings in a second differ)."""
    monkeypatch.setenv("MLOPS_GIT_SHA", sha)
    version, _ = train(config, load_training(config))
    return version


def use_moto(monkeypatch, url: str) -> None:
    """Point boto3 at the test's moto_server, with dummy credentials, as CI's credential stand-in does."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def no_aws(monkeypatch, tmp_path: Path) -> None:
    """No AWS credentials anywhere: no variables, no config files, no instance metadata lookups."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    assert not any(name in os.environ for name in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE"))


def served(repo: Path, url: str, environment: str = "prod") -> tuple[dict | None, str]:
    """(the registry's ``environment`` pointer, the stack's SSM model-version parameter) as moto holds them."""
    with pytest.MonkeyPatch.context() as patch:
        use_moto(patch, url)
        config = load_config(repo / "mlops.yaml")
        pointer = Registry.from_config(config).pointer(environment)
        name = f"/{config.project}/{environment}/model-version"
        parameter = boto3.client("ssm").get_parameter(Name=name)["Parameter"]["Value"]
    return pointer, parameter
