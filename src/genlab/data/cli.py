"""``genlab data ...``: build the cached datasets and show what is in them."""

from __future__ import annotations


def register(commands) -> None:
    p = commands.data.add_parser("emoji", help="render OpenMoji (CC BY-SA 4.0) at 32/64 px, print counts, preview")
    p.add_argument("--size", type=int, default=32, choices=[32, 64])
    p.add_argument("--preview", default="emoji_preview.png", help="where to write a preview grid")
    p.add_argument("--rebuild", action="store_true", help="render again even if the cache is valid")
    p.set_defaults(handler=_emoji)

    p = commands.data.add_parser("speech", help="synthesise the multilingual speech corpus (needs genlab[speech])")
    p.add_argument("--rebuild", action="store_true")
    p.add_argument("--utterances", type=int, default=None, help="limit the corpus size (for quick runs)")
    p.set_defaults(handler=_speech)


def _emoji(args) -> None:
    from .emoji import cli_main

    cli_main(args)


def _speech(args) -> None:
    from .speech import cli_main

    cli_main(args)
