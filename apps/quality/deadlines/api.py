"""GET /api/v1/overdue (R-6.2.b–d): what is overdue now in the caller's parks, oldest due first. A thin adapter
over ``apps.quality.deadlines.selectors.overdue``; a park code the caller may not view narrows to nothing, like
an unknown one."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import access
from apps.accounts.access import Action
from apps.accounts.models import Park
from apps.quality.deadlines import selectors
from apps.quality.deadlines.due import PERIODS, Kind
from apps.quality.models import DeadlineReminder

OverdueList = inline_serializer("OverdueList", {"results": inline_serializer("OverdueItem", {
    "park": serializers.CharField(),
    "itemKind": serializers.ChoiceField(["source", "form"]),
    "code": serializers.CharField(help_text="the source id or the form code"),
    "name": serializers.CharField(allow_blank=True),
    "period": serializers.ChoiceField(list(PERIODS)),
    "periodStart": serializers.DateField(), "periodEnd": serializers.DateField(help_text="inclusive"),
    "deadlineKind": serializers.ChoiceField([k.value for k in Kind]),
    "dueAt": serializers.DateTimeField(help_text="in the park's time zone"),
    "overdueSeconds": serializers.IntegerField(),
    "state": serializers.ChoiceField(["missing", "draft", "returned"],
                                     help_text="missing: no reading or no submission; else the submission's"),
}, many=True)})


class OverdueView(APIView):
    """The overdue list of the caller's parks (``view``)."""

    access_model = DeadlineReminder
    access_rules = {"GET": Action.VIEW}

    @extend_schema(operation_id="overdue_list", parameters=[OpenApiParameter("park", str, description="park code")],
                   responses={200: OverdueList})
    def get(self, request):
        from django.utils import timezone

        within = None
        code = request.query_params.get("park")
        if code:
            within = list(Park.objects.filter(code=code[:32].replace("\x00", "")).values_list("pk", flat=True))
        now = timezone.now()
        items = selectors.overdue(request.user, now=now, within=within)
        zones = dict(access.parks(request.user).values_list("pk", "time_zone"))
        return Response({"results": [{
            "park": i.park_code, "itemKind": i.item_kind, "code": i.item_code, "name": i.item_name,
            "period": i.period, "periodStart": i.period_start.isoformat(), "periodEnd": i.period_end.isoformat(),
            "deadlineKind": i.deadline_kind,
            "dueAt": i.due_at.astimezone(ZoneInfo(zones.get(i.park_id, "UTC"))).isoformat(),
            "overdueSeconds": int(i.overdue_for(now).total_seconds()), "state": i.state,
        } for i in items]})
