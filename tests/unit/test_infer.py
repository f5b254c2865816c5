"""Preprocessing of drawings, photos and uploads, and prediction (generated images only)."""

from __future__ import annotations

import dataclasses
import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from torch import nn

from mnist_core import images, infer, ink
from mnist_core.data import NORMALIZATION, normalize
from mnist_core.errors import ConfigError, EmptyImageError, ImageError, InvalidImageError, NotADigitError
from tests.support import synthetic

SEVEN = ((90, 60), (190, 60), (120, 230))  # a "7" on a 280x280 canvas


def canvas(points=SEVEN, width: int = 18, size: int = 280, ink: int = 255, paper: int = 0) -> np.ndarray:
    """uint8 (size, size): a polyline stroke, white on black by default, like the drawing canvas."""
    image = Image.new("L", (size, size), paper)
    ImageDraw.Draw(image).line(list(points), fill=ink, width=width, joint="curve")
    return np.asarray(image).copy()


def scaled(points, factor: float) -> list[tuple[float, float]]:
    return [(x * factor, y * factor) for x, y in points]


def encode(image: np.ndarray | Image.Image, fmt: str = "PNG", **options) -> bytes:
    pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
    buffer = io.BytesIO()
    pil.save(buffer, fmt, **options)
    return buffer.getvalue()


def centre_of_mass(pixels: np.ndarray) -> tuple[float, float]:
    index = np.arange(pixels.shape[0])
    total = pixels.sum()
    return float((pixels.sum(1) * index).sum() / total), float((pixels.sum(0) * index).sum() / total)


def box_size(pixels: np.ndarray, above: float = 0.0) -> tuple[int, int]:
    rows, cols = np.flatnonzero((pixels > above).any(1)), np.flatnonzero((pixels > above).any(0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel())[0, 1])


def stroke_width(pixels: np.ndarray) -> float:
    """2 * area / boundary of the >0.5 mask, in pixels (the measure quoted for real MNIST)."""
    mask = np.pad(pixels > 0.5, 1)
    inner = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    return 2 * mask.sum() / (mask.sum() - inner.sum())


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """What the model sees for the plain canvas "7"."""
    return infer.preprocess_pixels(canvas())


# ------------------------------------------------------------------ contract


def test_preprocess_returns_normalised_float32_batch_of_one(reference: np.ndarray) -> None:
    x = infer.preprocess(canvas())
    assert x.shape == (1, 1, 28, 28) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    torch.testing.assert_close(x, normalize(torch.from_numpy(reference), "mnist").reshape(1, 1, 28, 28))
    # Background is exactly the normalised 0, as in the training set.
    mean, std = NORMALIZATION["mnist"]
    assert float(x.min()) == pytest.approx(-mean / std)


def test_pixels_are_an_ink_image_in_unit_range(reference: np.ndarray) -> None:
    assert reference.shape == (28, 28) and reference.dtype == np.float32
    assert reference.min() == 0.0 and reference.max() == pytest.approx(1.0)
    assert (reference[0] == 0).all() and (reference[:, 0] == 0).all()  # margins stay black


def test_fashion_uses_its_own_normalisation_and_framing() -> None:
    pixels = infer.preprocess_pixels(canvas(), "fashion")
    assert max(box_size(pixels)) == 28  # Fashion-MNIST fits the longer side to 28
    x = infer.preprocess(canvas(), "fashion")
    mean, std = NORMALIZATION["fashion"]
    assert float(x.min()) == pytest.approx(-mean / std)


def test_fashion_keeps_a_filled_garment_filled() -> None:
    photo = Image.new("L", (300, 400), 245)  # a dark shirt on a white product-photo backdrop
    ImageDraw.Draw(photo).polygon(
        [(90, 60), (210, 60), (280, 140), (240, 170), (220, 150), (220, 340), (80, 340), (80, 150), (60, 170),
         (20, 140)],
        fill=40,
    )  # fmt: skip
    pixels = infer.preprocess_pixels(np.asarray(photo), "fashion")
    height, width = box_size(pixels, 0.5)
    assert height == 28 and 20 <= width <= 28  # taller than wide, as drawn
    assert pixels[10:20, 9:19].min() > 0.9  # the body is solid, not an outline


def test_unknown_dataset_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="mnist"):
        infer.preprocess(canvas(), "cifar")


# ------------------------------------------------------------------ geometry


