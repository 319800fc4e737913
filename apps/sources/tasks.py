"""Celery tasks of sources. They act for the platform, on behalf of no one: every park (the system;
docs/roles.md, "Processes")."""

from celery import shared_task

from apps.sources.services import commands, rotation, state


@shared_task(time_limit=300)
def rotate_due_keys():
    return rotation.rotate_due_keys()


@shared_task(time_limit=120)
def flag_silent_sources():
    return state.flag_silent_sources()


@shared_task(time_limit=120)
def expire_commands():
    return commands.expire_overdue()
