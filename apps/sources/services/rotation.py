"""Key rotation of devices (R-5.2.2.6 rotation at most every 30 days, interfaces.md §5): a new pending key
travels to the device in a rotate_key downlink command. Above both the key ring (``keys``) and the downlink
commands (``commands``): neither imports this module, and ``commands`` imports ``keys``, never the reverse."""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.sources.models import Command, DataSource, SourceKey
from apps.sources.services.commands import create_command
from apps.sources.services.keys import ROTATION_DAYS, pending_key


@transaction.atomic
def rotate_key(*, actor, source: DataSource) -> Command:
    """Start a rotation: a new pending key travels to the device in a rotate_key command. The old key
    stays active until the device acknowledges (then retires, still decrypting for 96 h)."""
    pending = pending_key(actor=actor, source=source)
    # The key itself is added when the command is published, never stored in the command's params.
    return create_command(actor=actor, source=source, type=Command.Type.ROTATE_KEY,
                          params={"keyId": pending.key_id, "algorithm": "AES-256-GCM"})


def rotate_due_keys(now=None) -> int:
    """The scheduled rotation (R-5.2.2.6: at most every 30 days): every source whose active key is
    older than ROTATION_DAYS, and no rotation already under way, gets a rotate_key command."""
    now = now or timezone.now()
    due = SourceKey.objects.filter(state=SourceKey.State.ACTIVE, source__isnull=False,
                                   activated_at__lt=now - timedelta(days=ROTATION_DAYS))
    count = 0
    for key in due.select_related("source"):
        if not key.source.keys.filter(state=SourceKey.State.PENDING).exists():
            rotate_key(actor="scheduler", source=key.source)
            count += 1
    return count
