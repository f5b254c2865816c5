"""The Draw page through AppTest: an injected drawing, bad input, a correction and its undo.

Runs on the generated dataset (tests/conftest.py); two tiny runs (a CNN and
an MLP) are trained once per module and copied into each test's empty
checkpoints folder. A drawing is injected the way the canvas component
reports one: ``session_state[<canvas key>] = {"drawing": {"raw": ..., "data": <PNG data URL>}}``.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from mnist_core import handwriting, online, runs
from mnist_core.config import RunConfig
from tests.support.apptest import metrics, no_exception, open_app
from tests.support.apptest import page_text as texts
from tests.support.drawing import canvas_png, inject, png
from tests.support.drawing import upload as upload_file
from tests.support.saved import copy_runs, trained_runs
from tests.support.synthetic import render_digit

PAGE = "pages/draw.py"
TINY_CNN = RunConfig(model="cnn", cnn_channels=(4, 8), hidden=(16,), epochs=3, batch_size=50, lr=3e-3)
TINY_MLP = RunConfig(hidden=(32,), epochs=3, batch_size=50, lr=3e-3)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, synthetic_data_dir: Path) -> Path:
    configs = {"tiny mlp": TINY_MLP, "tiny cnn": TINY_CNN}
    return trained_runs(tmp_path_factory.mktemp("draw-runs"), synthetic_data_dir, configs)


@pytest.fixture
def with_runs(trained: Path, runs_dir: Path) -> list[runs.RunInfo]:
    return copy_runs(trained, runs_dir)


def open_draw(app_path: Path) -> AppTest:
    return open_app(app_path, PAGE, timeout=60)


def test_without_runs_the_page_points_to_the_quick_model(app_path: Path) -> None:
    at = open_draw(app_path)
    no_exception(at)
    assert "No saved model yet" in texts(at)
    assert [link.proto.page for link in at.get("page_link")] == [""]  # Home is the default page: "/"


def test_best_run_is_picked_and_the_page_asks_for_a_drawing(app_path: Path, with_runs) -> None:
    at = open_draw(app_path)
    no_exception(at)
    best = runs.best_run()
    assert at.selectbox(key="draw_run").value == best.id
    assert "Draw a digit on the canvas" in texts(at)
    assert "Prediction" not in metrics(at)


def test_a_link_with_a_run_id_selects_that_run(app_path: Path, with_runs) -> None:
    other = next(r for r in with_runs if r.id != runs.best_run().id)
    at = AppTest.from_file(str(app_path), default_timeout=60)
    at.switch_page(PAGE)
    at.query_params["run"] = other.id
    at = at.run()
    no_exception(at)
    assert at.selectbox(key="draw_run").value == other.id


def test_the_url_names_the_model_shown_so_a_reload_opens_it_again(app_path: Path, with_runs) -> None:
    at = open_draw(app_path)
    best = runs.best_run().id
    assert at.query_params["run"] == best
    other = next(r.id for r in with_runs if r.id != best)
    at.selectbox(key="draw_run").set_value(other).run()
    no_exception(at)
    # The URL it wrote before (the best run) did not undo the pick; it now names the picked one.
    assert at.selectbox(key="draw_run").value == other and at.query_params["run"] == other
    reloaded = AppTest.from_file(str(app_path), default_timeout=60)  # a new session: a reload
    reloaded.switch_page(PAGE)
    reloaded.query_params["run"] = other
    assert reloaded.run().selectbox(key="draw_run").value == other


def test_injected_drawing_shows_bars_label_confidence_image_and_time(app_path: Path, with_runs) -> None:
    at = inject(open_draw(app_path), canvas_png(3))
    no_exception(at)
    shown = metrics(at)
    assert shown["Prediction"] in [str(d) for d in range(10)]
    assert shown["Confidence"].endswith("%")
    assert shown["Inference time"].endswith(" ms")
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    assert '"type":"bar"' in charts[0].proto.spec.replace(" ", "")
    captions = [caption for image in at.image for caption in image.captions]
    assert "What the model sees (28x28)" in captions
    method = "occlusion" if runs.best_run().config.model == "cnn" else "input gradients"
    assert any(c.startswith(f"Why {shown['Prediction']}: {method}") for c in captions), captions
    assert not at.warning


def test_clear_gives_a_clean_canvas(app_path: Path, with_runs) -> None:
    at = inject(open_draw(app_path), canvas_png(3))
    assert "Prediction" in metrics(at)
    at = next(b for b in at.button if b.label == "Clear").click().run()
    no_exception(at)
    assert "Prediction" not in metrics(at)
    assert "Draw a digit on the canvas" in texts(at)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (png(np.zeros((280, 280, 4), np.uint8)), "no digit to read"),  # reset / fully erased canvas
        (png(np.pad(np.full((4, 4, 4), 255, np.uint8), ((138, 138), (138, 138), (0, 0)))), "too small"),
        (png(np.where((((np.indices((280, 280, 4)) - 140)[:2] ** 2).sum(0) < 100), 255, 0).astype(np.uint8)),
         "does not look like a digit"),  # a single tap: a dot of the brush's width (issue 21 item 3)
        (png(np.pad(np.full((16, 6, 4), 255, np.uint8), ((132, 132), (137, 137), (0, 0)))), "too small"),
    ],  # the last: a flick of the thinnest pen (6 px, dragged 10 px down), once read as a digit
    ids=["erased", "tiny-scribble", "tap", "flick"],
)
def test_blank_or_tiny_drawing_gives_a_message_not_a_prediction(
    app_path: Path, with_runs, data, message
) -> None:
    at = inject(open_draw(app_path), data)
    no_exception(at)
    assert message in "\n".join(w.value for w in at.warning)
    assert "Prediction" not in metrics(at)
    assert not at.get("plotly_chart")


def test_a_blank_upload_is_told_about_photos_and_a_blank_drawing_about_the_canvas(
    app_path: Path, with_runs
) -> None:
    """An upload of a blank page was told "Draw a digit first"."""
    blank = png(np.full((300, 400), 235, np.uint8))  # an evenly lit sheet of paper
    drawn = inject(open_draw(app_path), png(np.zeros((280, 280, 4), np.uint8)))
    uploaded = upload_file(open_draw(app_path), "page.png", blank)
    for at in (drawn, uploaded):
        no_exception(at)
        assert "Prediction" not in metrics(at)
    said_drawn = "\n".join(w.value for w in drawn.warning)
    said_uploaded = "\n".join(w.value for w in uploaded.warning)
    assert "no digit to read" in said_drawn and "Draw a digit first." in said_drawn
    assert "photo" not in said_drawn
    assert "no digit to read" in said_uploaded and "Upload a sharper, evenly lit photo" in said_uploaded
    assert "Draw" not in said_uploaded and "canvas" not in said_uploaded


def two_digits_png() -> bytes:
    """Dark ink on white paper: a 4 and a 7 side by side."""
    image = Image.new("L", (600, 300), 255)
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    draw.line([(80, 40), (50, 180), (200, 180)], fill=0, width=14)
    draw.line([(160, 60), (160, 260)], fill=0, width=14)
    draw.line([(330, 50), (520, 50), (400, 260)], fill=0, width=14)
    return png(np.asarray(image))


def _encoded(kind: str) -> bytes:
    """A drawn 7 saved as ``kind`` (GIF, WEBP): a format the uploader lets through to be refused by name."""
    import io

    from PIL import ImageDraw

    image = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(image).line([(40, 40), (160, 40), (90, 180)], fill=0, width=16)
    buf = io.BytesIO()
    image.save(buf, kind)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("digit.png", b"this is not an image", "not a PNG or JPEG"),
        ("empty.png", b"", "empty (0 bytes)"),
        ("number.png", two_digits_png(), "digits side by side"),
        ("seven.gif", _encoded("GIF"), "'seven.gif' is a GIF image: only PNG and JPEG are read"),
        ("seven.webp", _encoded("WEBP"), "'seven.webp' is a WebP image: only PNG and JPEG are read"),
    ],
    ids=["garbage", "0-bytes", "several-digits", "gif", "webp"],
)
def test_bad_uploads_give_a_clear_message(
    app_path: Path, with_runs, name: str, content: bytes, message
) -> None:
    at = open_draw(app_path)
    at = upload_file(at, name, content)
    no_exception(at)
    assert message in "\n".join(w.value for w in at.warning)
    assert "Prediction" not in metrics(at)


def test_a_huge_upload_is_read_without_trouble(app_path: Path, with_runs) -> None:
    from PIL import ImageDraw

    image = Image.new("L", (8000, 8000), 255)
    ImageDraw.Draw(image).line([(2000, 1500), (6000, 1500), (3500, 6800)], fill=0, width=500)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    at = open_draw(app_path)
    at = upload_file(at, "huge.png", buffer.getvalue())
    no_exception(at)
    assert "Prediction" in metrics(at)
    assert "reading the upload huge.png" in texts(at)


def test_uploaded_photo_is_read(app_path: Path, with_runs) -> None:
    glyph = render_digit(7, np.random.default_rng(1))
    photo = 255 - np.asarray(Image.fromarray(glyph).resize((500, 500), Image.Resampling.BILINEAR))
    buffer = io.BytesIO()
    Image.fromarray(photo).convert("RGB").save(buffer, "JPEG", quality=90)
    at = open_draw(app_path)
    at = upload_file(at, "seven.jpg", buffer.getvalue(), "image/jpeg")
    no_exception(at)
    assert "Prediction" in metrics(at)


def test_correction_creates_a_version_keeps_the_drawing_and_undo_removes_it(
    app_path: Path, with_runs, runs_dir: Path
) -> None:
    at = inject(open_draw(app_path), canvas_png(3))
    parent = at.selectbox(key="draw_run").value
    predicted = int(metrics(at)["Prediction"])
    truth = (predicted + 1) % 10
    at.button_group(key="draw_true_label").set_value(truth)
    at = at.run()
    teach = next(b for b in at.button if b.label.startswith("Teach it: this is"))
    at = teach.click().run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    version = at.selectbox(key="draw_run").value
    assert version != parent, "the page switched to the new version"
    info = runs.load_run(version, runs_dir)
    assert info.meta["parent"] == parent and info.meta["kind"] == "correction"
    assert info.meta["details"]["label"] == truth
    assert [r.id for r in runs.lineage(version, runs_dir)] == [parent, version]
    assert f"Lineage: `{runs.load_run(parent).name}` → `{info.name}`" in texts(at)
    assert "Saved as a new version" in texts(at)
    shown = metrics(at)
    assert "Test accuracy" in shown and "Test images right → wrong" in shown
    assert f"P({truth}) for your drawing" in shown
    # A change that rounds to zero says so, without the green up arrow "+0.00 points" came with.
    details = info.meta["details"]
    drop = f"{100 * (details['accuracy_after'] - details['accuracy_before']):+.2f}"
    (accuracy,) = [m for m in at.metric if m.label == "Test accuracy"]
    assert accuracy.delta == ("no change" if float(drop) == 0 else f"{drop} points")
    samples = handwriting.list_samples()
    assert [(s.label, s.run_id, s.predicted) for s in samples] == [(truth, parent, predicted)]
    # One click undoes it: the version is gone, the original is selected again.
    at = next(b for b in at.button if b.label == "Undo this correction").click().run()
    no_exception(at)
    assert not (runs_dir / version).exists()
    assert at.selectbox(key="draw_run").value == parent
    assert runs.load_run(parent, runs_dir).status == "completed"
    assert "Undone" in texts(at)


def teach_a_wrong_label(app_path: Path) -> tuple[AppTest, int]:
    """Draw a 3, teach the page it is the digit after its prediction; the page after, and that digit."""
    at = inject(open_draw(app_path), canvas_png(3))
    truth = (int(metrics(at)["Prediction"]) + 1) % 10
    at.button_group(key="draw_true_label").set_value(truth)
    at = next(b for b in at.run().button if b.label.startswith("Teach it: this is")).click().run()
    no_exception(at)
    return at, truth


def test_after_a_correction_the_page_shows_how_the_version_reads_ten_redrawings(
    app_path: Path, with_runs, runs_dir: Path
) -> None:
    at, truth = teach_a_wrong_label(app_path)
    details = runs.load_run(at.selectbox(key="draw_run").value, runs_dir).meta["details"]
    right, was = details["redrawn_right_after"], details["redrawn_right_before"]
    assert details["redrawn"] == 10 and 0 <= right <= 10
    assert f"the new version reads **{right} of 10** re-drawings of your {truth} right" in texts(at)
    assert f"(before the correction: {was} of 10)" in texts(at)
    (captions,) = [image.captions for image in at.image if len(image.captions) == 10]
    assert sum(c == f"{truth} ✓" for c in captions) == right
    assert all(c.endswith(("✓", "✗")) for c in captions)


def test_a_correction_is_remembered_and_the_page_reads_with_the_memory(
    app_path: Path, with_runs, runs_dir: Path
) -> None:
    """The default correction fine-tunes nothing: the version remembers the drawing and reads it right."""
    at, truth = teach_a_wrong_label(app_path)
    version = at.selectbox(key="draw_run").value
    details = runs.load_run(version, runs_dir).meta["details"]
    remembered = 1 + online.CorrectionSettings().views
    assert details["steps_taken"] == 0 and details["remembered"] == remembered
    assert (runs_dir / version / "memory.pt").is_file()
    shown = metrics(at)
    assert shown["Remembered"] == f"{remembered} drawings"
    assert shown["Prediction"] == str(truth), "the page reads the drawing with the version's memory"
    assert "It now reads your drawing correctly" in texts(at)


def test_all_models_compares_every_run(app_path: Path, with_runs) -> None:
    at = inject(open_draw(app_path), canvas_png(5))
    at.toggle(key="draw_compare").set_value(True)
    at = at.run()
    no_exception(at)
    frames = at.dataframe
    assert len(frames) == 1
    frame = frames[0].value
    assert sorted(frame["Run"]) == ["tiny cnn", "tiny mlp"]
    assert "runs" in texts(at)


def test_handwriting_tab_lists_exports_scores_and_deletes(app_path: Path, with_runs) -> None:
    rng = np.random.default_rng(0)
    for label in (1, 2):
        pixels = render_digit(label, rng).astype(np.float32) / 255.0
        handwriting.add(pixels, label)
    at = open_draw(app_path)
    no_exception(at)
    assert "**2 drawings**" in texts(at)
    assert [b.label for b in at.get("download_button")] == ["Export as zip"]
    table = next(df.value for df in at.dataframe if "My handwriting" in df.value.columns)
    assert len(table) == 2 and table["My handwriting"].notna().all()
    delete = [b for b in at.button if b.label == "Delete"]
    assert len(delete) == 2
    at = delete[0].click().run()
    no_exception(at)
    assert len(handwriting.list_samples()) == 1
    assert "**1 drawing**" in texts(at)


def test_fine_tune_on_my_handwriting_makes_a_version(app_path: Path, with_runs, runs_dir: Path) -> None:
    rng = np.random.default_rng(0)
    for label in range(4):
        handwriting.add(render_digit(label, rng).astype(np.float32) / 255.0, label)
    at = open_draw(app_path)
    parent = at.selectbox(key="draw_run").value
    button = next(b for b in at.button if b.label.endswith("on my handwriting"))
    at = button.click().run()
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    version = at.selectbox(key="draw_run").value
    info = runs.load_run(version, runs_dir)
    assert info.meta["parent"] == parent and info.meta["kind"] == "handwriting"
    assert info.meta["details"]["examples"] == 4


def upload(at: AppTest, name: str | None, label: int = 7, seed: int = 1) -> AppTest:
    """Put a photo of ``label`` in the uploader (None: remove it, as the browser does between two files)."""
    if name is None:
        at.file_uploader(key="draw_upload").set_value(None)
        return at.run()
    glyph = render_digit(label, np.random.default_rng(seed))
    photo = 255 - np.asarray(Image.fromarray(glyph).resize((300, 300), Image.Resampling.BILINEAR))
    buffer = io.BytesIO()
    Image.fromarray(photo).convert("RGB").save(buffer, "JPEG", quality=90)
    at.file_uploader(key="draw_upload").set_value((name, buffer.getvalue(), "image/jpeg"))
    return at.run()


def test_all_models_stays_on_across_uploads(app_path: Path, with_runs) -> None:
    """Issue 21.5: the toggle switched itself off on the next upload after it was turned on.

    A new file in the uploader reaches the server in two script runs: the old
    file removed (nothing to read), then the new one. The toggle was drawn
    only when there was something to read, so the browser dropped it in the
    first run and, when the widget states of the second run still carried it,
    mounted it again at its default (off) while the server read it as on; the
    next click sent "off". Now it stays on the page in every run.
    """
    at = open_draw(app_path)
    at.button_group(key="draw_source").set_value("Upload")
    at = upload(at.run(), "seven.jpg", 7, 1)
    at.toggle(key="draw_compare").set_value(True)
    at = at.run()
    for name, label, seed in (("three.jpg", 3, 2), ("two.jpg", 2, 3)):
        at = upload(at, None)  # between two files: nothing to read, and the toggle is still there, on
        no_exception(at)
        assert at.toggle(key="draw_compare").value is True
        assert "Upload a digit to read it with every saved run" in texts(at)
        at = upload(at, name, label, seed)
        no_exception(at)
        assert at.toggle(key="draw_compare").value is True
        assert f"reading the upload {name}" in texts(at)
        assert sorted(at.dataframe[0].value["Run"]) == ["tiny cnn", "tiny mlp"]


def test_a_run_that_cannot_be_loaded_is_tried_once_until_its_folder_changes(
    app_path: Path, with_runs, runs_dir: Path, trained: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 29.3: a failed load was not cached, so every visit rebuilt the model before failing."""
    monkeypatch.syspath_prepend(str(app_path.parent))  # as the app finds ui/ beside app.py
    from ui import draw_cache

    calls: list[str] = []
    real = draw_cache.load_model

    def counting(run_id: str, *args, **kwargs):
        calls.append(run_id)
        return real(run_id, *args, **kwargs)

    monkeypatch.setattr(draw_cache, "load_model", counting)
    best = runs.best_run()
    weights = runs_dir / best.id / "weights.pt"
    weights.write_bytes(b"not a torch file")
    for _ in range(2):  # two visitors (two sessions): one attempt between them
        at = open_draw(app_path)
        no_exception(at)
        assert at.selectbox(key="draw_run").value == best.id
        assert "This run's model cannot be loaded" in texts(at)
    assert calls.count(best.id) == 1
    shutil.copyfile(trained / best.id / "weights.pt", weights)  # the run is fixed: the next visit reloads it
    at = inject(open_draw(app_path), canvas_png(3))
    no_exception(at)
    assert "Prediction" in metrics(at)
    assert calls.count(best.id) == 2


