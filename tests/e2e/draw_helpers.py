"""Helpers of the Draw page's browser tests (not a test module).

Digits as stroke paths on the 280x280 canvas, drawn the way a person draws
them with a mouse: a 4 in two strokes, a 5 with its bar added last, an 8 in
one looping stroke... two variants per class. ``DrawPage`` drives the page
like a user: mouse strokes on the real canvas, the toolbar's reset, and the
metrics it shows. The page writes "reading your drawing (N strokes)" under
each prediction, so a test knows which drawing a prediction belongs to.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Locator, Page

from mnist_core import runs
from tests.support.browser import idle
from tests.support.synthetic import render_digit

Point = tuple[float, float]
Stroke = list[Point]
Box = dict[str, float]  # x, y, width, height: Playwright's bounding boxes


# -- strokes as a person draws them ---------------------------------------------------


def line(*points: Point, spacing: float = 8.0) -> Stroke:
    """Straight segments through ``points``, a mouse position every ``spacing`` px."""
    out: Stroke = []
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        n = max(1, int(math.dist((x0, y0), (x1, y1)) / spacing))
        out += [(x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n) for k in range(n)]
    return [*out, points[-1]]


def curve(*points: Point, spacing: float = 8.0) -> Stroke:
    """A smooth hand-drawn curve through ``points`` (Catmull-Rom)."""
    pts = [points[0], *points, points[-1]]
    out: Stroke = []
    for i in range(1, len(pts) - 2):
        p0, p1, p2, p3 = pts[i - 1], pts[i], pts[i + 1], pts[i + 2]
        n = max(2, int(math.dist(p1, p2) / spacing))
        for k in range(n):
            t = k / n
            out.append(tuple(  # type: ignore[arg-type]
                0.5 * (2 * p1[j] + (p2[j] - p0[j]) * t + (2 * p0[j] - 5 * p1[j] + 4 * p2[j] - p3[j]) * t * t
                       + (3 * p1[j] - p0[j] - 3 * p2[j] + p3[j]) * t**3)
                for j in range(2)
            ))  # fmt: skip
    return [*out, points[-1]]


def oval(cx: float, cy: float, rx: float, ry: float, start: float = -100, tilt: float = 0.0) -> Stroke:
    """A loop drawn anticlockwise from ``start`` degrees, overshooting a little to close it."""
    points = []
    for k in range(49):
        a = math.radians(start - 370 * k / 48)
        x, y = rx * math.cos(a), ry * math.sin(a)
        points.append((cx + x + tilt * y, cy + y))
    return points


TWO_A = curve((82, 95), (105, 55), (150, 45), (188, 72), (182, 118), (140, 165), (82, 228))
TWO_B = curve((90, 80), (130, 48), (178, 60), (185, 105), (150, 150), (95, 215), (85, 232), (130, 225),
              (205, 230))  # fmt: skip
THREE_A = curve((85, 65), (135, 42), (182, 68), (172, 115), (128, 135), (180, 158), (190, 205), (140, 236),
                (80, 218))  # fmt: skip
THREE_B = curve((90, 55), (175, 55), (125, 125), (175, 145), (185, 200), (140, 235), (85, 220))
FIVE_A = curve((96, 128), (140, 112), (185, 140), (190, 195), (145, 234), (84, 218))
FIVE_B = curve((94, 128), (140, 115), (184, 145), (186, 198), (140, 235), (86, 215))
SIX_A = curve((178, 48), (130, 75), (96, 130), (90, 190), (120, 233), (166, 226), (186, 186), (160, 146),
              (115, 150), (95, 185))  # fmt: skip
SIX_B = curve((165, 45), (115, 100), (92, 170), (110, 228), (160, 230), (182, 190), (150, 155), (100, 170))
EIGHT_A = curve((176, 72), (140, 44), (100, 64), (106, 110), (140, 134), (182, 165), (182, 214), (140, 238),
                (98, 214), (100, 166), (140, 134), (176, 104), (176, 72))  # fmt: skip
EIGHT_B = curve((140, 135), (105, 105), (110, 60), (145, 45), (178, 65), (172, 105), (140, 135), (100, 170),
                (105, 222), (145, 238), (182, 215), (180, 168), (140, 135))  # fmt: skip
NINE_A = curve((180, 88), (150, 52), (104, 64), (96, 110), (132, 132), (176, 112), (182, 80))
NINE_B = curve((178, 70), (140, 48), (100, 70), (105, 118), (150, 122), (180, 80), (180, 150), (160, 240))

DIGITS: dict[int, list[list[Stroke]]] = {
    0: [[oval(140, 140, 58, 92)], [oval(145, 138, 62, 88, start=-70, tilt=0.15)]],
    1: [[line((145, 45), (138, 235))], [line((112, 78), (150, 45), (148, 238))]],
    2: [[TWO_A + line((82, 228), (205, 226))], [TWO_B]],
    3: [[THREE_A], [THREE_B]],
    4: [  # open top, then the long stroke; or closed top
        [line((100, 42), (86, 152), (205, 152)), line((172, 60), (170, 240))],
        [line((165, 42), (72, 172), (212, 172)), line((165, 45), (162, 240))],
    ],
    5: [  # in one stroke; or the bar added last
        [line((188, 48), (104, 50), (96, 128)) + FIVE_A],
        [line((102, 50), (94, 128)) + FIVE_B, line((102, 50), (192, 48))],
    ],
    6: [[SIX_A], [SIX_B]],
    7: [  # in one stroke; or with a crossbar
        [line((78, 55), (202, 55), (118, 238))],
        [line((78, 58), (200, 52), (130, 240)), line((110, 148), (180, 146))],
    ],
    8: [[EIGHT_A], [EIGHT_B]],
    9: [[NINE_A + line((182, 80), (178, 240))], [NINE_B]],
}

# A "continental" 1 with a long flag. Models trained on MNIST (American 1s: a bare
# stroke) read it as a 7: the misread digit the realdata test corrects.
FLAGGED_ONE: list[Stroke] = [line((70, 120), (165, 42), (160, 238))]


# -- the page --------------------------------------------------------------------------


class DrawPage:
    """The Draw page driven like a user: mouse strokes, toolbar reset, reading the metrics."""

    def __init__(self, page: Page, url: str) -> None:
        self.page = page
        self.url = url

    def open(self) -> None:
        """Home first (its script sets up the navigation), then the sidebar link, as a user would."""
        self.page.goto(self.url)
        self.page.get_by_role("heading", name="MNIST Lab").first.wait_for()
        self.idle()
        link = self.page.get_by_test_id("stSidebarNav").get_by_role("link", name="Draw", exact=True)
        expand = self.page.get_by_test_id("stExpandSidebarButton")
        phone = expand.is_visible()  # the sidebar starts closed (off screen), and covers the page when open
        if phone:
            expand.click()
        link.click()
        self.page.get_by_role("heading", name="Draw").first.wait_for()
        if phone:
            self.page.get_by_test_id("stSidebarCollapseButton").click()
            expand.wait_for()
        self.canvas.wait_for()
        self.idle()

    @property
    def canvas(self) -> Locator:
        return self.page.locator("canvas.upper-canvas")  # the canvas sits in an open shadow root

    def idle(self) -> None:
        idle(self.page)

    def metric(self, label: str) -> str:
        box = self.page.get_by_test_id("stMetric").filter(has_text=label).first
        return box.get_by_test_id("stMetricValue").inner_text().strip()

    def reset(self) -> None:
        """The toolbar's reset; waits until the page no longer shows a prediction."""
        self.page.get_by_label("Reset canvas & history").first.click()
        self.page.get_by_test_id("stMetric").filter(has_text="Prediction").wait_for(state="detached")

    def draw(self, strokes: list[Stroke]) -> tuple[int, float]:
        """Draw ``strokes`` with the mouse; the prediction (label, confidence) of the whole drawing."""
        box = self.canvas.bounding_box()
        assert box is not None
        mouse = self.page.mouse
        for stroke in strokes:
            x, y = stroke[0]
            mouse.move(box["x"] + x, box["y"] + y)
            mouse.down()
            for x, y in stroke[1:]:
                mouse.move(box["x"] + x, box["y"] + y)
            mouse.up()
            self.page.wait_for_timeout(80)  # a person lifts the pen between strokes
        n = len(strokes)
        done = f"reading your drawing ({n} stroke{'' if n == 1 else 's'})"
        self.page.get_by_text(done).wait_for()  # the prediction of this very drawing
        return int(self.metric("Prediction")), float(self.metric("Confidence").rstrip("%")) / 100

    def teach(self, label: int) -> None:
        answers = self.page.get_by_test_id("stButtonGroup").filter(has_text="The right answer")
        answers.get_by_text(str(label), exact=True).click()
        self.page.get_by_role("button", name=f"Teach it: this is {label}").click()
        self.page.get_by_text("Saved as a new version").wait_for(timeout=120_000)
        self.idle()

    def selected_run(self) -> str:
        """The text of the run picker's current choice."""
        picker = self.page.get_by_test_id("stSelectbox").first
        return picker.evaluate(
            "el => el.innerText + ' ' + Array.from(el.querySelectorAll('input')).map(i => i.value).join(' ')"
        )

    def ink(self) -> int:
        """How many pixels of the canvas carry ink (the drawn strokes live on its lower layer)."""
        return self.page.locator("canvas.dc-canvas.lower-canvas").evaluate(
            """c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                      let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }"""
        )

    def show_toolbar(self) -> Locator:
        """Hover the canvas, as a user does, until its floating toolbar shows; the toolbar's card."""
        self.canvas.hover()
        self.page.wait_for_function(
            "() => [...document.querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)"
            ".some(r => { const t = r.querySelector('.dc-toolbar');"
            " return t && getComputedStyle(t).opacity === '1'; })"
        )
        return self.page.locator(".dc-toolbar-card")

    def upload(self, path: Path) -> None:
        """Switch the input to Upload (if needed), put ``path`` in the uploader, wait for its prediction."""
        uploader = self.page.locator('[data-testid="stFileUploaderDropzoneInput"]')
        if uploader.count() == 0:
            self.page.get_by_test_id("stButtonGroup").filter(has_text="Input").get_by_text("Upload").click()
            uploader.wait_for(state="attached")
        uploader.set_input_files(str(path))
        self.page.get_by_text(f"reading the upload {path.name}").wait_for()
        self.idle()

    @property
    def all_models(self) -> Locator:
        """The "All models" toggle's checkbox."""
        return self.page.get_by_label("All models: read this drawing with every saved run")

    def no_exception(self) -> None:
        assert self.page.locator('[data-testid="stException"]').count() == 0


def box_of(locator: Locator) -> Box:
    box = locator.bounding_box()
    assert box is not None, f"{locator} is not on screen"
    return box


def overlap(a: Box, b: Box) -> bool:
    """Whether two boxes share more than a pixel of area."""
    dx = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
    dy = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
    return dx > 1 and dy > 1


def photo(folder: Path, label: int, seed: int) -> Path:
    """A JPEG "photo" of a generated ``label``: dark ink on light paper, 300x300."""
    glyph = render_digit(label, np.random.default_rng(seed))
    ink = 255 - np.asarray(Image.fromarray(glyph).resize((300, 300), Image.Resampling.BILINEAR))
    path = folder / f"photo-{label}-{seed}.jpg"
    Image.fromarray(ink).convert("RGB").save(path, "JPEG", quality=90)
    return path


def versions_of(runs_dir: Path, parent: str) -> list[runs.RunInfo]:
    return [r for r in runs.list_runs(runs_dir) if r.meta.get("parent") == parent]
