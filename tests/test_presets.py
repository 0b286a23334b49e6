"""hw.presets: one registry of the presets' default lanes, matching the model's presets."""

import pytest

from hw.plan import normalize_lanes, parse_lanes
from hw.presets import DEFAULT_LANES, default_lanes, preset_lanes_help
from model.random_artifact import random_artifact
from model.vae import PRESETS


def test_every_model_preset_has_default_lanes():
    assert set(DEFAULT_LANES) == set(PRESETS)


@pytest.mark.parametrize("preset", sorted(DEFAULT_LANES))
def test_default_lanes_fit_the_preset(preset):
    lanes = normalize_lanes(random_artifact(preset), default_lanes(preset))
    assert len(lanes) == 4 and min(lanes) >= 1


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(ValueError, match="no default lanes for preset 'cifar'; known presets: "
                                         "iris, mnist"):
        default_lanes("cifar")


def test_help_spells_lanes_as_the_command_line_reads_them():
    spelled = dict(item.split(" ") for item in preset_lanes_help().split(", "))
    for preset, lanes in DEFAULT_LANES.items():
        assert parse_lanes(spelled[preset]) == (lanes if isinstance(lanes, int) else list(lanes))
