"""The demo's table on hand-made cells: every cell and claimed ordering, the orderings as paired differences of the
same seeds (checked against a t-table by hand), the resolved flag and verdict from the interval, the encoders said in
the header."""

import math

import pytest

from anytouch_policy.demo.config import VARIANTS, DemoConfig, Init, Variant
from anytouch_policy.demo.run import header_lines, row_labels
from anytouch_policy.demo.table import Cell, claimed_orderings, orderings, paired, render_markdown, render_text
from anytouch_policy.errors import ConfigError
from anytouch_policy.train import TrainMode

SEEDS = (11, 12, 13, 14, 15)
T_975_4 = 2.776445  # Student t, 0.975 quantile, 4 degrees of freedom (printed tables)


def cell(errors, timeouts=0, seeds=SEEDS):
    return Cell(seeds=tuple(seeds), errors=tuple(errors), timeouts=timeouts)


def hand_made() -> dict[str, Cell]:
    """Six cells on the same five seeds; pretrained-finetune-dynamic is 1..5 g below pretrained-finetune-static."""
    base = [2.0, 3.0, 4.0, 5.0, 6.0]
    shifts = {"random-finetune-dynamic": [5.0, 5.2, 4.8, 5.1, 4.9], "random-frozen-dynamic": [3.0, 2.5, 3.5, 3.0, 3.0],
              "pretrained-finetune-static": [5.0, 5.0, 5.0, 5.0, 5.0],
              "pretrained-frozen-static": [1.0, 4.0, 0.1, 0.2, 9.0],
              "pretrained-finetune-dynamic": [4.0, 3.0, 2.0, 1.0, 0.0],
              "pretrained-frozen-dynamic": [0.5, 0.7, 0.6, 0.4, 0.8]}
    return {name: cell([b + s for b, s in zip(base, shift, strict=True)], timeouts=1 if "static" in name else 0)
            for name, shift in shifts.items()}


def test_every_cell_and_claimed_ordering_is_there():
    assert [v.name for v in VARIANTS] == ["random-finetune-dynamic", "random-frozen-dynamic",
                                          "pretrained-finetune-static", "pretrained-frozen-static",
                                          "pretrained-finetune-dynamic", "pretrained-frozen-dynamic"]
    pairs = {(claim, lower.name, higher.name) for claim, lower, higher in claimed_orderings()}
    assert pairs == {
        ("dynamic < static (fine-tune)", "pretrained-finetune-dynamic", "pretrained-finetune-static"),
        ("dynamic < static (freeze)", "pretrained-frozen-dynamic", "pretrained-frozen-static"),
        ("pretrained < random (fine-tune)", "pretrained-finetune-dynamic", "random-finetune-dynamic"),
        ("pretrained < random (freeze)", "pretrained-frozen-dynamic", "random-frozen-dynamic"),
        ("fine-tune <= freeze (random-dynamic)", "random-finetune-dynamic", "random-frozen-dynamic"),
        ("fine-tune <= freeze (pretrained-static)", "pretrained-finetune-static", "pretrained-frozen-static"),
        ("fine-tune <= freeze (pretrained-dynamic)", "pretrained-finetune-dynamic", "pretrained-frozen-dynamic"),
    }


def test_an_ordering_is_the_paired_difference_checked_by_hand():
    cells = hand_made()
    by_claim = {o.claim: o for o in orderings(cells)}
    # dynamic - static in the fine-tune column, seed by seed: [-1, -2, -3, -4, -5]: mean -3, sd sqrt(2.5)
    d = by_claim["dynamic < static (fine-tune)"].difference
    half = T_975_4 * math.sqrt(2.5) / math.sqrt(5)
    assert (d.mean, d.n) == (-3.0, 5)
    assert (d.low, d.high) == (pytest.approx(-3.0 - half, rel=1e-6), pytest.approx(-3.0 + half, rel=1e-6))
    assert by_claim["dynamic < static (fine-tune)"].verdict == "resolved, holds"


@pytest.mark.parametrize(("claim", "verdict"), [
    ("pretrained < random (freeze)", "resolved, holds"),  # 1.8-2.9 g below on every seed
    ("dynamic < static (freeze)", "not resolved"),  # differences -8.2 .. +0.5 g
    ("fine-tune <= freeze (random-dynamic)", "resolved, reversed"),  # fine-tune 2 g worse on every seed
])
def test_resolved_and_verdict_follow_the_interval(claim, verdict):
    ordering = {o.claim: o for o in orderings(hand_made())}[claim]
    d = ordering.difference
    assert ordering.verdict == verdict
    assert ordering.resolved == (d.low > 0 or d.high < 0) == (verdict != "not resolved")
    assert ordering.to_dict()["resolved"] == ordering.resolved and ordering.to_dict()["difference_g"]["low"] == d.low


