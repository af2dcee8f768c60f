"""What a person does on the Label view's canvas, for Playwright: drag a box, click points,
paint, and wait until the canvas shows SAM's answer (an event the page marks on the canvas's
``data-answers``; never a sleep). Positions are fractions of the image, wherever the canvas
shows it (zoomed, panned, letterboxed)."""

from __future__ import annotations

CANVAS = "#kmine-canvas"


def at(page, fx: float, fy: float) -> tuple[float, float]:
    """The page position of the image point at fractions (fx, fy) of its width and height."""
    p = page.evaluate("([fx, fy]) => { const s = window.kmineLabel.size();"
                      " return window.kmineLabel.toPage(fx * s.w, fy * s.h); }", [fx, fy])
    return p["x"], p["y"]


def data(page, name: str) -> str:
    return page.locator(CANVAS).get_attribute(f"data-{name}") or ""


def answers(page) -> int:
    return int(data(page, "answers") or 0)


def wait_answer(page, before: int) -> int:
    """Wait until the canvas shows an answer after the ``before`` th and nothing is pending."""
    page.wait_for_function("(n) => { const c = document.querySelector('#kmine-canvas');"
                           " return +c.dataset.answers > n && c.dataset.pending === '0'; }", arg=before)
    return answers(page)


def opened(page) -> int:
    """How many images the canvas has opened so far."""
    return int(data(page, "opened") or 0)


def wait_opened(page, since: int) -> int:
    """Wait until the canvas has opened an image after the ``since`` th (its mask drawn); its id."""
    page.wait_for_function("(n) => +document.querySelector('#kmine-canvas').dataset.opened > n", arg=since)
    page.wait_for_function("() => document.querySelector('#kmine-canvas').dataset.pending === '0'")
    return int(data(page, "image"))


def key(page, keys: str):
    page.locator(CANVAS).focus()
    page.keyboard.press(keys)


def drag(page, start: tuple[float, float], end: tuple[float, float], steps: int = 8):
    page.mouse.move(*at(page, *start))
    page.mouse.down()
    page.mouse.move(*at(page, *end), steps=steps)
    page.mouse.up()


def prompt(page, action) -> int:
    """Do ``action`` (a click or a drag) and wait for SAM's answer on screen; the answers so far."""
    before = answers(page)
    action()
    return wait_answer(page, before)


def click(page, fx: float, fy: float, shift: bool = False):
    x, y = at(page, fx, fy)
    if shift:
        page.keyboard.down("Shift")
    page.mouse.click(x, y)
    if shift:
        page.keyboard.up("Shift")


def mask_pixels(page) -> int:
    return page.evaluate("() => window.kmineLabel.maskPixels()")


def history(page) -> int:
    return int(data(page, "history") or 0)