@pytest.mark.parametrize(
    "points",
    [((10, 10), (60, 10), (20, 80)), ((200, 190), (270, 190), (215, 275)), ((20, 240), (120, 200))],
    ids=["top-left", "bottom-right", "slanted-bottom-left"],
)
def test_off_centre_stroke_is_centred_by_mass_in_a_20px_box(points) -> None:
    pixels = infer.preprocess_pixels(canvas(points, width=6))
    cy, cx = centre_of_mass(pixels)
    assert abs(cy - 14) <= 1 and abs(cx - 14) <= 1
    height, width = box_size(pixels)
    assert max(height, width) == 20 and min(height, width) <= 20


def test_tall_one_stays_tall_and_wide_stroke_stays_wide() -> None:
    tall = infer.preprocess_pixels(canvas(((140, 40), (140, 240)), width=12))
    height, width = box_size(tall)
    assert height == 20 and width <= 5
    # A dash is refused as not a digit (test_not_a_digit.py); its geometry is still kept.
    wide = infer.preprocess_pixels(canvas(((40, 140), (240, 140)), width=12), digit_check=False)
    height, width = box_size(wide)
    assert width == 20 and height <= 5


@pytest.mark.parametrize("width", [1, 3, 18, 45])
def test_thin_and_thick_strokes_give_a_valid_digit(width: int, reference: np.ndarray) -> None:
    pixels = infer.preprocess_pixels(canvas(width=width))
    assert max(box_size(pixels)) == 20
    assert corr(pixels, reference) > 0.75
    # A 1-pixel pen on a 280-pixel canvas would vanish at 28x28; it is thickened to MNIST's range.
    assert 2.0 <= stroke_width(pixels) <= 8.0


def test_thin_stroke_is_thickened_to_mnist_width() -> None:
    thin = infer.preprocess_pixels(canvas(width=1))
    assert stroke_width(thin) >= 2.0
    assert (thin > 0.5).sum() >= 40  # a visible stroke, not a faint trace


def test_synthetic_digits_drawn_big_come_back_like_the_originals() -> None:
    rng = np.random.default_rng(0)
    for label in range(10):
        small = synthetic.render_digit(label, rng)
        big = np.asarray(Image.fromarray(small).resize((280, 280), Image.Resampling.BILINEAR))
        assert corr(infer.preprocess_pixels(big), infer.preprocess_pixels(small)) > 0.8, label


# ---------------------------------------------------------- polarity, alpha


def test_dark_ink_on_white_paper_equals_white_ink_on_black(reference: np.ndarray) -> None:
    dark_on_light = canvas(ink=0, paper=255)
    assert np.abs(infer.preprocess_pixels(dark_on_light) - reference).max() < 0.05


def test_black_stroke_on_transparent_canvas_equals_white_on_opaque_black(reference: np.ndarray) -> None:
    stroke = canvas()
    transparent = np.zeros((280, 280, 4), np.uint8)
    transparent[:, :, 3] = stroke  # the canvas default: RGB all zero, alpha carries the stroke
    opaque = np.dstack([stroke, stroke, stroke, np.full_like(stroke, 255)])
    assert np.abs(infer.preprocess_pixels(transparent) - reference).max() < 0.05
    assert np.abs(infer.preprocess_pixels(opaque) - reference).max() < 0.05


def test_white_stroke_on_transparent_background(reference: np.ndarray) -> None:
    rgba = np.dstack([np.full((280, 280, 3), 255, np.uint8), canvas()])
    assert np.abs(infer.preprocess_pixels(rgba) - reference).max() < 0.05


def test_scan_with_transparent_margins_reads_the_ink_not_the_paper(reference: np.ndarray) -> None:
    paper = 1.0 - canvas(ink=230).astype(np.float32) / 255  # dark ink on opaque white paper
    alpha = np.ones_like(paper)
    alpha[:20], alpha[:, :20] = 0.0, 0.0  # transparent strips around the scan
    rgba = np.dstack([paper, paper, paper, alpha])
    assert corr(infer.preprocess_pixels(rgba), reference) > 0.9


