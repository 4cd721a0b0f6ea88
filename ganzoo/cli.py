"""The ``ganzoo`` command line (typer + rich).

Heavy imports (torch, datasets, timm) live inside the command bodies so that
``ganzoo --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ganzoo.commands.eval_options import (DATA_HELP, DeviceOption, FeatureNetOption, FidWeightsOption, LpipsWeightsOption,
                                         MetricsOption, NumRealOption, NumValOption, OutputsOption, SeedOption, eval_options,
                                         metric_names)
from ganzoo.console import err, friendly, out
from ganzoo.console import registry as _registry
from ganzoo.errors import GanzooError, name_list

app = typer.Typer(
    name="ganzoo",
    help="A plugin-based GAN zoo for image-to-image translation: train from recipes, translate, compare.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global_options(verbose: bool = typer.Option(False, "--verbose", help="also show what libraries log, e.g. the Hub "
                                                 "client's retries and timeouts (quiet by default)")):
    from ganzoo import console

    console.VERBOSE = verbose


config_app = typer.Typer(help="Inspect recipes.", no_args_is_help=True)
app.add_typer(config_app, name="config")

KIND_ALIASES = {"generator": "generators", "discriminator": "discriminators", "loss": "losses", "dataset": "datasets",
                "metric": "metrics", "model": "models", "recipe": "recipes"}


# --------------------------------------------------------------------------- list / info


@app.command("list")
@friendly
def list_cmd(kind: Optional[str] = typer.Argument(None, help="models, generators, discriminators, losses, datasets, metrics, "
                                                               "converters, pretrained or recipes"),
             pretrained: bool = typer.Option(False, "--pretrained", help="list the pretrained zoo (ganzoo pull NAME) instead")):
    """List registered models, networks, losses, datasets, metrics, recipes and weights, with the plugin providing each."""
    if pretrained or kind == "pretrained":
        from ganzoo.zoo import print_pretrained

        return print_pretrained(out)
    from rich.table import Table

    from ganzoo.errors import did_you_mean
    from ganzoo.registry import KINDS

    registry = _registry()
    kinds = list(KINDS)
    if kind is not None:
        kind = KIND_ALIASES.get(kind, kind)
        if kind not in KINDS:
            raise GanzooError(f'Unknown kind "{kind}".{did_you_mean(kind, KINDS)} Kinds: {", ".join(KINDS)}.')
        kinds = [kind]
    table = Table(box=None, pad_edge=False)
    table.add_column("kind", style="cyan")
    table.add_column("name", style="bold")
    table.add_column("plugin", style="magenta")
    if kinds == ["recipes"]:  # a recipe's family is the model it trains
        from ganzoo.recipe_names import recipe_model

        table.add_column("family", style="cyan")
        for entry in registry.entries("recipes"):
            table.add_row("recipes", entry.name, entry.plugin, recipe_model(entry.resolve()))
    else:
        for k in kinds:
            for entry in registry.entries(k):
                table.add_row(k, entry.name, entry.plugin)
    out.print(table)


@app.command()
@friendly
def info(name: str = typer.Argument(..., help="a registered name, e.g. stargan_v2, stargan_v2.generator, quickstart or stargan_v2.afhq")):
    """Show what a registered name is: its plugin, documentation and arguments."""
    import inspect

    import yaml

    from ganzoo.errors import RegistryError, did_you_mean

    registry = _registry()
    entries = registry.find(name)
    if not entries:
        every = [n for k in registry._tables for n in registry.names(k)]
        raise RegistryError(f'Nothing is registered as "{name}".{did_you_mean(name, every)} See `ganzoo list`.')
    for entry in entries:
        obj = entry.resolve()
        singular = {"recipes": "recipe", "pretrained": "pretrained weights"}.get(entry.kind, entry.kind[:-1])
        out.print(f"[bold]{entry.name}[/]  ([cyan]{singular}[/], plugin [magenta]{entry.plugin}[/])")
        if entry.kind == "recipes":  # data, not code: where it is and what it resolves to
            from ganzoo.recipe import load_recipe

            out.print(f"file: {obj}\n", highlight=False)
            out.print(load_recipe(obj, resolve_model=False).to_yaml().rstrip(), highlight=False)
            continue
        if entry.kind == "pretrained":
            from ganzoo.zoo import pretrained_entry

            fields = {k: v for k, v in vars(pretrained_entry(entry.name)).items() if v not in (None, "", [], {})}
            out.print(yaml.safe_dump(fields, sort_keys=False).rstrip(), highlight=False)
            continue
        doc = inspect.getdoc(obj) or ""
        if doc:
            out.print(doc, highlight=False)
        if entry.kind == "models":
            out.print("\n[bold]default recipe[/] (merged under every recipe naming this model):")
            out.print(yaml.safe_dump(obj.default_recipe(), sort_keys=False).rstrip(), highlight=False)
            out.print("[bold]networks[/]: " + ", ".join(f"{r} = {n}" for r, n in obj.network_roles.items()))
            out.print("[bold]losses[/]: " + ", ".join(f"{k}={f.default}" for k, f in obj.LossConfig.model_fields.items()))
            kind = "paired" if obj.paired else "pairwise" if obj.pairwise else "multi-domain"
            out.print(f"[bold]family[/]: {kind}; license {obj.license}; recipes "
                      + (", ".join(f"{k} = {v}" for k, v in obj.recipes.items()) or "none declared"), highlight=False)
            if obj.paper:
                out.print(f"[bold]paper[/]: {obj.paper}", highlight=False)
        elif callable(obj):
            target = obj.__init__ if inspect.isclass(obj) else obj
            out.print(f"\n[bold]arguments[/]: {inspect.signature(target)}".replace("(self, ", "("), highlight=False)


# --------------------------------------------------------------------------- config


@config_app.command("show")
@friendly
def config_show(
    recipe: Path = typer.Argument(..., help="recipe YAML file"),
    set_: List[str] = typer.Option([], "--set", help="override a key: --set train.steps=200 (repeatable)"),
):
    """Print the fully resolved recipe (model defaults, base: chain and --set overrides applied)."""
    from ganzoo.recipe import load_recipe

    _registry()
    print(load_recipe(recipe, set_).to_yaml(), end="")


# --------------------------------------------------------------------------- run


@app.command()
@friendly
def run(
    recipe: Optional[Path] = typer.Argument(None, help="recipe YAML file (optional with --resume)"),
    set_: List[str] = typer.Option([], "--set", help="override a key: --set train.steps=200 (repeatable)"),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="run directory, new or empty (default: runs/<recipe>-<time>)"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="continue the run in this directory from its latest checkpoint"),
    init_from: Optional[str] = typer.Option(None, "--init-from", help="start a new run from the weights of this model folder, "
                                            "run directory, Hub id or pretrained name (fresh optimisers, step 0)"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
):
    """Train a model from a recipe; checkpoints, samples and metrics go to the run directory."""
    from ganzoo.recipe import load_recipe
    from ganzoo.trainer import Trainer, default_run_dir

    _registry()
    if resume is not None and init_from is not None:
        raise GanzooError("--init-from starts a new run and --resume continues one from its own checkpoint; drop one of them.")
    if init_from is not None and not Path(init_from).exists():
        from ganzoo import hub, zoo

        if not (zoo.is_pretrained_name(init_from) or hub.is_hub_id(init_from)):
            raise GanzooError(f"--init-from {init_from} does not exist; give a model folder, a run directory, a Hub id or a "
                              "pretrained name (see `ganzoo pull`).")
        init_from = str(hub.resolve(init_from))  # the whole repo: discriminator and train state too, where it has them
    if resume is not None:
        if not (resume / "recipe.yaml").is_file():
            raise GanzooError(f"{resume} is not a ganzoo run directory (no recipe.yaml); pass the directory a previous `ganzoo run` wrote.")
        if out_dir is not None and out_dir.resolve() != resume.resolve():
            raise GanzooError("--out and --resume name different directories; a resumed run continues in its own directory.")
        resolved = load_recipe(recipe or resume / "recipe.yaml", set_)
        run_dir = resume
        hub_id = getattr(resolved.data, "hub", None)
        if hub_id and (resolved.data.model_extra or {}).get("streaming") and "@" not in hub_id:
            raise GanzooError(f"This run streams the Hub dataset {hub_id} at no fixed revision, so its rows may have changed "
                              f"since it began and the resume would not be exact; resume with --set data.hub={hub_id}@COMMIT naming "
                              f"the commit it streamed, and pin the revision in recipes you stream from.")
    else:
        if recipe is None:
            raise GanzooError("Name a recipe to train (e.g. ganzoo run recipes/quickstart.yaml) or --resume RUN_DIR.")
        resolved = load_recipe(recipe, set_)
        run_dir = out_dir or default_run_dir(recipe)
    import os

    main_rank = os.environ.get("RANK", "0") == "0"  # under torchrun only rank 0 talks
    if main_rank:
        err.print(f"[bold]ganzoo run[/]: model [cyan]{resolved.model}[/], data [cyan]{resolved.data.name}[/], "
                  f"{resolved.train.steps} steps -> {run_dir}", highlight=False)
    result = Trainer(resolved, run_dir, resume=resume is not None, console=err, quiet=quiet, init_from=init_from,
                     any_free_name=out_dir is None and resume is None).run()
    if result.interrupted:
        raise typer.Exit(code=128 + result.stop_signal)  # 130 after Ctrl-C, 143 after SIGTERM
    if main_rank:
        if result.run_dir != run_dir:
            err.print(f"note: {run_dir} was taken by another run; this one is in {result.run_dir}", highlight=False)
        err.print(f"[green]done[/]: step {result.step}, model folder {result.checkpoint}", highlight=False)
        err.print(f"translate with: ganzoo translate {result.run_dir} --input IMAGES --target DOMAIN --out DIR", highlight=False)


# --------------------------------------------------------------------------- translate

@app.command()
@friendly
def translate(
    model: str = typer.Argument(..., help="model folder, run directory, Hub id (org/name[@rev]) or pretrained name"),
    input: Path = typer.Option(..., "--input", "-i", help="an image file, a folder of images, or a video file"),
    target: Optional[str] = typer.Option(None, "--target", "-t", help="target domain name"),
    attrs: Optional[str] = typer.Option(None, "--attrs", help="attribute models: attributes to set, e.g. Blond_Hair,Male=0 (others kept)"),
    out_dir: Path = typer.Option(..., "--out", "-o", help="folder for the translated images, not inside --input "
                                 "(a video: an .mp4 file or a folder)"),
    reference: Optional[Path] = typer.Option(None, "--reference", "-r", help="reference image whose style to use (StarGAN v2)"),
    num: int = typer.Option(1, "--num", "-n", min=1, max=1000, help="outputs per input (different random styles)"),
    seed: int = typer.Option(0, "--seed", help="random seed for latent styles"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
    batch_size: int = typer.Option(16, "--batch-size", min=1),
    keep_size: bool = typer.Option(False, "--keep-size", help="outputs at the input's own size: fully convolutional models "
                                   "translate at that size, others resize back"),
    tile: Optional[int] = typer.Option(None, "--tile", min=16, help="translate at the input's size in overlapping tiles of "
                                       "this many pixels (bounded memory; fully convolutional models)"),
    tile_overlap: Optional[int] = typer.Option(None, "--tile-overlap", min=0, help="pixels tiles overlap by (default tile/4)"),
    audio: bool = typer.Option(True, "--audio/--no-audio", help="videos: copy the input's audio track into the output"),
):
    """Translate images, or a video (--input clip.mp4 --out out.mp4), into a target domain; each output keeps its
    source file name and its sub-folder under --input."""
    from ganzoo.recipe import check_seed

    check_seed(seed)
    import torch

    from ganzoo.data.images import list_images, read_image, resize, to_tensor
    from ganzoo.errors import DataError, did_you_mean
    from ganzoo.image_output import save_image
    from ganzoo.model import ATTRIBUTE_KINDS, AttributeModel, StyleModel
    from ganzoo.trainer import pick_device

    from ganzoo.output_paths import (check_output_file, check_output_folder, output_names, refuse_out_inside_input,
                                     refuse_writing_over, writing)

    from ganzoo.tiling import one_draw, size_plan
    from ganzoo.video import is_video, translate_video

    if input.is_file() and is_video(input) and is_video(out_dir):
        check_output_file(out_dir, "--out")  # a video out is a file (an existing one is replaced when done)
    else:
        check_output_folder(out_dir)
    refuse_out_inside_input(out_dir, [input])
    _registry()
    from ganzoo import load

    net = load(model, device=str(pick_device(device)))
    domains = net.domains
    if attrs is not None:
        if target is not None:
            raise GanzooError("Give either --target DOMAIN or --attrs A,B=0, not both.")
        if net.label_kind not in ATTRIBUTE_KINDS or not isinstance(net, AttributeModel):
            raise GanzooError(f"Model {net.name} has no attribute labels; choose a domain with --target instead of --attrs.")
    elif target is None:
        hint = " or attributes with --attrs (e.g. --attrs Blond_Hair,Male=0)" if getattr(net, "label_kind", "") in ATTRIBUTE_KINDS else ""
        raise GanzooError(f"Name a target domain with --target ({name_list(domains)}){hint}.")
    elif target not in domains:
        raise GanzooError(f'Target domain "{target}" is not one of this model\'s domains ({name_list(domains)}).{did_you_mean(target, domains)}')
    plan = size_plan(net, keep_size=keep_size, tile=tile, overlap=tile_overlap)
    if plan.note(net.name):
        err.print(plan.note(net.name), highlight=False)
    if input.is_file() and is_video(input):
        return translate_video(net, input, out_dir, plan, target=target, attrs=attrs, reference=reference, num=num,
                               seed=seed, batch_size=batch_size, audio=audio, console=err)
    if input.is_dir():
        files = list_images(input)
        if not files:
            raise DataError(f"{input} contains no images (jpg, jpeg, png, bmp, webp, gif); point --input at images.")
    elif input.is_file():
        files = [input]
    else:
        raise DataError(f"--input {input} does not exist; give an image file or a folder of images.")
    # Paths relative to --input: a/cat.png and b/cat.png stay apart (and the count below stays true).
    planned = dict(zip(files, output_names(files, input if input.is_dir() else None, num)))
    refuse_writing_over(files, (out_dir / rel for rels in planned.values() for rel in rels))
    size = net.image_size
    ref = None
    if reference is not None:
        if not isinstance(net, StyleModel):
            raise GanzooError(f"Model {net.name} has no reference-guided mode; drop --reference.")
        ref = resize(to_tensor(read_image(reference)), size).unsqueeze(0)
    target_idx = domains.index(target) if target is not None else None
    gen = torch.Generator().manual_seed(seed)
    skipped, written = [], 0
    images, names, sizes = [], [], []

    def flush():
        nonlocal written
        if not images:
            return
        x = torch.stack(images).to(net.device)
        if attrs is not None:  # attribute vectors: the sources' labels with the named attributes set
            t = net.attribute_target(x, attrs)
        else:
            t = torch.full((x.shape[0],), target_idx, dtype=torch.long, device=net.device)
        with writing():
            out_dir.mkdir(parents=True, exist_ok=True)  # only once there is something to write: a failed run leaves no folder
        for k in range(num):
            r = ref.expand(x.shape[0], -1, -1, -1) if ref is not None else None
            if plan.own_size:  # one image per batch, maybe in tiles: one style / noise draw for all its tiles
                run = one_draw(net, t, reference=r, generator=gen)
            else:
                def run(batch):
                    return net.translate(batch, t, reference=r, generator=gen)
            y = plan.apply(run, x, sizes)
            for name, img in zip(names, y):
                dest = out_dir / planned[name][k]
                with writing("the image", dest):
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    save_image(img, dest)  # beside its destination, then renamed into place
                written += 1
        images.clear()
        names.clear()
        sizes.clear()

    for f in files:
        try:
            image = to_tensor(read_image(f))
            images.append(plan.prepare(image))
            sizes.append(tuple(image.shape[-2:]))
            names.append(f)
        except DataError as exc:
            if len(files) == 1:
                raise
            skipped.append(str(exc))
        if len(images) >= (1 if plan.own_size else batch_size):  # own sizes differ: one image per batch
            flush()
    flush()
    if not written:
        raise DataError(f"None of the {len(files)} image files in {input} could be read (first: {skipped[0].rstrip('.')}); "
                        "point --input at readable images.")
    for why in skipped:
        err.print(f"[yellow]skipped:[/] {why}", highlight=False)
    err.print(f"wrote {written} image(s) to {out_dir}" + (f"; skipped {len(skipped)} unreadable" if skipped else ""), highlight=False)


# --------------------------------------------------------------------------- sample


@app.command()
@friendly
def sample(
    model: str = typer.Argument(..., help="model folder, run directory, Hub id (org/name[@rev]) or pretrained name"),
    input: List[Path] = typer.Option(..., "--input", "-i", help="source image files or folders (repeatable)"),
    reference: Optional[Path] = typer.Option(None, "--reference", "-r", help="StarGAN v2: references as REF_DIR/<domain>/*.png"),
    out_dir: Path = typer.Option(Path("samples"), "--out", "-o", help="folder for the sheets"),
    seed: int = typer.Option(0, "--seed", help="random seed for latent styles (same seed, same pictures)"),
    num: int = typer.Option(4, "--num", "-n", min=1, max=64, help="random styles per domain (latent grid and animation)"),
    frames: int = typer.Option(12, "--frames", min=2, max=240, help="animation frames per style-to-style transition"),
    limit: int = typer.Option(16, "--limit", min=1, help="at most this many sources, and references per domain"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
):
    """Draw labelled sample sheets (grids, and style animations for StarGAN v2) with a layout JSON each."""
    from ganzoo.recipe import check_seed

    check_seed(seed)
    from ganzoo import load
    from ganzoo.output_paths import check_output_folder, refuse_out_inside_input, unique_names, writing
    from ganzoo.sheets import REFERENCE_KINDS, SheetInputs, read_references, read_sources, write_sheets
    from ganzoo.trainer import pick_device

    check_output_folder(out_dir)
    refuse_out_inside_input(out_dir, input)
    if reference is not None:
        refuse_out_inside_input(out_dir, [reference], in_flag="--reference")
    _registry()
    net = load(model, device=str(pick_device(device)))
    if reference is not None and not set(REFERENCE_KINDS) & set(net.sample_sheets):
        raise GanzooError(f"Model {net.name} has no reference-guided sheets ({', '.join(net.sample_sheets)}); drop --reference.")
    sources, names, notes = read_sources(input, net.image_size, limit)
    labels, renamed = unique_names(names)  # a/cat.png and b/cat.png: two labels told apart, not one name twice
    if renamed:
        example = next(new for new, old in zip(labels, names) if new != old)
        notes.append(f"{renamed} source(s) share a file name with another; their labels got a number (e.g. \"{example}\")")
    names = labels
    inputs = SheetInputs(sources, names, seed=seed, num_styles=num, frames=frames)
    if reference is not None:
        inputs.references, inputs.reference_domains, reference_notes = read_references(reference, net.domains, net.image_size, limit)
        notes += reference_notes
    with writing("the sheets in", out_dir):
        written = write_sheets(net, inputs, out_dir)
    for note in notes + written.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)
    err.print(f"wrote {len(written.files)} file(s) to {out_dir}: " + ", ".join(p.name for p in written.files), highlight=False)


# --------------------------------------------------------------------------- convert


@app.command()
@friendly
def convert(
    family: str = typer.Argument(..., help="model family whose official checkpoint to read: see `ganzoo list converters`"),
    paths: List[Path] = typer.Argument(..., help="official checkpoint file(s), then the output model folder last"),
    net: Optional[str] = typer.Option(None, "--net", help="network layout when it cannot be inferred (e.g. resnet_9blocks, unet_256)"),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="image size the weights were trained at"),
    domains: Optional[str] = typer.Option(None, "--domains", help="comma-separated domain (or attribute) names"),
    option: List[str] = typer.Option([], "--option", help="converter-specific key=value (repeatable)"),
):
    """Convert official checkpoints (read with weights_only=True, no pickle code runs) into a ganzoo model folder."""
    from ganzoo.recipe import parse_override

    registry = _registry()
    converter = registry.get("converters", family)
    if len(paths) < 2:
        raise GanzooError("Give the checkpoint file(s) and then the output folder, e.g. ganzoo convert stargan G.ckpt out/.")
    *inputs, out_path = paths
    from ganzoo.output_paths import check_output_folder, io_error

    check_output_folder(out_path, flag="The output folder")
    if out_path.exists() and any(out_path.iterdir()):
        raise GanzooError(f"Output folder {out_path} already exists and is not empty; choose a new folder.")
    extra = {}
    for text in option:
        key, value = parse_override(text)
        extra[".".join(key)] = value
    kwargs = {"net": net, "image_size": image_size, "domains": domains.split(",") if domains else None, **extra}
    try:
        folder = converter(inputs, out_path, **{k: v for k, v in kwargs.items() if v is not None})
    except OSError as exc:  # writing the model folder (a read-only or full disk): named as the folder, not its temp copy
        if exc.filename and out_path.parent.resolve() in Path(str(exc.filename)).resolve().parents:
            raise io_error(exc, "the model folder", out_path) from None
        raise
    err.print(f"[green]converted[/]: {', '.join(map(str, inputs))} -> {folder}", highlight=False)


# --------------------------------------------------------------------------- hub


@app.command()
@friendly
def pull(
    name: Optional[str] = typer.Argument(None, help="Hub repo id (org/name or org/name@REVISION) or pretrained name; "
                                         "leave it out to list the pretrained zoo"),
    local_dir: Optional[Path] = typer.Option(None, "--local-dir", help="also copy the model folder here (a new or empty folder)"),
    full: bool = typer.Option(False, "--full", help="also fetch the discriminator(s) and train_state/ where the source has them "
                              "(to fine-tune with `ganzoo run RECIPE --init-from NAME`)"),
):
    """Download a model from the Hub (or an official release, converted once) and print its local folder.

    Without --full only what translating needs comes down (config, generators, EMA copies, card).
    With no NAME, list the pretrained zoo and how to pull from it.
    """
    from ganzoo import hub, zoo

    if name is None:
        _registry()
        zoo.print_pretrained(out)
        out.print("to fine-tune one, also fetch its discriminator: ganzoo pull NAME --full; any ganzoo model on the Hub: "
                  "ganzoo pull ORG/REPO[@REVISION]", highlight=False, markup=False)
        return
    if zoo.is_pretrained_name(name):
        folder = zoo.pull_pretrained(name, for_inference=not full, console=err)
    else:
        folder = hub.pull_repo(*hub.split_hub_id(name), for_inference=not full)
    if local_dir is not None:
        folder = hub.copy_to(folder, local_dir)
    err.print(f"[green]pulled[/] {name}; translate with: ganzoo translate {name} --input IMAGES --target DOMAIN --out DIR", highlight=False)
    if full:
        err.print(f"fine-tune with: ganzoo run RECIPE --init-from {name}", highlight=False)
    print(folder)


@app.command()
@friendly
def push(
    model_dir: Path = typer.Argument(..., help="model folder or run directory (its latest checkpoint)"),
    repo_id: str = typer.Argument(..., help="Hub repo id, org/name"),
    private: bool = typer.Option(False, "--private", help="create the repo as private"),
    revision: Optional[str] = typer.Option(None, "--revision", help="branch to commit to (created if missing; default main)"),
    commit_message: Optional[str] = typer.Option(None, "--commit-message", "-m"),
    license: Optional[str] = typer.Option(None, "--license", help="license id for the card (default: the folder's own card, else unknown)"),
    with_train_state: bool = typer.Option(False, "--with-train-state", help="also upload train_state/ (to resume training from the Hub)"),
):
    """Upload a model folder to the Hub with a generated model card and the resolved recipe."""
    from ganzoo.hub import push as push_folder

    url = push_folder(model_dir, repo_id, private=private, revision=revision, commit_message=commit_message,
                      license=license, with_train_state=with_train_state)
    err.print(f"[green]pushed[/] {model_dir} -> {repo_id}: {url}", highlight=False)


# --------------------------------------------------------------------------- eval


@app.command("eval")
@friendly
def eval_cmd(
    model: List[str] = typer.Argument(..., help="model folder, run directory or Hub id (several: pairwise models, e.g. CycleGANs)"),
    data: Path = typer.Option(..., "--data", help=DATA_HELP),
    metrics: MetricsOption = None,
    json_path: Optional[Path] = typer.Option(None, "--json", help="also write the results as JSON here"),
    feature_net: FeatureNetOption = "fid_inception",
    fid_weights: FidWeightsOption = None,
    lpips_weights: LpipsWeightsOption = None,
    classifier: Optional[Path] = typer.Option(None, "--classifier", help="domain classifier folder (default: the one next to the data)"),
    outputs: OutputsOption = 10,
    num_val: NumValOption = None,
    num_real: NumRealOption = None,
    batch: int = typer.Option(32, "--batch", min=1),
    seed: SeedOption = 0,
    device: DeviceOption = "auto",
):
    """Evaluate a trained model on an image folder: FID, KID, LPIPS, domain accuracy, content, cost."""
    import json

    from rich.progress import Progress

    from ganzoo.compare import print_report
    from ganzoo.metrics.evaluate import evaluate, translator_for

    from ganzoo.output_paths import check_output_file, write_text_file

    if json_path is not None:
        check_output_file(json_path, "--json")  # before the evaluation runs, not after
    names = metric_names(metrics)
    options = eval_options(feature_net, fid_weights, lpips_weights, classifier, outputs, num_val, num_real, batch, seed, device)
    translator = translator_for(list(model))
    with Progress(transient=True, console=err) as progress:
        task = progress.add_task(f"eval {translator.name}", total=None)
        result = evaluate(translator, data, names, options,
                          progress=lambda done, total, what: progress.update(task, completed=done, total=total, description=what))
    report = {"data": str(data), "domains": translator.domains, "k": len(translator.domains), "steps": None,
              "models": {translator.name: {"generators": translator.generator_count(), "models": len(translator.models),
                                           "train": {}, "eval": result.to_json()}}}
    print_report(report, out)
    if json_path is not None:
        write_text_file(json_path, json.dumps(result.to_json(), indent=2) + "\n", "--json")


# Commands that plugins add (ganzoo's own compare, bench, ... among them), each wrapped in `friendly`.
from ganzoo.plugins import register_commands  # noqa: E402 - after the core commands exist

register_commands(app, wrap=friendly)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
