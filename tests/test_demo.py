"""``ganzoo demo`` and ``ganzoo space``: the page each family's declarations give, the real server driven by a real
headless Chromium (or, without a browser, by gradio_client), the Space folder, and bad input.

The server test starts ``ganzoo demo`` as a subprocess (the way users do) for a tiny StarGAN v2 trained two steps;
its proxy variables point at a local listener that records any connection, so a request to the internet
(analytics, version checks, web fonts) would fail the test. Set GANZOO_DEMO_SCREENSHOT=PATH to keep the browser's
screenshot of the page (docs/demo.png is taken that way).
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from families import declared_model_names, model_class, tiny_recipe

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: what the demo server may not do: phone home (gradio's analytics, Hugging Face's telemetry)
QUIET_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "1",
             "OMP_NUM_THREADS": "1"}
SEED = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_model(name: str, seed: int = 0):
    """``name``'s tiny model with random weights (what the page plan and its translations need)."""
    torch.manual_seed(seed)
    recipe = tiny_recipe(name)
    cls = model_class(name)
    domains = list(recipe.data.domains or ["red", "green", "blue"])
    model = cls(recipe, domains[:2] if cls.pairwise else domains)
    model.build()
    return model


def shape_picture(family: str = "red", size: int = 48) -> Image.Image:
    """An object of the built-in shapes set (what the page's examples show), larger than the model's images."""
    import random

    from ganzoo.data.shapes import render_item

    return Image.fromarray(render_item(random.Random(5), size, family)[0])


def picture(seed: int = 0, size=(40, 30)) -> Image.Image:
    """A random RGB picture, not square and not the model's size (the page resizes it)."""
    return Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


# --------------------------------------------------------------------------- the page plan, per family


@pytest.mark.parametrize("name", declared_model_names())
def test_the_page_offers_what_the_family_declares(name):
    from ganzoo.demo import STRIP_STYLES, DemoPage
    from ganzoo.model import StyleModel

    model = tiny_model(name)
    page = DemoPage.for_model(model)
    size = model.image_size
    assert page.styles == isinstance(model, StyleModel)
    assert page.targets == list(model.sheet_targets()) and page.attributes == []
    assert page.chooses_target == (len(model.sheet_targets()) > 1)
    label = page.target_labels[-1]
    result, strip = page.run(picture(), label, seed=SEED)
    assert result.shape == (size, size, 3) and result.dtype == np.uint8
    # the result is the model's own translation of the resized input into that target
    from ganzoo.data.images import resize, to_tensor
    from ganzoo.image_output import to_uint8

    x = resize(to_tensor(picture()), size)[None]
    target = torch.tensor([page.targets[-1][1]])
    expected = model.translate(x, target, generator=torch.Generator().manual_seed(SEED))[0]
    if model.eval_modes.get("dropout") is None:  # dropout at test time (pix2pix) draws noise from the global RNG
        assert np.array_equal(result, to_uint8(expected).numpy())
    if page.styles:
        assert strip.shape == (size, size * STRIP_STYLES, 3)
        assert np.array_equal(strip[:, :size], result)  # the result is the strip's first style: seed SEED
        again, same_strip = page.run(picture(), label, seed=SEED)
        assert np.array_equal(again, result) and np.array_equal(same_strip, strip)
        other, _ = page.run(picture(), label, seed=SEED + 1)
        assert not np.array_equal(other, result)
        assert np.array_equal(other, strip[:, size:2 * size])
        styled, _ = page.run(picture(), label, seed=SEED, reference=picture(7, (16, 16)))
        assert not np.array_equal(styled, result)
    else:
        assert strip is None


def test_single_target_models_show_no_target_and_attribute_models_toggles():
    from ganzoo.demo import DemoPage

    pix2pix = DemoPage.for_model(tiny_model("pix2pix"))
    assert not pix2pix.chooses_target and not pix2pix.styles and pix2pix.attributes == []

    from ganzoo.plugins import get_registry
    from ganzoo.recipe import recipe_from_dict

    names = ["Black_Hair", "Blond_Hair", "Male"]
    recipe = recipe_from_dict({"model": "stargan", "networks": {"generator": {"conv_dim": 8, "repeat_num": 1},
                                                                 "discriminator": {"conv_dim": 8, "repeat_num": 3}},
                               "data": {"name": "celeba", "image_size": 16, "domains": names}}, check_data=False)
    torch.manual_seed(0)
    model = get_registry().get("models", "stargan")(recipe, names)
    model.build()
    page = DemoPage.for_model(model)
    assert page.attributes == names and page.targets == [] and not page.styles
    blond, _ = page.run(picture(), attributes=["Blond_Hair"])
    male, _ = page.run(picture(), attributes=["Black_Hair", "Male"])
    assert blond.shape == (16, 16, 3) and not np.array_equal(blond, male)
    # every toggle is assigned: toggled on 1, the rest 0 (no source attributes needed)
    x = torch.zeros(1, 3, 16, 16)
    assert model.attribute_target(x, {"Black_Hair": 1, "Blond_Hair": 0, "Male": 1}).tolist() == [[1.0, 0.0, 1.0]]

    # the laid-out pages: pix2pix has no control but the input, the attribute model one toggle per attribute
    from ganzoo.demo import build_blocks

    def controls(page) -> dict[str, tuple]:
        config = build_blocks(page).get_config_file()
        return {c["props"]["elem_id"]: (c["type"], tuple(ch[0] for ch in c["props"].get("choices") or ()))
                for c in config["components"] if c["props"].get("elem_id")}

    assert controls(pix2pix) == {"input-image": ("image", ()), "translate": ("button", ()), "result": ("image", ())}
    assert controls(page) == {"input-image": ("image", ()), "attributes": ("checkboxgroup", tuple(names)),
                              "translate": ("button", ()), "result": ("image", ())}