def test_fine_tuning_settings_stay_on_the_page_between_two_uploads(app_path: Path, with_runs) -> None:
    """The same trap as the All models toggle: settings drawn only beside a prediction were missing
    from the script run between two uploads, and the browser put them back at their defaults."""
    at = open_draw(app_path)
    at.button_group(key="draw_source").set_value("Upload")
    at = upload(at.run(), "seven.jpg", 7, 1)
    at.slider(key="draw_setting_steps").set_value(37)
    at = upload(at.run(), None)
    no_exception(at)
    assert at.slider(key="draw_setting_steps").value == 37
    teach = next(b for b in at.button if b.label.startswith("Teach it"))
    assert teach.disabled
    assert "Upload a digit first" in texts(at)
    at = upload(at, "three.jpg", 3, 2)
    no_exception(at)
    assert at.slider(key="draw_setting_steps").value == 37


def test_the_picked_model_stays_picked_when_it_is_renamed_in_another_tab(
    app_path: Path, with_runs, runs_dir: Path, browser
) -> None:
    """The browser sends back the label it was shown; after a rename that label is stale (as in 21.2)."""
    other = next(r for r in with_runs if r.id != runs.best_run().id)
    at = AppTest.from_file(str(app_path), default_timeout=60)
    at.switch_page(PAGE)
    browser.run(at)
    at.selectbox(key="draw_run").set_value(other.id)
    browser.run(at)
    assert at.selectbox(key="draw_run").value == other.id
    runs.update_meta(other.id, runs_dir, name="renamed elsewhere")  # another tab, or the CLI
    browser.run(at)  # any next click: the browser still holds the old label
    browser.run(at)
    no_exception(at)
    assert at.selectbox(key="draw_run").value == other.id  # not the best run
    assert "renamed elsewhere" in browser.shown_label(at, "draw_run")  # and the browser is sent the new name


