"""Experiment settings files: recorded once, checked on every rerun, replaced on overwrite."""

import json

import pytest

from metaloss.experiments import SettingsMismatchError, jsonable, prepare_output


def test_prepare_output_refuses_other_settings_unless_overwritten(tmp_path):
    output = tmp_path / "run"
    kept = prepare_output(output, {"seeds": 2, "output": output, "verbose": 1}, overwrite=False)
    assert kept == {"seeds": 2}
    assert json.loads((output / "settings.json").read_text()) == {"seeds": 2}
    (output / "seed0").mkdir()
    # Same settings (verbosity does not count): accepted, and nothing is deleted.
    prepare_output(output, {"seeds": 2, "verbose": 0}, overwrite=False)
    assert (output / "seed0").is_dir()
    # An option the first run did not know about is no difference; a changed one is.
    prepare_output(output, {"seeds": 2, "new_option": 1}, overwrite=False)
    with pytest.raises(SettingsMismatchError, match=r"seeds: 2 -> 3.*overwrite"):
        prepare_output(output, {"seeds": 3}, overwrite=False)
    prepare_output(output, {"seeds": 3}, overwrite=True)
    assert not (output / "seed0").exists()
    assert json.loads((output / "settings.json").read_text()) == {"seeds": 3}


def test_jsonable_turns_paths_and_tuples_into_json_types(tmp_path):
    value = {"a": (1, tmp_path), "b": [{"c": tmp_path / "x"}]}
    assert json.loads(json.dumps(jsonable(value))) == {
        "a": [1, str(tmp_path)],
        "b": [{"c": str(tmp_path / "x")}],
    }