# --------------------------------------------------------------------------- the real server


class Recorder:
    """A TCP listener that counts connections: the server's HTTP(S)_PROXY, so any outside request shows up here."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.seen: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(1)
                try:
                    self.seen.append(conn.recv(200))
                except OSError:
                    self.seen.append(b"?")


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """`ganzoo demo RUN_DIR --port P` for a tiny StarGAN v2 trained 2 steps; yields its url, the loaded model, the recorder, the log and the folder."""
    import ganzoo
    from ganzoo.trainer import Trainer

    root = tmp_path_factory.mktemp("demo")
    recipe = tiny_recipe("stargan_v2", "train.steps=2", "train.checkpoint_every=2")
    result = Trainer(recipe, root / "run", quiet=True).run()
    assert result.step == 2
    port, recorder = free_port(), Recorder()
    proxy = f"http://127.0.0.1:{recorder.port}"
    env = {**os.environ, **QUIET_ENV, "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "https_proxy": proxy,
           "ALL_PROXY": proxy, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
           "GRADIO_TEMP_DIR": str(root / "gradio"), "HF_HOME": str(root / "hf")}
    log = open(root / "server.log", "w+")
    server = subprocess.Popen([sys.executable, "-m", "ganzoo", "demo", str(root / "run"), "--port", str(port)],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            if server.poll() is not None:
                log.seek(0)
                pytest.fail(f"ganzoo demo exited with {server.returncode}: {log.read()[-3000:]}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("ganzoo demo did not start listening within 180 s")
                time.sleep(0.3)
        yield {"url": url, "model": ganzoo.load(str(root / "run")), "recorder": recorder, "log": log, "root": root}
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def expected_translation(model, image: Image.Image, target: str, seed: int):
    from ganzoo.demo import DemoPage

    return DemoPage.for_model(model).run(image, target, seed=seed)


def no_outside_requests(server) -> None:
    assert server["recorder"].seen == [], f"the demo server reached for the internet: {server['recorder'].seen}"


def test_browser_uploads_picks_a_target_and_reads_the_result(demo_server, tmp_path):
    """Real headless Chromium (Debian's) through Playwright: upload, pick a target, translate, read the result."""
    if not CHROMIUM.exists():
        pytest.skip(f"no browser: {CHROMIUM} is missing (apt-get install chromium); test_gradio_client_translates "
                    "covers the server without one")
    sync_playwright = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extra").sync_playwright
    source = tmp_path / "input.png"
    shape_picture().save(source)
    with sync_playwright() as p, tempfile.TemporaryDirectory(prefix="ganzoo-chromium-") as profile:
        browser = p.chromium.launch_persistent_context(profile, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                                       headless=True, viewport={"width": 1100, "height": 820})
        try:
            page = browser.new_page()
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto(demo_server["url"])
            page.set_input_files("#input-image input[type=file]", str(source))
            page.wait_for_selector("#input-image img")
            page.click("#target input")
            page.get_by_role("option", name="blue").click()
            page.fill("#seed input", str(SEED))
            page.click("#translate")
            result = page.wait_for_selector("#result img", timeout=60_000)
            strip = page.wait_for_selector("#latent-strip img", timeout=60_000)
            shown = {name: Image.open(io.BytesIO(page.request.get(img.get_attribute("src")).body())).convert("RGB")
                     for name, img in (("result", result), ("strip", strip))}
            shot = os.environ.get("GANZOO_DEMO_SCREENSHOT")
            if shot:
                page.screenshot(path=shot, full_page=True)
            # "new style": the next seed not yet in the strip, and the page translates again with it
            first_src = result.get_attribute("src")
            page.click("#new-style")
            page.wait_for_function("() => document.querySelector('#seed input').value === '%d'" % (SEED + 5))
            page.wait_for_function("(old) => { const img = document.querySelector('#result img');"
                                   " return img && img.src !== old; }", arg=first_src, timeout=60_000)
            src = page.query_selector("#result img").get_attribute("src")
            shown["new style"] = Image.open(io.BytesIO(page.request.get(src).body())).convert("RGB")
        finally:
            browser.close()
    outside = [u for u in requested if not u.startswith((demo_server["url"], "data:", "blob:"))]
    assert requested and outside == [], f"the page loaded from outside the server: {outside[:5]}"
    size = demo_server["model"].image_size
    assert shown["result"].size == (size, size) and shown["strip"].size == (5 * size, size)
    want, want_strip = expected_translation(demo_server["model"], shape_picture(), "blue", SEED)
    assert np.array_equal(np.asarray(shown["result"]), want)  # PNG all the way: the exact pixels of that translation
    assert np.array_equal(np.asarray(shown["strip"]), want_strip)
    new_style, _ = expected_translation(demo_server["model"], shape_picture(), "blue", SEED + 5)
    assert np.array_equal(np.asarray(shown["new style"]), new_style) and not np.array_equal(new_style, want)
    no_outside_requests(demo_server)


def test_gradio_client_translates(demo_server, tmp_path):
    """The same server through its API (what runs where no browser is installed)."""
    from gradio_client import Client, handle_file

    source = tmp_path / "input.png"
    picture(2).save(source)
    client = Client(demo_server["url"], verbose=False, download_files=str(tmp_path / "downloads"))
    result, strip = client.predict(handle_file(str(source)), "green", SEED, None, api_name="/translate")
    want, want_strip = expected_translation(demo_server["model"], picture(2), "green", SEED)
    assert np.array_equal(np.asarray(Image.open(result).convert("RGB")), want)
    assert np.array_equal(np.asarray(Image.open(strip).convert("RGB")), want_strip)
    assert client.predict(SEED, api_name="/new_style") == SEED + 5
    no_outside_requests(demo_server)


# --------------------------------------------------------------------------- the Space


def test_space_app_builds_the_same_page(demo_server, tmp_path):
    import runpy

    from ganzoo.demo import build_demo

    space = tmp_path / "space"
    done = cli_in_process("space", str(demo_server["root"] / "run"), str(space))
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in space.iterdir()) == ["README.md", "app.py", "examples", "model", "requirements.txt"]
    assert (space / "requirements.txt").read_text().startswith("ganzoo[demo]")
    card = (space / "README.md").read_text()
    assert "sdk: gradio" in card and "ganzoo demo model`" in card and (space / "model" / "config.json").is_file()
    assert not list((space / "model").glob("discriminator*")) and not (space / "model" / "train_state").exists()
    assert len(list((space / "examples").glob("*.png"))) == 3

    def layout(blocks) -> list[tuple]:
        config = blocks.get_config_file()
        components = [(c["type"], c["props"].get("label"), c["props"].get("elem_id")) for c in config["components"]
                      if c["type"] not in ("dataset",)]
        events = [(d.get("api_name"), len(d["inputs"]), len(d["outputs"])) for d in config["dependencies"]]
        return components + events

    app = runpy.run_path(str(space / "app.py"), run_name="space_app")  # not __main__: builds, does not launch
    ours = build_demo(str(demo_server["root"] / "run"), examples=tmp_path / "examples")
    assert layout(app["demo"]) == layout(ours)
    assert any(t == "dropdown" for t, _, _ in layout(ours)[:20])
    # moved elsewhere, the Space still finds its own copy of the model
    moved = tmp_path / "moved"
    shutil.move(str(space), moved)
    assert layout(runpy.run_path(str(moved / "app.py"), run_name="space_app")["demo"]) == layout(ours)