def test_handwriting_accuracy_says_how_many_drawings_a_version_remembers(
    app_path: Path, with_runs, runs_dir: Path
) -> None:
    """Issue 25 audit: a version's memory reads the drawings it was taught as taught, so its score on
    My handwriting read near 100% with nothing to say why; the table now counts them and scores the rest."""
    rng = np.random.default_rng(0)
    for label in range(4):
        handwriting.add(render_digit(label, rng).astype(np.float32) / 255.0, label)
    at = open_draw(app_path)
    table = next(df.value for df in at.dataframe if "My handwriting" in df.value.columns)
    assert list(table["Remembered"]) == ["0 of 4", "0 of 4"]  # nothing taught yet: the whole set is unseen
    assert (table["Not remembered"] == table["My handwriting"]).all()
    button = next(b for b in at.button if b.label.endswith("on my handwriting"))
    at = button.click().run()
    no_exception(at)
    version = runs.load_run(at.selectbox(key="draw_run").value, runs_dir)
    table = next(df.value for df in at.dataframe if "My handwriting" in df.value.columns)
    row = table[table["Run"] == version.name].iloc[0]
    assert row["Remembered"] == "4 of 4" and row["My handwriting"] == 1.0
    assert np.isnan(row["Not remembered"])  # no drawing it was not taught
    assert "Not remembered* is its accuracy on the others" in texts(at)


