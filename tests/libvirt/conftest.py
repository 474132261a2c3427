"""libvirt 9.0 running qmpdl as a domain's emulator, through a libvirtd of the tests' own
(:mod:`tests.libvirt.daemon`).

Skipped where libvirt is not installed, unless ``QMPDL_REQUIRE_LIBVIRT=1`` (``.ci/run``
sets it) makes that a failure.  libvirt starts its emulators with an environment of its
own, so the emulator is a small launcher that puts this checkout on ``sys.path`` (an
installed qmpdl is its ``qmpdl`` command itself).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import need_kvm
from tests.libvirt.daemon import PrivateLibvirtd, libvirt_missing
from tests.libvirt.domains import Domain, domain_xml

ROOT = Path(__file__).resolve().parents[2]


def need_libvirt() -> None:
    problem = libvirt_missing()
    if problem is not None:
        if os.environ.get("QMPDL_REQUIRE_LIBVIRT", "") not in ("", "0"):
            pytest.fail(f"{problem} (QMPDL_REQUIRE_LIBVIRT=1)")
        pytest.skip(problem)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("emulator") / "qmpdl"
    path.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from qmpdl.cli import main\n"
        "sys.exit(main())\n"
    )
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def libvirtd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateLibvirtd]:
    need_libvirt()
    daemon = PrivateLibvirtd(tmp_path_factory.mktemp("libvirtd"))
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(params=["sim", "kvm"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "kvm":
        need_kvm()
    return str(request.param)


class DomainFactory:
    """Defines and starts domains; each is destroyed and undefined at the end."""

    def __init__(self, libvirtd: PrivateLibvirtd, emulator: Path, workdir: Path) -> None:
        self.libvirtd = libvirtd
        self.emulator = emulator
        self.workdir = workdir
        self.domains: list[Domain] = []

    def start(self, backend: str, **options: object) -> Domain:
        name = f"qmpdl-{backend}-{uuid.uuid4().hex[:8]}"
        xml = domain_xml(name, self.emulator, backend=backend, workdir=self.workdir, **options)  # type: ignore[arg-type]
        path = self.workdir / f"{name}.xml"
        path.write_text(xml)
        domain = Domain(self.libvirtd, name)
        self.domains.append(domain)
        self.libvirtd.virsh("define", str(path))
        self.libvirtd.virsh("start", name, timeout=300)
        return domain

    def cleanup(self) -> None:
        for domain in self.domains:
            if domain.name in self.libvirtd.domains():
                self.libvirtd.virsh("destroy", domain.name, check=False)
            self.libvirtd.virsh("undefine", domain.name, check=False)


@pytest.fixture
def domains(libvirtd: PrivateLibvirtd, emulator: Path, tmp_path: Path) -> Iterator[DomainFactory]:
    factory = DomainFactory(libvirtd, emulator, tmp_path)
    try:
        yield factory
    finally:
        factory.cleanup()