def photo(size: int = 600, seed: int = 0, dark_ink: bool = True) -> np.ndarray:
    """float (size, size): ink on paper lit from one side, with sensor noise."""
    rng = np.random.default_rng(seed)
    stroke = canvas(scaled(SEVEN, size / 280), width=size // 24, size=size).astype(np.float32) / 255
    light = 0.55 + 0.4 * np.linspace(0, 1, size)[None, :]
    if dark_ink:
        gray = light * (1 - 0.8 * stroke)
    else:
        gray = 0.2 * light + 0.6 * stroke
    return np.clip(gray + rng.normal(0, 0.03, gray.shape), 0, 1)


@pytest.mark.parametrize("dark_ink", [True, False], ids=["pen-on-paper", "chalk-on-board"])
def test_unevenly_lit_noisy_photo_reads_like_the_clean_drawing(dark_ink: bool, reference: np.ndarray) -> None:
    pixels = infer.preprocess_pixels(photo(dark_ink=dark_ink))
    assert corr(pixels, reference) > 0.9
    # Paper noise and the lighting gradient are gone: nothing outside the digit's box.
    assert max(box_size(pixels)) == 20


def test_specks_away_from_the_digit_are_ignored(reference: np.ndarray) -> None:
    dusty = canvas()
    dusty[5:8, 5:8] = 255
    dusty[270:273, 10:13] = 255
    assert np.abs(infer.preprocess_pixels(dusty) - reference).max() < 0.05


# ------------------------------------------------------------ input formats


@pytest.mark.parametrize(
    "convert",
    [
        lambda a: a,
        lambda a: np.dstack([a, a, a]),
        lambda a: np.dstack([a, a, a, np.full_like(a, 255)]),
        lambda a: a[:, :, None],
        lambda a: a.astype(np.float32) / 255,
        lambda a: a.astype(np.float64) / 255,
        lambda a: np.dstack([a, a, a]).astype(np.float32) / 255,
        lambda a: a > 127,
        lambda a: a.astype(np.uint16) * 257,
        lambda a: Image.fromarray(a),
        lambda a: Image.fromarray(a).convert("RGB"),
        lambda a: Image.fromarray(a).convert("P"),
        lambda a: Image.fromarray(a).convert("1"),
        lambda a: Image.fromarray(a).convert("I;16"),
        lambda a: Image.fromarray(a.astype(np.uint16) * 257),
        lambda a: Image.fromarray(a).convert("CMYK"),
    ],
    ids=[
        "gray-u8", "rgb-u8", "rgba-u8", "hw1", "gray-f32", "gray-f64", "rgb-f32", "bool", "u16",
        "pil-L", "pil-RGB", "pil-P", "pil-1", "pil-I16-8bit", "pil-I16", "pil-CMYK",
    ],
)  # fmt: skip
def test_arrays_and_pil_images_of_any_layout(convert, reference: np.ndarray) -> None:
    assert corr(infer.preprocess_pixels(convert(canvas())), reference) > 0.95


def test_callers_pil_image_is_not_modified() -> None:
    image = Image.fromarray(canvas(size=2100)).convert("RGB")  # big enough to be shrunk
    before = image.tobytes()
    infer.preprocess(image)
    assert image.size == (2100, 2100) and image.mode == "RGB" and image.tobytes() == before


def rgba_canvas_png() -> bytes:
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[:, :, 3] = canvas()
    return encode(rgba)


@pytest.mark.parametrize(
    "make",
    [
        lambda: encode(canvas()),
        lambda: encode(Image.fromarray(canvas().astype(np.uint16) * 257)),
        lambda: encode(canvas(ink=0, paper=255), "JPEG", quality=75),
        lambda: encode(Image.fromarray(canvas(ink=20, paper=240)).convert("RGB"), "JPEG", quality=60),
        rgba_canvas_png,
        lambda: encode(Image.fromarray(np.dstack([np.zeros((280, 280), np.uint8), canvas()]), "LA")),
        lambda: bytearray(encode(canvas())),
        lambda: memoryview(encode(canvas())),
        lambda: io.BytesIO(encode(canvas(), "JPEG")),
        lambda: io.BufferedReader(io.BytesIO(encode(canvas()))),
    ],
    ids=[
        "png",
        "png-16bit",
        "jpeg",
        "jpeg-rgb",
        "png-rgba",
        "png-la",
        "bytearray",
        "memoryview",
        "bytesio",
        "reader",
    ],
)
def test_png_and_jpeg_bytes_and_file_objects(make, reference: np.ndarray) -> None:
    assert corr(infer.preprocess_pixels(make()), reference) > 0.95


def test_file_object_already_read_is_read_from_the_start(reference: np.ndarray) -> None:
    upload = io.BytesIO(encode(canvas()))
    upload.read()  # e.g. a page that showed the file first
    assert corr(infer.preprocess_pixels(upload), reference) > 0.95


def test_path_input(tmp_path: Path, reference: np.ndarray) -> None:
    path = tmp_path / "seven.png"
    path.write_bytes(encode(canvas()))
    assert corr(infer.preprocess_pixels(path), reference) > 0.95
    assert corr(infer.preprocess_pixels(str(path)), reference) > 0.95
    with pytest.raises(InvalidImageError, match="Cannot read"):
        infer.preprocess(tmp_path / "missing.png")


def test_exif_orientation_is_applied(reference: np.ndarray) -> None:
    upright = Image.fromarray(canvas()).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to view", as phones write it
    stored = encode(upright.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=90, exif=exif)
    assert corr(infer.preprocess_pixels(stored), reference) > 0.95


# ---------------------------------------------------------------- big inputs


def test_8000px_png_is_shrunk_early_and_fast(reference: np.ndarray) -> None:
    image = Image.new("L", (8000, 8000), 255)
    ImageDraw.Draw(image).line(scaled(SEVEN, 8000 / 280), fill=0, width=500, joint="curve")
    data = encode(image, compress_level=1)
    start = time.process_time()  # CPU time: a loaded machine stretches the wall clock, not this
    pixels = infer.preprocess_pixels(data)
    assert time.process_time() - start < 3.0
    assert corr(pixels, reference) > 0.9


def test_big_array_is_handled(reference: np.ndarray) -> None:
    big = canvas(scaled(SEVEN, 2100 / 280), width=135, size=2100)  # shrunk by 3 before float work
    assert corr(infer.preprocess_pixels(big), reference) > 0.9
    assert corr(infer.preprocess_pixels(big.astype(np.float32) / 255), reference) > 0.9


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims ``width x height`` but holds almost no data (a decompression bomb's header)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("side", [11_000, 40_000], ids=["over-our-limit", "over-pil-limit"])
def test_decompression_bomb_header_is_refused_without_decoding(side: int) -> None:
    start = time.process_time()  # CPU time, not wall time: a busy neighbour must not fail it
    with pytest.raises(InvalidImageError, match="too large"):
        infer.preprocess(png_header(side, side))
    assert time.process_time() - start < 0.5


def test_pixel_limit_applies_to_arrays_and_pil_images(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "MAX_PIXELS", 280 * 280 - 1)
    with pytest.raises(InvalidImageError, match="too large"):
        infer.preprocess(canvas())
    with pytest.raises(InvalidImageError, match="too large"):
        infer.preprocess(Image.fromarray(canvas()))


# -------------------------------------------------------------------- errors


def filled_square() -> np.ndarray:
    square = np.zeros((280, 280), np.uint8)
    square[100:190, 80:170] = 255
    return square


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((280, 280, 4), np.uint8), "Draw a digit"),  # the canvas after reset
        (np.full((100, 100), 255, np.uint8), "Draw a digit"),
        (np.full((64, 64, 3), 0.4, np.float32), "Draw a digit"),
        ((0.5 + 0.05 * canvas() / 255).astype(np.float32), "too little contrast"),
        (np.clip(0.8 + np.random.default_rng(0).normal(0, 0.05, (300, 300)), 0, 1), "Draw a digit"),
        (np.where(np.random.default_rng(1).random((300, 300)) < 0.001, 0, 255).astype(np.uint8), "specks"),
        (canvas(((140, 140), (141, 141)), width=4), "too small"),
        (canvas(((140, 140), (143, 140), (141, 144)), width=1), "too small"),
        (encode(np.zeros((50, 50), np.uint8)), "Draw a digit"),
    ],
    ids=[
        "reset-canvas", "uniform-white", "uniform-gray", "low-contrast", "noise-only", "salt-specks",
        "dot", "tiny-scribble", "blank-png",
    ],
)  # fmt: skip
def test_no_digit_raises_empty_image_error(image, message: str) -> None:
    with pytest.raises(EmptyImageError, match=message):
        infer.preprocess(image)


