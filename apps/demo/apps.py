from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DemoConfig(AppConfig):
    """The demo park of `make run`: its setup, its stream of readings and the device simulators' wiring
    (commands demo_setup, demo_stream, wait_for_demo, simulate). Above every other app; nothing imports it."""

    name = "apps.demo"
    verbose_name = _("Demo")