# -- the seams of a first hour on the Draw page (answers, double clicks, coming back) ------------------


def pick_answer(at: AppTest, label: int) -> AppTest:
    at.button_group(key="draw_true_label").set_value(label)
    return at.run()


def teach_button(at: AppTest):
    return next(b for b in at.button if b.label.startswith("Teach it"))


def test_an_answer_picked_for_one_drawing_is_not_kept_for_the_next(app_path: Path, with_runs) -> None:
    """An answer picked and not taught stayed picked under the next drawing: one click taught a 3 as a 1."""
    at = pick_answer(inject(open_draw(app_path), canvas_png(3)), 1)
    assert teach_button(at).label == "Teach it: this is 1" and not teach_button(at).disabled
    at = inject(at, canvas_png(7, seed=2))  # another drawing
    no_exception(at)
    assert at.button_group(key="draw_true_label").value is None
    assert teach_button(at).disabled and teach_button(at).label == "Teach it"
    at = pick_answer(at, 4)  # the same drawing again (any rerun): the answer stays
    at = at.run()
    assert at.button_group(key="draw_true_label").value == 4


def test_after_teaching_the_answer_is_cleared_and_another_drawing_hides_the_figures(
    app_path: Path, with_runs, runs_dir: Path
) -> None:
    at, _ = teach_a_wrong_label(app_path)
    version = at.selectbox(key="draw_run").value
    assert at.button_group(key="draw_true_label").value is None
    assert teach_button(at).disabled, "a second click cannot teach the drawing again"
    assert "Saved as a new version" in texts(at)
    at = inject(at, canvas_png(5, seed=3))  # a new drawing, read by the version
    no_exception(at)
    assert at.selectbox(key="draw_run").value == version
    shown = texts(at)
    assert "Saved as a new version" not in shown and "It now reads your drawing" not in shown
    assert "which your last correction saved (of another drawing)" in shown
    assert any(b.label == "Undo this correction" for b in at.button)
    assert "P(" not in "".join(metrics(at)), "the figures of the taught drawing are not shown under this one"


