"""A command that prints a generated document, or writes it with --write (docs/error-codes.md, docs/roles.md)."""

from pathlib import Path

from django.core.management.base import BaseCommand


class GeneratedDocCommand(BaseCommand):
    """Subclasses give ``render() -> str``; tests compare the committed file with it."""

    def render(self) -> str:
        raise NotImplementedError

    def add_arguments(self, parser):
        parser.add_argument("--write", metavar="PATH")

    def handle(self, *args, write=None, **options):
        text = self.render()
        if write:
            Path(write).write_text(text, encoding="utf-8")
            self.stdout.write(f"wrote {write}")
        else:
            self.stdout.write(text)
