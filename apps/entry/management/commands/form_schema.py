"""Print or write the JSON Schema of form definitions (docs/form-definition.schema.json)."""

import json

from apps.core.management.generated import GeneratedDocCommand
from apps.entry.definitions import schema


def render() -> str:
    return json.dumps(schema(), ensure_ascii=False, indent=2) + "\n"


class Command(GeneratedDocCommand):
    help = "Print the JSON Schema of form definitions, or write it to a file with --write."

    def render(self) -> str:
        return render()