# --------------------------------------------------------------------------- bad input


def cli_in_process(*args: str):
    """The CLI in this process (torch and gradio are imported already; a subprocess would import them again)."""
    from typer.testing import CliRunner

    from ganzoo.cli import app

    return CliRunner().invoke(app, list(args))


def one_sentence(result) -> str:
    text = result.output.strip()
    assert result.exit_code == 2 and "Traceback" not in text and len(text.splitlines()) == 1, text
    return text


def test_bad_input_is_one_sentence_and_exit_2(demo_server, tmp_path, monkeypatch):
    run = str(demo_server["root"] / "run")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = one_sentence(cli_in_process("demo", run, "--port", str(busy.getsockname()[1])))
    assert "in use" in taken and "--port" in taken
    missing = one_sentence(cli_in_process("demo", str(tmp_path / "no-such-model"), "--port", str(free_port())))
    assert "does not exist" in missing

    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert "not empty" in one_sentence(cli_in_process("space", run, str(tmp_path / "full")))
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["keep.txt"]
    one_sentence(cli_in_process("space", str(tmp_path / "no-such-model"), str(tmp_path / "new")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]  # nothing half-written

    # gradio not installed (an import of it fails): the install hint, before any model is loaded
    monkeypatch.setitem(sys.modules, "gradio", None)
    no_gradio = one_sentence(cli_in_process("demo", str(tmp_path / "no-such-model"), "--port", str(free_port())))
    assert "pip install 'ganzoo[demo]'" in no_gradio
    from ganzoo.demo import DemoUnavailable, import_gradio

    with pytest.raises(DemoUnavailable, match=r"pip install 'ganzoo\[demo\]'"):
        import_gradio()
