"""Shared fixtures of the stack smoke tests.

The tests run against the stack started by `bash stack/stack.sh up`, whose endpoints
are in the env file it writes (KEY=VALUE lines; path from $HOURGLASS_STACK_ENV,
default ~/.cache/hourglass/stack.env). A missing env file or key is a FAILURE, not a
skip: these tests exist to prove the stack works.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

DEFAULT_ENV_FILE = Path.home() / ".cache" / "hourglass" / "stack.env"


def read_env_file(path):
    env = {}
    for raw in Path(path).read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        env[key.strip()] = value.strip()
    return env


class StackEnv(dict):
    """The env file's keys; `env.require("KEY")` fails the test when KEY is absent."""

    path = None

    def require(self, key):
        value = self.get(key, "")
        if not value:
            pytest.fail(
                f"{key} is missing or empty in the stack env file {self.path}; "
                "run `bash stack/stack.sh up` (with the component that writes it in "
                "STACK_INSTALL) first",
                pytrace=False,
            )
        return value


@pytest.fixture(scope="session")
def stack_env():
    path = Path(os.environ.get("HOURGLASS_STACK_ENV", DEFAULT_ENV_FILE)).expanduser()
    if not path.is_file():
        pytest.fail(
            f"stack env file {path} not found: run `bash stack/stack.sh up` first "
            "(or point HOURGLASS_STACK_ENV at the env file)",
            pytrace=False,
        )
    env = StackEnv(read_env_file(path))
    env.path = path
    return env


@pytest.fixture(scope="module")
def spark(stack_env):
    """A local[2] SparkSession with the Kafka connector jars, reused by a module's tests.

    Kept small for a shared 2-core machine: 512m driver, 2 shuffle partitions, no UI.
    """
    jars = stack_env.require("HOURGLASS_SPARK_KAFKA_JARS")
    missing = [j for j in jars.split(",") if not os.path.isfile(j)]
    if missing:
        pytest.fail(f"HOURGLASS_SPARK_KAFKA_JARS names missing jars: {missing}", pytrace=False)

    from pyspark.sql import SparkSession

    # Python workers (if a test uses UDFs) must be this interpreter (the venv's).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    scratch = tempfile.mkdtemp(prefix="hourglass-spark-smoke-")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("hourglass-stack-smoke")
        .config("spark.jars", jars)
        .config("spark.driver.memory", "512m")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.local.dir", os.path.join(scratch, "local"))
        .config("spark.sql.warehouse.dir", os.path.join(scratch, "warehouse"))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("WARN")
    try:
        yield session
    finally:
        session.stop()
        shutil.rmtree(scratch, ignore_errors=True)