def test_teaching_one_drawing_twice_makes_one_version(app_path: Path, with_runs, runs_dir: Path) -> None:
    """A double click (or a second answer picked at once) reached the server twice with the same run and
    drawing: two sibling versions were saved. The callback is called here as the second click calls it."""
    at = inject(open_draw(app_path), canvas_png(3))
    parent = at.selectbox(key="draw_run").value
    truth = (int(metrics(at)["Prediction"]) + 1) % 10
    at = pick_answer(at, truth)
    at = teach_button(at).click().run()
    no_exception(at)
    version = at.selectbox(key="draw_run").value
    assert version != parent
    # The second click: the browser still shows the answer, and the click goes to the parent's button.
    at.selectbox(key="draw_run").set_value(parent)
    at = pick_answer(at.run(), (truth + 1) % 10)
    at = teach_button(at).click().run()
    no_exception(at)
    children = [r for r in runs.list_runs(runs_dir) if r.meta.get("parent") == parent]
    assert [r.id for r in children] == [version]
    assert at.selectbox(key="draw_run").value == version, "the version that learned it is on show"
    assert "This drawing is already taught" in texts(at)
    assert len(handwriting.list_samples()) == 1


def test_undo_also_removes_the_drawing_from_my_handwriting(app_path: Path, with_runs, runs_dir: Path) -> None:
    at, truth = teach_a_wrong_label(app_path)
    assert [s.label for s in handwriting.list_samples()] == [truth]
    at = next(b for b in at.button if b.label == "Undo this correction").click().run()
    no_exception(at)
    assert handwriting.list_samples() == []
    # Undone, the same drawing may be taught again (another answer).
    parent = at.selectbox(key="draw_run").value
    at = teach_button(pick_answer(at, (truth + 1) % 10)).click().run()
    no_exception(at)
    assert at.selectbox(key="draw_run").value != parent
    assert "Saved as a new version" in texts(at)


