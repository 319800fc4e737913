from celery import shared_task

from apps.ingestion.services import purge_idempotency_keys as purge


@shared_task(time_limit=600)
def purge_idempotency_keys():
    return purge()
