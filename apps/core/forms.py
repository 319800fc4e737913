"""Form fields shared by the portal's forms."""

from django import forms
from django.core.exceptions import ValidationError


class SafeJSONFormField(forms.JSONField):
    """Django's JSON form field catches only JSONDecodeError (reading and redisplaying): text nested thousands deep
    (RecursionError) or a number of more digits than Python converts (ValueError) answered 500 instead of an error
    at the field."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except (RecursionError, ValueError) as exc:
            if isinstance(exc, ValidationError):
                raise
            raise ValidationError(self.error_messages["invalid"], code="invalid", params={"value": "…"}) from None

    def bound_data(self, data, initial):
        # shown again in the form as typed, as Django does for text that is no JSON
        try:
            return super().bound_data(data, initial)
        except (RecursionError, ValueError):
            return forms.fields.InvalidJSONInput(data)
