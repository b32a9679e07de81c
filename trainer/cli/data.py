"""CLI commands for data: ``prepare-voc`` and ``synth-data`` (registered on the trainer group).

Human status goes to stderr; the paths written go to stdout, one per line.
"""
from __future__ import annotations

from pathlib import Path

import click

from drivestage.finite_range import FiniteRange
from trainer.cli import cli


@cli.command("prepare-voc")
@click.argument("root", type=click.Path(file_okay=False))
@click.option("--mode", type=click.IntRange(0, 2), default=0, show_default=True,
              help="0: new random splits (written over ImageSets/Main) + annotation lines; 1: only the "
                   "splits; 2: only the annotation lines, from the dataset's own splits.")
@click.option("--classes", "classes_file", type=click.Path(dir_okay=False), default=None,
              help="Class names, one per line (default: the 20 VOC classes).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".",
              show_default=True, help="Where 2007_train.txt and 2007_val.txt go.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random split.")
@click.option("--year", default="2007", show_default=True, help="Which VOC<year> folder to use.")
@click.option("--trainval-percent", type=FiniteRange(0, 1), default=0.9, show_default=True,
              help="Share of the images in trainval (the rest is test).")
@click.option("--train-percent", type=FiniteRange(0, 1), default=0.9, show_default=True,
              help="Share of trainval in train (the rest is val).")
@click.option("--force", is_flag=True,
              help="Modes 0 and 1: replace split files already in ImageSets/Main (refused "
                   "without it, unless they are the ones this seed writes).")
def prepare_voc_command(root: str, mode: int, classes_file: str | None, out_dir: str, seed: int, year: str,
                        trainval_percent: float, train_percent: float, force: bool) -> None:
    """Write VOC splits and the port's annotation lines from a VOCdevkit folder.

    ROOT is the VOCdevkit folder (or the folder holding it). Difficult objects are left out
    of the lines, objects of unknown classes are counted, and a per-class table is printed.

    \b
    Examples:
      trainer prepare-voc data/VOCdevkit
      trainer prepare-voc data/VOCdevkit --mode 2 --classes model_data/voc_classes.txt --out data
    """
    from trainer.config_checks import check_year
    from trainer.data.voc import VOC_CLASSES, prepare_voc
    from trainer.errors import refuse_empty

    # ("$ROOT" unset: the working folder, its splits replaced with --force; --classes "":
    # "cannot read .: Is a directory", exit 1: attack52. A Path made of "" is "." already.)
    refuse_empty("ROOT", root, "the VOCdevkit folder (or the folder holding it)")
    refuse_empty("--out", out_dir, "the folder for 2007_train.txt and 2007_val.txt")
    refuse_empty("--classes", classes_file, "the class names file, or leave --classes out "
                 "for the 20 VOC classes")
    check_year(year, "--year")
    classes = Path(classes_file) if classes_file is not None else VOC_CLASSES
    report = prepare_voc(Path(root), mode, classes, Path(out_dir), year=year, trainval_percent=trainval_percent,
                         train_percent=train_percent, seed=seed, replace_splits=force)
    # Escaped (drivestage's printable): class names and file names are the dataset's text,
    # anybody's; a newline in an XML <name> printed a line of its own choosing.
    from drivestage.paths import printable, printable_lines

    for name, count in report.splits.items():
        click.echo(f"{name}: {count} images", err=True)
    if report.class_counts:
        click.echo(printable_lines(report.table()), err=True)
        if report.difficult_skipped:
            click.echo(f"difficult objects left out: {report.difficult_skipped}", err=True)
        for name, count in report.unknown_counts.items():
            click.echo(printable(f"unknown class {name!r}: {count} objects left out"), err=True)
    for warning in report.warnings:
        click.echo(printable(f"Warning: {warning}"), err=True)
    for path in report.files:
        click.echo(printable(str(path)))


@cli.command("synth-data")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--images", type=click.IntRange(min=1), default=200, show_default=True, help="How many images.")
@click.option("--classes", type=click.IntRange(1, 40), default=5, show_default=True, help="How many classes.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the images, shapes and split: the same seed writes the same set.")
@click.option("--min-size", type=click.IntRange(min=16), default=200, show_default=True, help="Smallest image side.")
@click.option("--max-size", type=click.IntRange(min=16), default=400, show_default=True, help="Largest image side.")
@click.option("--zip", "make_zip", is_flag=True, help="Also write OUT/VOCdevkit.zip (VOCdevkit/ at its root).")
def synth_data_command(out: str, images: int, classes: int, seed: int, min_size: int, max_size: int,
                       make_zip: bool) -> None:
    """Write a synthetic VOC dataset (coloured shapes on textured backgrounds) into OUT.

    OUT receives VOCdevkit/VOC2007/..., classes.txt, 2007_train.txt and 2007_val.txt.

    \b
    Examples:
      trainer synth-data data/synth --images 300 --classes 5
      trainer synth-data data/synth --images 300 --classes 5 --zip
    """
    from trainer.data.synth import make_synthetic_voc
    from trainer.errors import refuse_empty

    refuse_empty("OUT", out, "the folder to write the dataset into")
    folder = Path(out)   # (a str until here: Path("") is the working folder, ".")
    if min_size > max_size:
        raise click.BadParameter(f"--min-size {min_size} is larger than --max-size {max_size}",
                                 param_hint="--min-size")
    try:
        result = make_synthetic_voc(folder, images=images, classes=classes, seed=seed,
                                    image_size=(min_size, max_size),
                                    zip_path=(folder / "VOCdevkit.zip") if make_zip else None)
    except OSError as exc:  # OUT under a file, a read-only or full disk: was a traceback
        from trainer.data.voc import cannot_write

        raise cannot_write(Path(exc.filename or folder), exc, "give OUT a folder you can write") from None
    click.echo(f"{result.images} images, {result.objects} objects, {len(result.class_names)} classes: "
               f"{', '.join(result.class_names)}", err=True)
    for path in (result.voc_root, result.classes_file, result.train_lines_file, result.val_lines_file,
                 result.zip_path):
        if path is not None:
            click.echo(str(path))
    if not make_zip and (folder / "VOCdevkit.zip").exists():
        # An earlier run's --zip: pushed as the walkthrough says, it is not this set.
        click.echo(f"Warning: {folder / 'VOCdevkit.zip'} is left as it was, and may hold the set "
                   "written before; add --zip to write it again, or delete it", err=True)
