"""FileRoots: client-named files stay inside the configured folders, whatever the spelling."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from learnloop.core.errors import InvalidInput
from learnloop.core.paths import FileRoots


@pytest.fixture
def layout(tmp_path: Path) -> tuple[FileRoots, Path, Path]:
    root = tmp_path / "imports"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "ok.csv").write_text("a,b\n1,2\n")
    outside = tmp_path / "secret.csv"
    outside.write_text("password\nhunter2\n")
    return FileRoots([root]), root, outside


def refused(roots: FileRoots, raw: str) -> str:
    with pytest.raises(InvalidInput) as e:
        roots.resolve(raw, "payload.path")
    assert e.value.issues[0].loc == "payload.path"
    return e.value.issues[0].message


def test_relative_and_absolute_paths_inside_a_root_resolve(
    layout: tuple[FileRoots, Path, Path],
) -> None:
    roots, root, _ = layout
    real = (root / "sub" / "ok.csv").resolve()
    assert roots.resolve("sub/ok.csv") == real
    assert roots.resolve(str(root / "sub" / "ok.csv")) == real
    assert roots.resolve("sub/../sub/./ok.csv") == real  # `..` that stays inside is fine
    assert roots.display(real) == "sub/ok.csv"


def test_every_way_out_is_refused_without_naming_server_paths(
    layout: tuple[FileRoots, Path, Path],
) -> None:
    roots, root, outside = layout
    (root / "link.csv").symlink_to(outside)  # a link inside pointing out
    (root / "hop").symlink_to(outside.parent)  # a folder link: hop/secret.csv is outside
    (root / "loop").symlink_to(root / "loop")
    cases = {
        str(outside): "outside the import folders",
        "../secret.csv": "outside the import folders",
        "sub/../../secret.csv": "outside the import folders",
        "link.csv": "outside the import folders",
        "hop/secret.csv": "outside the import folders",
        "%2e%2e/secret.csv": "no such file",  # taken literally: a missing file name
        "..%2fsecret.csv": "no such file",
        "%2e%2e%2fsecret.csv": "no such file",
        f"file://{outside}": "not a URL",
        "sub/ok.csv\x00.png": "control characters",
        "": "1 to 1024 characters",
        "x" * 2000: "1 to 1024 characters",
        "sub": "not a regular file",
        "loop": "cannot be opened",
        "~/../../etc/passwd": "outside the import folders",
    }
    for raw, expected in cases.items():
        message = refused(roots, raw)
        assert expected in message, (raw, message)
        assert str(root) not in message and str(outside.parent) not in message.replace(raw, "")


def test_a_second_root_and_special_files(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    (second / "data.csv").write_text("x\n1\n")
    os.mkfifo(second / "pipe.csv")
    roots = FileRoots([first, second])
    assert roots.resolve(str(second / "data.csv")) == (second / "data.csv").resolve()
    assert "no such file" in refused(roots, "data.csv")  # relative paths start at the first
    assert "not a regular file" in refused(roots, str(second / "pipe.csv"))
