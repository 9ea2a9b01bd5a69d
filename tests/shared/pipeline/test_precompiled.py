"""The precompiled definition (cold start: unpickled, not validated): validated at build, equal to the TOML's."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.errors import DefinitionError
from shared.pipeline import definition as d
from shared.pipeline.definition import (
    DEFAULT_DEFINITION_PATH,
    compile_definition,
    compiled_bytes,
    compiled_path,
    load_compiled,
    load_definition,
    read_definition,
)


@pytest.fixture
def toml(tmp_path: Path) -> Path:
    target = tmp_path / "pipeline.toml"
    shutil.copyfile(DEFAULT_DEFINITION_PATH, target)
    return target


def test_precompiled_equals_validated(toml: Path) -> None:
    written = compile_definition(toml)
    assert written == compiled_path(toml) == toml.with_name("pipeline.toml.compiled")
    loaded = load_compiled(toml)
    validated = read_definition(toml)
    assert loaded is not None and loaded is not validated
    assert loaded == validated
    assert loaded.model_dump(mode="json") == validated.model_dump(mode="json")
    assert loaded.transition("phase3_to_phase4").gates == validated.transition("phase3_to_phase4").gates
    # the methods the hot path calls answer the same (caches are not shipped: none in the file)
    t = loaded.transition("phase2_to_phase3")
    assert loaded.normalise_processor(2, "BdlPlayerBoxscoresProcessor", None) == validated.normalise_processor(
        2, "BdlPlayerBoxscoresProcessor", None
    )
    assert loaded.target_topic(t) == validated.target_topic(validated.transition("phase2_to_phase3"))


def test_load_definition_prefers_the_precompiled_file_and_caches_it(toml: Path) -> None:
    compile_definition(toml)
    first = load_definition(toml)
    assert first == read_definition(toml)
    assert load_definition(toml) is first


def test_the_build_output_is_byte_reproducible_across_processes(toml: Path) -> None:
    """Pickling a model's own state writes its fields-set in hash order; the build must not."""
    code = "import sys, hashlib; from shared.pipeline.definition import compiled_bytes; " \
        "print(hashlib.sha256(compiled_bytes(sys.argv[1])).hexdigest())"
    digests = {
        subprocess.run(
            [sys.executable, "-c", code, str(toml)], capture_output=True, text=True, check=True,
            env={"PYTHONHASHSEED": str(seed), "PATH": "/usr/bin:/bin"}, cwd=Path(__file__).parents[3],
        ).stdout.strip()
        for seed in (1, 2, 3)
    }
    assert len(digests) == 1, digests


def test_an_edited_toml_is_validated_again_not_served_stale(toml: Path) -> None:
    compile_definition(toml)
    toml.write_text(toml.read_text().replace('stuck_after_minutes = 60', 'stuck_after_minutes = 61', 1))
    assert load_compiled(toml) is None  # the hash does not match: the caller validates the TOML
    assert load_definition(toml) == read_definition(toml)


def test_a_file_from_another_pydantic_or_python_is_ignored(toml: Path) -> None:
    stamp, definition = pickle.loads(compiled_bytes(toml))
    for other in ({**stamp, "pydantic": "1.0"}, {**stamp, "python": [2, 7]}, {**stamp, "format": 0}):
        compiled_path(toml).write_bytes(pickle.dumps((other, definition)))
        assert load_compiled(toml) is None
    compiled_path(toml).write_bytes(b"not a pickle")
    assert load_compiled(toml) is None
    assert load_compiled(toml.with_name("absent.toml")) is None


def test_an_invalid_definition_fails_the_build_with_the_usual_message(toml: Path) -> None:
    toml.write_text(toml.read_text().replace('timezone = "America/New_York"', 'timezone = "Mars/Olympus"', 1))
    with pytest.raises(DefinitionError) as build_error:
        compile_definition(toml)
    with pytest.raises(DefinitionError) as load_error:
        read_definition(toml)
    assert str(build_error.value) == str(load_error.value)
    assert not compiled_path(toml).exists()


def test_the_packaged_definition_builds_no_validator_when_loaded_precompiled(toml: Path) -> None:
    """Loading the precompiled form validates nothing: the models' deferred schemas stay unbuilt."""
    compile_definition(toml)
    code = (
        "import sys; from shared.pipeline import definition as d; x = d.load_compiled(sys.argv[1]); "
        "print(x is not None, d.PipelineDefinition.__pydantic_complete__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(toml)], capture_output=True, text=True, check=True,
        cwd=Path(__file__).parents[3],
    ).stdout.split()
    assert out == ["True", "False"], out
    assert d.COMPILED_SUFFIX == ".compiled"
