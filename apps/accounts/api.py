from rest_framework import serializers, viewsets

from apps.accounts.models import Park
from apps.accounts.selectors import parks_for


class ParkSerializer(serializers.ModelSerializer):
    class Meta:
        model = Park
        fields = ["code", "name_zh", "name_en", "time_zone", "uscc", "address"]


class ParkViewSet(viewsets.ReadOnlyModelViewSet):
    """The parks the caller belongs to (a token sees its own park)."""

    serializer_class = ParkSerializer
    lookup_field = "code"

    def get_queryset(self):
        return parks_for(self.request.user)
