"""Tests for shared.env: environment validation at function start."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shared.env import PROJECT_ENV_VARS, project_id, read_env, require_env
from shared.errors import ConfigError


def test_require_env_returns_values_in_order() -> None:
    env = {"B": "2", "A": "1", "OTHER": "x"}
    assert require_env(["A", "B"], env) == {"A": "1", "B": "2"}
    assert list(require_env(["B", "A"], env)) == ["B", "A"]


def test_require_env_lists_every_missing_or_empty_name_at_once() -> None:
    env = {"PRESENT": "ok", "EMPTY": "", "BLANK": "  \n"}
    with pytest.raises(ConfigError) as info:
        require_env(["MISSING_1", "PRESENT", "EMPTY", "BLANK", "MISSING_2"], env)
    assert info.value.context["missing"] == ["MISSING_1", "EMPTY", "BLANK", "MISSING_2"]
    message = str(info.value)
    for name in ("MISSING_1", "EMPTY", "BLANK", "MISSING_2"):
        assert name in message
    assert "PRESENT" not in message


def test_require_env_strips_values() -> None:
    assert require_env(["SECRET"], {"SECRET": "abc\n"}) == {"SECRET": "abc"}


def test_require_env_ignores_duplicate_names() -> None:
    with pytest.raises(ConfigError) as info:
        require_env(["X", "X"], {})
    assert info.value.context["missing"] == ["X"]


def test_require_env_with_no_names_is_empty() -> None:
    assert require_env([], {}) == {}


def test_require_env_rejects_a_single_string() -> None:
    with pytest.raises(TypeError, match="sequence of variable names"):
        require_env("PROJECT", {"PROJECT": "x"})


def test_require_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHASECHAIN_TEST_VAR", "value")
    monkeypatch.delenv("PHASECHAIN_TEST_MISSING", raising=False)
    assert require_env(["PHASECHAIN_TEST_VAR"]) == {"PHASECHAIN_TEST_VAR": "value"}
    with pytest.raises(ConfigError, match="PHASECHAIN_TEST_MISSING"):
        require_env(["PHASECHAIN_TEST_VAR", "PHASECHAIN_TEST_MISSING"])


def _positive(value: str) -> int:
    number = int(value)
    if number <= 0:
        raise ValueError(f"must be positive, got {number}")
    return number


def test_read_env_parses_values() -> None:
    env = {"MAX_AGE": " 720 ", "RATIO": "0.8", "NAME": "nightly"}
    assert read_env({"MAX_AGE": _positive, "RATIO": float, "NAME": str}, env) == {
        "MAX_AGE": 720,
        "RATIO": 0.8,
        "NAME": "nightly",
    }


def test_read_env_reports_missing_and_invalid_together() -> None:
    env = {"MAX_AGE": "-5", "RATIO": "high", "NAME": "ok", "EMPTY": ""}
    spec: dict[str, Callable[[str], object]] = {
        "MAX_AGE": _positive,
        "RATIO": float,
        "NAME": str,
        "EMPTY": str,
        "GONE": str,
    }
    with pytest.raises(ConfigError) as info:
        read_env(spec, env)
    error = info.value
    assert error.context["missing"] == ["EMPTY", "GONE"]
    assert set(error.context["invalid"]) == {"MAX_AGE", "RATIO"}
    assert "must be positive" in error.context["invalid"]["MAX_AGE"]
    assert "ValueError" in error.context["invalid"]["RATIO"]
    for name in ("MAX_AGE", "RATIO", "EMPTY", "GONE"):
        assert name in error.message
    assert "NAME" not in error.message


def test_read_env_does_not_swallow_unexpected_parser_bugs() -> None:
    def broken(value: str) -> str:
        raise KeyError(value)

    with pytest.raises(KeyError):
        read_env({"X": broken}, {"X": "1"})


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"GOOGLE_CLOUD_PROJECT": "a", "GCP_PROJECT": "b", "GCLOUD_PROJECT": "c"}, "a"),
        ({"GCP_PROJECT": "b", "GCLOUD_PROJECT": "c"}, "b"),
        ({"GCLOUD_PROJECT": "c"}, "c"),
        ({"GOOGLE_CLOUD_PROJECT": "", "GCP_PROJECT": " ", "GCLOUD_PROJECT": "c"}, "c"),
        ({"GOOGLE_CLOUD_PROJECT": " nba-props\n"}, "nba-props"),
    ],
)
def test_project_id_precedence(env: dict[str, str], expected: str) -> None:
    assert project_id(env) == expected


def test_project_id_missing_names_every_variable() -> None:
    with pytest.raises(ConfigError) as info:
        project_id({"OTHER": "x", "GOOGLE_CLOUD_PROJECT": ""})
    for name in PROJECT_ENV_VARS:
        assert name in info.value.message
    assert PROJECT_ENV_VARS == ("GOOGLE_CLOUD_PROJECT", "GCP_PROJECT", "GCLOUD_PROJECT")


def test_project_id_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROJECT_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GCP_PROJECT", "from-os")
    assert project_id() == "from-os"