def test_the_model_and_the_drawing_are_still_there_after_another_page(
    app_path: Path, with_runs, runs_dir: Path
) -> None:
    """Draw -> Runs -> Draw showed the best run again (not the corrected version) and a blank canvas."""
    at, truth = teach_a_wrong_label(app_path)
    version = at.selectbox(key="draw_run").value
    before = metrics(at)["Prediction"]
    at.switch_page("pages/runs.py")
    no_exception(at.run())
    at.switch_page(PAGE)
    at = at.run()
    no_exception(at)
    assert at.selectbox(key="draw_run").value == version
    assert metrics(at)["Prediction"] == before == str(truth)
    assert "reading your drawing" in texts(at)


def test_draw_and_upload_each_keep_their_input_when_the_user_switches_between_them(
    app_path: Path, with_runs
) -> None:
    at = inject(open_draw(app_path), canvas_png(3))
    drawn = metrics(at)["Prediction"]
    at = upload(pick_source(at, "Upload"), "seven.jpg", 7, 1)
    assert "reading the upload seven.jpg" in texts(at)
    uploaded = metrics(at)["Prediction"]
    at = pick_source(at, "Draw")
    no_exception(at)
    assert metrics(at)["Prediction"] == drawn and "reading your drawing" in texts(at)
    at = pick_source(at, "Upload")
    no_exception(at)
    assert metrics(at)["Prediction"] == uploaded
    assert "Reading `seven.jpg`, uploaded before" in texts(at)
    at = next(b for b in at.button if b.label == "Remove").click().run()
    no_exception(at)
    assert "Prediction" not in metrics(at)
    assert "uploaded before" not in texts(at)
    at = pick_source(at, "Upload")  # removed with the uploader's own X: gone for good too
    at = upload(at, "three.jpg", 3, 2)
    at = upload(at, None)
    no_exception(at)
    assert "Prediction" not in metrics(at) and "uploaded before" not in texts(at)