def test_a_filled_shape_is_not_a_digit() -> None:
    with pytest.raises(NotADigitError, match="This does not look like a digit: it is a filled shape"):
        infer.preprocess(filled_square())


def closed_file() -> io.BufferedReader:
    reader = io.BufferedReader(io.BytesIO(encode(canvas())))
    reader.close()
    return reader


def truncated_png() -> bytes:
    data = encode(np.asarray(np.random.default_rng(0).integers(0, 255, (200, 200)), np.uint8))
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (b"", "empty"),
        (b"not an image", "not a PNG or JPEG"),
        (truncated_png(), "truncated"),
        (encode(canvas(), "GIF"), "is a GIF image: only PNG and JPEG"),
        (io.BytesIO(b""), "empty"),
        (io.StringIO("text"), "binary mode"),
        (closed_file(), "Cannot read"),
        (np.zeros((28, 28, 5), np.uint8), "shape"),
        (np.zeros(784, np.uint8), "shape"),
        (np.zeros((0, 28), np.uint8), "empty"),
        (np.full((28, 28), np.nan, np.float32), "NaN"),
        (np.full((28, 28), np.inf), "NaN or infinite"),
        (canvas().astype(np.float32), r"\[0, 1\]"),  # 0..255 floats
        (canvas().astype(np.int64) * 2, "0..255"),
        (np.zeros((28, 28), np.complex64), "dtype"),
        ([[0, 1], [1, 0]], "numpy array"),
    ],
    ids=[
        "0-bytes", "garbage-bytes", "truncated-png", "gif", "empty-file", "text-file", "closed-file",
        "5-channels", "1d",
        "0-rows", "nan", "inf", "float-0-255", "int-out-of-range", "complex", "list",
    ],
)  # fmt: skip
def test_unreadable_input_raises_invalid_image_error(image, message: str) -> None:
    with pytest.raises(InvalidImageError, match=message):
        infer.preprocess(image)


