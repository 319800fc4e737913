from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import access, matrix
from apps.accounts.access import Action
from apps.accounts.models import Park


class ParkSerializer(serializers.ModelSerializer):
    class Meta:
        model = Park
        fields = ["code", "name_zh", "name_en", "time_zone", "uscc", "address"]


class ParkViewSet(viewsets.ReadOnlyModelViewSet):
    """The parks where the caller may view data (a token: its own park; a device token: none, 403)."""

    serializer_class = ParkSerializer
    lookup_field = "code"
    access_rules = {"list": Action.VIEW, "retrieve": Action.VIEW}

    def get_queryset(self):
        return access.parks(self.request.user, Action.VIEW)


def _labelled(extra: dict | None = None) -> dict:
    fields = {"code": serializers.CharField(), "label": serializers.CharField(help_text="in the caller's language"),
              "label_zh": serializers.CharField(), "label_en": serializers.CharField()}
    return {**fields, **(extra or {})}


RolesAnswer = inline_serializer("RoleMatrix", {
    "actions": inline_serializer("RoleAction", _labelled(), many=True),
    "scopes": inline_serializer("RoleScope", _labelled(), many=True),
    "roles": inline_serializer("Role", _labelled({
        "kind": serializers.ChoiceField(["member", "token", "system"],
                                        help_text="member: a person's role in a park; token: an API token's; "
                                                  "system: a platform administrator"),
        "actions": serializers.DictField(child=serializers.ChoiceField([s.value for s in access.Scope]),
                                         help_text="action code → scope (all, own, others); absent: not allowed"),
    }), many=True),
    "endpoints": inline_serializer("RoleEndpoint", {
        "path": serializers.CharField(), "method": serializers.CharField(),
        "variant": serializers.CharField(allow_blank=True, help_text="a query condition, e.g. format=csv"),
        "action": serializers.CharField(allow_null=True,
                                        help_text="the park action needed; null: any signed-in caller"),
        "public": serializers.BooleanField(help_text="answers without authentication"),
        "shared": serializers.BooleanField(help_text="reads shared reference rows (the standard's catalog) that "
                                                     "every signed-in caller may read"),
        "roles": serializers.ListField(child=serializers.CharField(), help_text="roles that hold the action"),
    }, many=True),
})


class RolesView(APIView):
    """The published role matrix (R-7.3.3; docs/roles.md is generated from the same source): what each role
    may do in its parks, and which action each API operation needs."""

    permission_classes = [AllowAny]
    authentication_classes = []
    access_rules = {"GET": None}

    @extend_schema(operation_id="roles", responses=RolesAnswer)
    def get(self, request):
        return Response(matrix.as_json())


class ScopedSlugField(serializers.SlugRelatedField):
    """A reference by code to a row the caller may view (``access.restrict(…, VIEW)``): a code of a park the
    caller cannot see is refused with the very message of a code that does not exist (no existence oracle)."""

    def __init__(self, model=None, **kwargs):
        self.model = model
        super().__init__(queryset=model.objects.all(), **kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        return access.restrict(self.model.objects.all(), getattr(request, "user", None), Action.VIEW)