def test_clear_forgets_the_kept_drawing(app_path: Path, with_runs) -> None:
    at = inject(open_draw(app_path), canvas_png(3))
    at = next(b for b in at.button if b.label == "Clear").click().run()
    at = pick_source(pick_source(at, "Upload"), "Draw")
    no_exception(at)
    assert "Prediction" not in metrics(at)
    assert "Draw a digit on the canvas" in texts(at)


def pick_source(at: AppTest, source: str) -> AppTest:
    at.button_group(key="draw_source").set_value(source)
    return at.run()


def test_a_canvas_covered_in_ink_is_not_called_blank(app_path: Path, with_runs) -> None:
    """A canvas scribbled over until 80% of it was ink was told "the image is blank"."""
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[20:270, 10:260, 3] = 255
    at = inject(open_draw(app_path), png(rgba))
    no_exception(at)
    said = "\n".join(w.value for w in at.warning)
    assert "almost all ink" in said and "blank" not in said
    assert "Prediction" not in metrics(at)


@pytest.mark.parametrize("threshold", [-1.0, 2.0], ids=["beyond", "within"])
def test_a_drawing_unlike_the_training_digits_is_read_with_a_warning(
    app_path: Path, with_runs, monkeypatch: pytest.MonkeyPatch, threshold: float
) -> None:
    """The page reads with the run's novelty index (built from its own data here): beyond its threshold,
    the prediction comes with the novelty warning; within it, with none."""
    import dataclasses

    monkeypatch.syspath_prepend(str(app_path.parent))  # as the app finds ui/ beside app.py
    from ui import draw_cache

    real = draw_cache.novelty_of
    built: list[float] = []

    def moved(info):
        index = real(info)
        assert index is not None, "the index builds on the run's own data"
        built.append(index.threshold)
        return dataclasses.replace(index, threshold=threshold)

    monkeypatch.setattr(draw_cache, "novelty_of", moved)
    at = inject(open_draw(app_path), canvas_png(3))
    no_exception(at)
    assert "Prediction" in metrics(at) and built and 0.0 <= built[0] <= 2.0
    said = [w.value for w in at.warning]
    if threshold < 0:
        assert any("does not look much like the digits the model learned from" in w for w in said), said
    else:
        assert not any("does not look much like" in w for w in said), said