def test_image_errors_are_value_errors_for_callers_that_only_know_the_standard_library() -> None:
    with pytest.raises(ValueError):
        infer.preprocess(b"nope")
    assert issubclass(EmptyImageError, ImageError) and issubclass(InvalidImageError, ImageError)


# ------------------------------------------------------------------- display


def test_to_display_undoes_normalisation(reference: np.ndarray) -> None:
    for dataset in ("mnist", "fashion"):
        pixels = infer.preprocess_pixels(canvas(), dataset)
        shown = infer.to_display(infer.preprocess(canvas(), dataset), dataset)
        assert shown.dtype == np.uint8 and shown.shape == (28, 28)
        assert np.abs(shown.astype(int) - np.round(pixels * 255).astype(int)).max() <= 1
    with pytest.raises(ValueError, match="28x28"):
        infer.to_display(torch.zeros(1, 1, 14, 14))


# ------------------------------------------------------------------- predict


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10)).eval()


def test_predict_returns_probabilities_label_and_confidence() -> None:
    model = tiny_model()
    x = infer.preprocess(canvas())
    prediction = infer.predict(model, x)
    assert len(prediction.probabilities) == 10
    assert sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-5)
    assert all(0.0 <= p <= 1.0 for p in prediction.probabilities)
    assert prediction.label == int(np.argmax(prediction.probabilities))
    assert prediction.confidence == max(prediction.probabilities)
    assert prediction.seconds >= 0.0
    expected = torch.softmax(model(x), dim=1)[0]
    assert prediction.probabilities == pytest.approx(expected.tolist(), abs=1e-6)
    with pytest.raises(dataclasses.FrozenInstanceError):
        prediction.label = 3  # type: ignore[misc]


def test_predict_refuses_a_model_in_training_mode_without_flipping_it() -> None:
    model = tiny_model().train()
    with pytest.raises(ValueError, match="eval"):
        infer.predict(model, infer.preprocess(canvas()))
    assert model.training  # untouched: cached models are shared between threads
    half_eval = tiny_model()
    half_eval[1].train()
    with pytest.raises(ValueError, match="eval"):
        infer.predict_batch(half_eval, torch.zeros(2, 1, 28, 28))


