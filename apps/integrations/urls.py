from django.urls import path

from apps.integrations.api import OpenAuthView, OpenDataView, OpenSubscribeView, PlatformResumeView, PlatformsView

urlpatterns = [
    path("open/auth", OpenAuthView.as_view(), name="open-auth"),
    path("open/subscribe", OpenSubscribeView.as_view(), name="open-subscribe"),
    path("open/data", OpenDataView.as_view(), name="open-data"),
    path("platforms", PlatformsView.as_view(), name="platforms"),
    path("platforms/<int:platform_id>/resume", PlatformResumeView.as_view(), name="platform-resume"),
]
