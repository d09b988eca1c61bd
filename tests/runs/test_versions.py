"""hpcgan/runs/versions.py: the keys of a start event's versions, what a package that is not installed
reads, the Python version and the platform, read from metadata without importing the packages."""

import platform
import subprocess
import sys
from importlib import metadata

from hpcgan.runs import versions
from hpcgan.runs.versions import PACKAGES, software_versions


def test_python_every_package_and_the_platform_are_keys():
    assert list(software_versions()) == ["python", *PACKAGES, "platform"]


def test_python_is_this_interpreters_version():
    assert software_versions()["python"] == platform.python_version()


def test_an_installed_package_reads_its_metadata_version():
    import torch

    found = software_versions()
    assert found["torch"] == metadata.version("torch") == torch.__version__
    assert found["numpy"] == metadata.version("numpy")


def test_a_package_that_is_not_installed_reads_not_installed(monkeypatch):
    monkeypatch.setattr(versions, "PACKAGES", ("numpy", "hpcgan-no-such-distribution"))
    found = software_versions()
    assert found["hpcgan-no-such-distribution"] == "not installed"
    assert found["numpy"] == metadata.version("numpy")


def test_the_platform_names_system_release_and_machine():
    expected = f"{platform.system()} {platform.release()} ({platform.machine()})"
    assert software_versions()["platform"] == expected


def test_the_versions_are_read_without_importing_the_packages():
    code = (
        "import sys; from hpcgan.runs.versions import software_versions; v = software_versions(); "
        "print(v['torch'] != 'not installed', sorted({'torch', 'numpy', 'accelerate'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "[]"]