def test_predict_runs_in_inference_mode_and_leaves_eval_mode_alone() -> None:
    seen: list[bool] = []

    class Probe(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            seen.append(torch.is_inference_mode_enabled())
            return x.flatten(1)[:, :10]

    model = Probe().eval()
    infer.predict(model, infer.preprocess(canvas()))
    assert seen == [True] and not model.training


def test_predict_batch_matches_predict_row_by_row() -> None:
    model = tiny_model(1)
    batch = torch.cat([infer.preprocess(canvas()), infer.preprocess(canvas(((140, 40), (140, 240))))])
    probs = infer.predict_batch(model, batch)
    assert probs.shape == (2, 10) and probs.dtype == torch.float32 and not probs.requires_grad
    torch.testing.assert_close(probs.sum(1), torch.ones(2))
    for row in range(2):
        single = infer.predict(model, batch[row : row + 1])
        assert single.probabilities == pytest.approx(probs[row].tolist(), abs=1e-6)


def test_predict_follows_the_model_dtype() -> None:
    model = tiny_model().double()
    assert sum(infer.predict(model, infer.preprocess(canvas())).probabilities) == pytest.approx(1.0)


@pytest.mark.parametrize("shape", [(28, 28), (1, 28, 28), (2, 1, 28, 28), (1, 1, 14, 14)])
def test_predict_rejects_wrong_input_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="shape"):
        infer.predict(tiny_model(), torch.zeros(shape))


def test_predict_rejects_bad_model_outputs() -> None:
    wrong = nn.Sequential(nn.Flatten(), nn.Linear(784, 7)).eval()
    with pytest.raises(ValueError, match="expected"):
        infer.predict(wrong, torch.zeros(1, 1, 28, 28))
    broken = tiny_model()
    with torch.no_grad():
        broken[1].weight.fill_(float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        infer.predict(broken, torch.zeros(1, 1, 28, 28))


def _flood_labels(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components by a plain flood fill, numbered in raster order of their first pixel."""
    labels = np.zeros(mask.shape, np.int32)
    count = 0
    for y, x in zip(*np.nonzero(mask), strict=True):
        if labels[y, x]:
            continue
        count += 1
        labels[y, x] = count
        todo = [(y, x)]
        while todo:
            cy, cx = todo.pop()
            for ny in range(max(cy - 1, 0), min(cy + 2, mask.shape[0])):
                for nx in range(max(cx - 1, 0), min(cx + 2, mask.shape[1])):
                    if mask[ny, nx] and not labels[ny, nx]:
                        labels[ny, nx] = count
                        todo.append((ny, nx))
    return labels, count


@pytest.mark.parametrize("density", [0.05, 0.3, 0.5, 0.7])
def test_components_are_a_flood_fills(density: float) -> None:
    """Run-based labelling equals a flood fill on random masks: diagonals, U shapes, edges, empty rows."""
    rng = np.random.default_rng(int(density * 100))
    shapes = [(1, 1), (1, 9), (9, 1), (12, 17), (47, 47), (64, 30)]
    for shape in shapes * 4:
        mask = rng.random(shape) < density
        labels, count = ink._components(mask)
        expected, expected_count = _flood_labels(mask)
        assert count == expected_count
        np.testing.assert_array_equal(labels, expected)
    u_shape = np.zeros((6, 7), bool)
    u_shape[:, 0] = u_shape[:, 6] = u_shape[5, :] = True  # joined only at the bottom row
    diagonal = np.eye(5, dtype=bool)[::-1]  # touching corner to corner only
    for mask in (u_shape, diagonal, np.zeros((4, 4), bool)):
        labels, count = ink._components(mask)
        expected, expected_count = _flood_labels(mask)
        assert count == expected_count
        np.testing.assert_array_equal(labels, expected)


def test_read_is_one_call_for_the_input_what_the_model_sees_its_prediction_and_why() -> None:
    """Issue 25: the Draw page reads a drawing with one core call (was preprocess, to_display,
    predict and saliency from the page)."""
    model = tiny_model()
    reading = infer.read(model, canvas(), explain=True)
    x = infer.preprocess(canvas())
    assert torch.equal(reading.x, x)
    np.testing.assert_array_equal(reading.pixels, infer.to_display(x).astype(np.float32) / 255.0)
    assert reading.prediction is not None and reading.error == ""
    assert reading.prediction.probabilities == infer.predict(model, x).probabilities
    assert reading.saliency is not None and reading.saliency.shape == (28, 28)
    assert reading.method == "gradient"
    plain = infer.read(model, canvas())
    assert plain.saliency is None and plain.method == "" and plain.prediction is not None


def test_read_keeps_the_input_when_the_model_cannot_read_it_and_refuses_no_digit() -> None:
    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.full((x.shape[0], 10), float("nan"))

    reading = infer.read(Broken().eval(), canvas(), explain=True)
    assert reading.prediction is None and "NaN" in reading.error
    assert tuple(reading.x.shape) == (1, 1, 28, 28)
    with pytest.raises(ImageError):
        infer.read(tiny_model(), np.zeros((280, 280), np.uint8))
