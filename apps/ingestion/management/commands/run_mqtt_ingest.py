import logging
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.ingestion.channels.mqtt import MqttIngest


class Command(BaseCommand):
    help = "Consume readings, status reports and command acks from MQTT (interfaces.md §2) until stopped."

    def add_arguments(self, parser):
        parser.add_argument("--url", default=None, help="default: MQTT_URL")
        parser.add_argument("--client-id", default=None,
                            help="stable per consumer, so its persistent session survives restarts")
        parser.add_argument("--protocol", type=int, choices=[4, 5], default=settings.MQTT_PROTOCOL,
                            help="5 = MQTT v5 (default), 4 = v3.1.1")
        parser.add_argument("--shared", action="store_true", default=settings.MQTT_SHARED_SUBSCRIPTION,
                            help="join the MQTT v5 shared subscription, to split the stream among several "
                                 "consumers (default: MQTT_SHARED_SUBSCRIPTION)")
        parser.add_argument("--no-shared", action="store_true", help="plain subscriptions (the default)")
        parser.add_argument("--batch-wait", type=float, default=0.05, help="seconds to gather a batch")

    def handle(self, *args, url, client_id, protocol, shared, no_shared, batch_wait, **options):
        url = url or settings.MQTT_URL
        if not url:
            raise CommandError("Set MQTT_URL (mqtt://host:port or mqtts://user:pass@host:8883).")
        logging.getLogger("carbonpark.mqtt").setLevel(logging.INFO)
        consumer = MqttIngest(url, client_id=client_id, protocol=protocol, shared=shared and not no_shared,
                              batch_wait=batch_wait, ca_file=settings.MQTT_CA_FILE or None)
        signal.signal(signal.SIGTERM, lambda *a: consumer.stop())
        signal.signal(signal.SIGINT, lambda *a: consumer.stop())
        self.stdout.write(f"consuming {url.split('@')[-1]} as {consumer.client_id}")
        consumer.run()
