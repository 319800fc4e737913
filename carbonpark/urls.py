from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import APIRootView, DefaultRouter

from apps.accounts.api import ParkViewSet, RolesView
from apps.catalog.api import CatalogClassViewSet, DataItemViewSet, EnumerationViewSet
from apps.core.views import ErrorCodesView, api_not_found, healthz
from apps.corrections.api import (
    CorrectionDecisionView,
    CorrectionDetailView,
    CorrectionRejectView,
    CorrectionsView,
)
from apps.entry.api import FormListView, FormVersionView
from apps.entry.api.excel import ExportView, FormImportView, FormTemplateView
from apps.entry.api.submissions import (
    FormValidateView,
    SubmissionAttachView,
    SubmissionDetailView,
    SubmissionDiffView,
    SubmissionRestoreView,
    SubmissionReturnView,
    SubmissionReviewView,
    SubmissionSubmitView,
    SubmissionsView,
)
from apps.ingestion.api import ReadingsView
from apps.ingestion.metrics import metrics_view
from apps.quality.deadlines.api import OverdueView
from apps.quality.indicators.api import QualityIndicatorsView
from apps.quality.registers.api import ConsumptionView
from apps.sources.api import DataSourceViewSet
from apps.uploads.api import UploadDetailView, UploadReportView, UploadsView


class ApiRootView(APIRootView):
    """The index of /api/v1/: links to the lists, no park data."""

    access_rules = {"GET": None}  # apps.accounts.permissions: any signed-in caller


class OptionalSlashRouter(DefaultRouter):
    """interfaces.md names paths without a trailing slash (/api/v1/sources/{sourceId}/commands); both
    spellings answer, with no redirect that would drop a POST body."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.trailing_slash = "/?"

    APIRootView = ApiRootView


router = OptionalSlashRouter()
router.register("catalog/items", DataItemViewSet, basename="catalog-item")
router.register("catalog/classes", CatalogClassViewSet, basename="catalog-class")
router.register("catalog/enumerations", EnumerationViewSet, basename="catalog-enumeration")
router.register("parks", ParkViewSet, basename="park")
router.register("sources", DataSourceViewSet, basename="source")

api_v1 = [
    path("readings", ReadingsView.as_view(), name="readings"),
    path("corrections", CorrectionsView.as_view(), name="corrections"),
    path("overdue", OverdueView.as_view(), name="overdue"),
    path("quality/indicators", QualityIndicatorsView.as_view(), name="quality-indicators"),
    path("consumption", ConsumptionView.as_view(), name="consumption"),
    path("corrections/<int:correction_id>", CorrectionDetailView.as_view(), name="correction-detail"),
    path("corrections/<int:correction_id>/approve", CorrectionDecisionView.as_view(), name="correction-approve"),
    path("corrections/<int:correction_id>/reject", CorrectionRejectView.as_view(), name="correction-reject"),
    path("errors", ErrorCodesView.as_view(), name="error-codes"),
    path("roles", RolesView.as_view(), name="roles"),
    path("forms", FormListView.as_view(), name="form-list"),
    path("forms/<str:code>/versions/<int:number>", FormVersionView.as_view(), name="form-version"),
    path("forms/<str:code>/versions/<int:number>/template.xlsx", FormTemplateView.as_view(), name="form-template"),
    path("forms/<str:code>/import", FormImportView.as_view(), name="form-import"),
    path("exports/<str:kind>", ExportView.as_view(), name="export"),
    path("forms/<str:code>/validate", FormValidateView.as_view(), name="form-validate"),
    path("submissions", SubmissionsView.as_view(), name="submissions"),
    path("submissions/<int:submission_id>", SubmissionDetailView.as_view(), name="submission-detail"),
    path("submissions/<int:submission_id>/submit", SubmissionSubmitView.as_view(), name="submission-submit"),
    path("submissions/<int:submission_id>/approve", SubmissionReviewView.as_view(), name="submission-approve"),
    path("submissions/<int:submission_id>/return", SubmissionReturnView.as_view(), name="submission-return"),
    path("submissions/<int:submission_id>/attachments", SubmissionAttachView.as_view(),
         name="submission-attachments"),
    path("submissions/<int:submission_id>/diff", SubmissionDiffView.as_view(), name="submission-diff"),
    path("submissions/<int:submission_id>/restore", SubmissionRestoreView.as_view(), name="submission-restore"),
    path("uploads/", UploadsView.as_view(), name="uploads"),
    path("uploads/<str:upload_id>", UploadDetailView.as_view(), name="upload-detail"),
    path("uploads/<str:upload_id>/report.<str:fmt>", UploadReportView.as_view(), name="upload-report"),
    path("", include("apps.integrations.urls")),
    path("", include(router.urls)),
]

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),  # Prometheus; docs/operations-health.md
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file (?script): the CSP runs no inline script.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    # Unknown API paths answer a JSON 404 (E1010), not the portal's login redirect below.
    re_path(r"^api/", api_not_found, name="api-not-found"),
    # The portal is the admin; it comes last because its catch-all view would shadow the paths above.
    path("", admin.site.urls),
]

# A database that is down answers 503 with Retry-After, any other failure of the API a JSON 500 (E1017).
handler500 = "apps.core.api.server_error"