def test_all_models_counts_a_run_that_cannot_read_apart_and_says_why(
    app_path: Path, with_runs, runs_dir: Path
) -> None:
    """A run with broken weights was counted as one that disagreed, with no reason given."""
    broken = next(r for r in with_runs if r.id != runs.best_run().id)
    (runs_dir / broken.id / "weights.pt").write_bytes(b"not a torch file")
    at = inject(open_draw(app_path), canvas_png(5))
    at.toggle(key="draw_compare").set_value(True)
    at = at.run()
    no_exception(at)
    shown = texts(at)
    assert "The one run that could read it reads" in shown and "disagree" not in shown
    assert "1 run could not read it" in shown
    frame = at.dataframe[0].value
    (name,) = [n for n in frame["Run"] if "cannot read it:" in n]
    assert name.startswith(broken.name) and len(name) > len(broken.name) + len(" (cannot read it: )")


def test_a_correction_figure_that_rounds_to_zero_reads_no_change(app_path: Path, monkeypatch) -> None:
    monkeypatch.syspath_prepend(str(app_path.parent))  # as the app finds ui/ beside app.py
    from ui.draw_widgets import change

    assert change("+0.00 points") == {"delta": "no change", "delta_color": "off", "delta_arrow": "off"}
    assert change("-0.0 points")["delta"] == change("+0")["delta"] == "no change"
    assert change("+0.12 points") == {"delta": "+0.12 points"} and change("-3") == {"delta": "-3"}
