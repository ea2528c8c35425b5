"""An imported upload through the DICE checks: probe its images, build its documents, validate them.

The same rules as a DICE upload apply (`vtp_dice.validate`); every problem is turned back into
the original file and line or JSON pointer by the import's source map, and all of them are
raised together (capped), so nothing is stored for an upload with any problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vtp_dice.archive import ArchiveLimits, DiceArchive
from vtp_dice.format import ANNOTATION_FILES, DatasetRejected, Problem, Task
from vtp_dice.images import OnImage, probe_all
from vtp_dice.import_source import Imported
from vtp_dice.manifest import ImageEntry
from vtp_dice.validate import referenced_images, validate_annotation_doc


def check_import(
    archive: DiceArchive,
    imported: Imported,
    limits: ArchiveLimits,
    workers: int,
    on_image: OnImage | None = None,
    base_docs: Mapping[Task, dict[str, Any]] | None = None,
    base_images: Mapping[str, ImageEntry] | None = None,
) -> tuple[dict[Task, dict[str, Any]], dict[str, ImageEntry]]:
    """The merged DICE documents and the images they reference; raises DatasetRejected with every problem."""
    base_docs, base_images = dict(base_docs or {}), base_images or {}
    archive.images, archive.image_sources = imported.images, dict(imported.sources.images)
    problems = list(imported.problems)
    probed = probe_all(archive, sorted(archive.images), limits.max_image_pixels, workers, on_image)
    base_refs = set().union(*(referenced_images(doc) for doc in base_docs.values()))
    images = {name: entry for name, entry in base_images.items() if name in base_refs}
    broken = {name for name, result in probed.items() if isinstance(result, Problem)}
    problems += [result for result in probed.values() if isinstance(result, Problem)]
    images.update({name: r for name, r in probed.items() if isinstance(r, ImageEntry)})
    built = imported.build(images)
    docs = {**base_docs, **built}
    if not built and not problems:
        problems.append(Problem("no_annotation_file", f"the {imported.fmt} upload holds no annotations"))
    for task, doc in docs.items():
        problems += validate_annotation_doc(ANNOTATION_FILES[task], task, doc, images, broken, limits.max_problems)
    if problems:
        located = [imported.sources.locate(p) for p in problems]
        already = located[-1].code == "too_many_problems" and len(located) == limits.max_problems + 1
        if len(located) > limits.max_problems and not already:
            more = Problem("too_many_problems", f"{len(located) - limits.max_problems} more problems not shown")
            located = [*located[: limits.max_problems], more]
        raise DatasetRejected(located)
    wanted = set().union(*(referenced_images(doc) for doc in docs.values()))
    return docs, {name: entry for name, entry in images.items() if name in wanted}