def test_cells_on_different_seeds_cannot_be_paired():
    cells = hand_made()
    cells["pretrained-frozen-static"] = cell([1, 2, 3, 4, 5], seeds=(11, 12, 13, 14, 99))
    with pytest.raises(ConfigError, match="pretrained-frozen-dynamic and pretrained-frozen-static were evaluated on "
                                          "different seeds"):
        paired(cells, "pretrained-frozen-dynamic", "pretrained-frozen-static")


def test_a_cell_shows_its_interval_and_timeouts():
    c = cell([1.0, 2.0, 3.0, 4.0, 5.0], timeouts=2)
    assert c.text() == f"3.00 ± {T_975_4 * math.sqrt(2.5) / math.sqrt(5):.2f} (2 timeouts)"
    d = c.to_dict()
    assert (d["mean_g"], d["episodes"], d["timeouts"], d["seeds"]) == (3.0, 5, 2, list(SEEDS))
    assert d["ci_low_g"] == pytest.approx(3.0 - d["half_width_g"])


def test_the_rendered_tables_hold_every_row_ordering_and_the_header(tmp_path):
    config = DemoConfig(out=tmp_path / "run", preset="anytouch-tiny")
    cells, header = hand_made(), header_lines(config)
    ordered = orderings(cells)
    md = render_markdown(cells, row_labels(config), expert=cell([0.5] * 5), title="T", header=header,
                         ordered=ordered, notes=[])
    text = render_text(cells, row_labels(config), expert=None, header=header, ordered=ordered)
    for out in (md, text):
        assert all(o.text() in out for o in ordered)
        assert "NO PRETRAINED ENCODER" in out  # without a bundle, said above the table
        assert out.count("NOT pretrained (anytouch-tiny, random init)") == 2
        assert cells["pretrained-frozen-static"].text() in out and "(1 timeout)" in out
    assert "| random init (anytouch-tiny, no touch pretraining) | ✓ | " in md


def test_without_a_pretrained_encoder_the_pretrained_dynamic_cells_are_the_random_rows_runs(tmp_path):
    config = DemoConfig(out=tmp_path / "run", preset="anytouch-tiny")
    runs = {v.name: config.same_run(v).name for v in VARIANTS}
    assert runs["pretrained-finetune-dynamic"] == "random-finetune-dynamic"
    assert runs["pretrained-frozen-dynamic"] == "random-frozen-dynamic"
    assert runs["pretrained-frozen-static"] == "pretrained-frozen-static"


def test_with_a_pretrained_encoder_every_cell_is_its_own_run(tmp_path, tiny_encoder):
    config = DemoConfig(out=tmp_path / "run", preset="anytouch-tiny", encoder=tiny_encoder)
    assert all(config.same_run(v) == v for v in VARIANTS)
    assert not any("NO PRETRAINED" in line for line in header_lines(config))
    assert f"pretrained = encoder bundle {tiny_encoder}" in header_lines(config)[0]
    other = DemoConfig(out=tmp_path / "run", preset="anytouch-small", encoder=tiny_encoder)
    assert "differ in architecture" in header_lines(other)[1]
    assert Variant(Init.PRETRAINED, TrainMode.FROZEN, 1).row == "pretrained-static"


def test_the_default_encoder_is_the_shipped_bundle_when_it_is_there(tmp_path, monkeypatch):
    from anytouch_policy.cli.demo import encoder_choice
    from anytouch_policy.model import bundle

    shipped = tmp_path / "anytouch-small"
    monkeypatch.setattr(bundle, "SHIPPED_ENCODER", shipped)
    assert bundle.shipped_encoder() is None and encoder_choice(None, quick=False) is None
    shipped.mkdir()
    (shipped / "config.json").write_text("{}")
    assert bundle.shipped_encoder() == shipped == encoder_choice(None, quick=False)
    assert encoder_choice("none", quick=False) is None  # every row from the random init
    assert encoder_choice(None, quick=True) is None  # the quick run's random row is the tiny preset
    assert str(encoder_choice("models/x", quick=True)) == "models/x"
