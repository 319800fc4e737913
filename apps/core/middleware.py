"""The portal speaks Chinese until its user picks another language; the API follows Accept-Language."""

from django.conf import settings
from django.middleware.locale import LocaleMiddleware
from django.utils import translation


class PortalLocaleMiddleware(LocaleMiddleware):
    """Django's LocaleMiddleware follows the browser's Accept-Language before LANGUAGE_CODE, so an
    English browser would open the portal in English. Park staff expect Chinese: on portal pages only
    the language cookie (set by the language menu) overrides the default. API clients keep the
    standard negotiation, so integrators get messages in the language they ask for."""

    def process_request(self, request):
        if request.path_info.startswith("/api/"):
            return super().process_request(request)
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        language = chosen if chosen and translation.check_for_language(chosen) else settings.LANGUAGE_CODE
        translation.activate(language)
        request.LANGUAGE_CODE = translation.get_language()
