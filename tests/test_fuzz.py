"""scripts.fuzz: a few small random cores in Amaranth's simulator, reproducible seeds, a failure's
replay command, argument errors."""

import json
from dataclasses import asdict

import pytest

from scripts import fuzz


def test_small_random_cores_pass(tmp_path, capsys):
    out = tmp_path / "fuzz.json"
    assert fuzz.main(["--cores", "4", "--seed", "5", "--max-width", "6", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["cores"] == 4 and data["failed"] == 0 and data["sim"] == "amaranth"
    text = capsys.readouterr().out
    for k, record in enumerate(data["records"]):
        assert record["index"] == k and record["core_seed"] == fuzz.core_seed(5, k)
        assert record["result"] == "ok" and record["errors"] == record["timing_problems"] == []
        assert record["latency"] == record["latency_model"]  # the timing run's first job
        assert f"seed {record['core_seed']:>10}" in text
    assert "4 cores, 0 failed" in text


def test_seeds_reproduce_configurations(tmp_path):
    # pinned: a run's cores are the same on every machine and in every later version
    assert fuzz.core_seed(1, 0) == 1835504127
    cfg = fuzz.draw_config(1835504127)
    assert (cfg.shape, cfg.act_fmt, cfg.lanes) == ("30-40-3", (4, 1), (15, 5, 42, 16))
    seeds = [fuzz.core_seed(3, i) for i in range(20)]
    assert len(set(seeds)) == 20
    assert [asdict(fuzz.draw_config(s)) for s in seeds] == \
        [asdict(fuzz.draw_config(s)) for s in seeds]
    for s in seeds:
        cfg = fuzz.draw_config(s, max_width=6)
        assert 1 <= len(cfg.hidden) <= 3 and max(cfg.input_dim, *cfg.hidden) <= 6
        assert 4 <= len(cfg.modes) <= 10 and cfg.mult_width in fuzz.MULT_WIDTHS
        assert all(4 <= w <= 16 and 0 <= f < w for w, f in (cfg.act_fmt, cfg.w_fmt,
                                                             cfg.input_fmt))
    # --only I replays core I of the run: the same seed, the same configuration
    out = tmp_path / "one.json"
    assert fuzz.main(["--seed", "3", "--only", "7", "--max-width", "6", "--out", str(out)]) == 0
    (record,) = json.loads(out.read_text())["records"]
    assert record["core_seed"] == seeds[7]
    assert record["config"] == json.loads(json.dumps(asdict(fuzz.draw_config(seeds[7],
                                                                             max_width=6))))


def test_failure_exits_1_with_replay_command(tmp_path, monkeypatch, capsys):
    def failing(index, seed, sim, max_width, out_dir):
        cfg = fuzz.draw_config(seed, max_width=max_width)
        return {"index": index, "core_seed": seed, "config": asdict(cfg),
                "summary": cfg.describe(), "errors": ["job 1 (encode): 2 mismatches"],
                "timing_problems": [], "result": "mismatch", "seconds": 0.0}

    monkeypatch.setattr(fuzz, "run_core_check", failing)
    out = tmp_path / "f.json"
    assert fuzz.main(["--cores", "2", "--seed", "9", "--max-width", "6", "--out", str(out)]) == 1
    text = capsys.readouterr().out
    assert "python -m scripts.fuzz --sim amaranth --max-width 6 --seed 9 --only 1" in text
    assert "job 1 (encode): 2 mismatches" in text
    assert json.loads(out.read_text())["failed"] == 2


@pytest.mark.parametrize("argv,message", [
    (["--cores", "0"], "--cores: must be >= 1, not 0"),
    (["--seed", "-3"], "--seed: must be >= 0, not -3"),
    (["--jobs", "two"], "--jobs: expected an integer, not 'two'"),
    (["--sim", "modelsim"], "--sim: invalid choice: 'modelsim'"),
    (["--only", "1", "--core-seed", "5"], "not allowed with argument"),
])
def test_bad_arguments_are_clear(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        fuzz.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
