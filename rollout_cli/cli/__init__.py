"""The Typer layer: parse arguments, call the library, hand results to render/."""
