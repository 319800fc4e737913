"""Stable error codes: the base every app's errors.py builds on, and the published table.

A code never changes meaning once released. Messages come in Chinese and English and say what
the sender can do about it; ``{placeholders}`` are filled from the error's parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import get_language

from apps.core.text import pg_safe

REGISTRY: dict[str, ErrorCode] = {}


@dataclass(frozen=True)
class ErrorCode:
    code: str
    http_status: int
    zh: str
    en: str
    clause: str = ""

    def message(self, lang: str | None = None, **params) -> str:
        lang = lang or get_language() or "zh-hans"
        text = self.en if lang.startswith("en") else self.zh
        try:
            # A sender's NUL or lone surrogate quoted back must not break the JSON answer or the alarm row.
            return pg_safe(text.format(**params))
        except (KeyError, IndexError, ValueError):
            return text

    def messages(self, **params) -> dict[str, str]:
        return {"zh": self.message("zh-hans", **params), "en": self.message("en", **params)}


def define(code: str, http_status: int, zh: str, en: str, clause: str = "") -> ErrorCode:
    if code in REGISTRY:
        raise ValueError(f"error code {code} defined twice")
    err = ErrorCode(code, http_status, zh, en, clause)
    REGISTRY[code] = err
    return err


def error_table() -> list[ErrorCode]:
    """Every code, in order: what the API serves and docs/error-codes.md publishes."""
    import importlib

    from django.apps import apps

    for config in apps.get_app_configs():
        if config.name.startswith("apps."):
            try:
                importlib.import_module(f"{config.name}.errors")
            except ModuleNotFoundError as exc:
                if exc.name != f"{config.name}.errors":
                    raise
    return [REGISTRY[k] for k in sorted(REGISTRY)]


class CarbonParkError(Exception):
    """A failure that carries a stable code; the API handler turns it into the published shape."""

    def __init__(self, error: ErrorCode, field: str | None = None, http_status: int | None = None, **params):
        self.error = error
        self.field = field
        self.params = params
        self.http_status = http_status or error.http_status
        super().__init__(f"{error.code}: {error.message('en', **params)}")

    def as_dict(self) -> dict:
        body = {"code": self.error.code, "message": self.error.message(**self.params)}
        if self.field:
            body["field"] = self.field
        return body


# Codes of the request as a whole (E1xxx); record-level codes live in ingestion/errors.py.
E1001 = define("E1001", 400, "请求体不是有效的 JSON：{detail}。请检查括号、引号和逗号后重发。",
               "The request body is not valid JSON: {detail}. Check brackets, quotes and commas, then resend.",
               "R-9.2.1")
E1002 = define("E1002", 400, "请求体应为一条记录（JSON 对象）或记录数组。",
               "The body must be one record (a JSON object) or an array of records.", "R-9.2.1")
E1003 = define("E1003", 400, "一次最多提交 {limit} 条记录，本次 {count} 条。请拆分成多个批次。",
               "At most {limit} records per request; this one has {count}. Split it into several batches.",
               "interfaces.md §3")
E1004 = define("E1004", 413, "请求体过大（上限 {limit} 字节）。请拆分批次，或用断点续传的文件上传接口 /api/v1/uploads/"
               "（tus 协议，见 docs/uploads.md）。",
               "The request body is too large (limit {limit} bytes). Split it, or send the data as a file through the "
               "resumable upload endpoint /api/v1/uploads/ (tus protocol; see docs/uploads.md).",
               "interfaces.md §3")
E1005 = define("E1005", 409, "该 Idempotency-Key 已用于另一个不同的请求体。请为新数据使用新的键。",
               "This Idempotency-Key was already used with a different body. Use a new key for new data.",
               "R-7.4.1.3")
E1006 = define("E1006", 415, "不支持的内容类型 {content_type}，请使用 application/json。",
               "Unsupported content type {content_type}; send application/json.", "R-8.2.1.1")
E1007 = define("E1007", 401, "未认证：请在 Authorization 头中提供 “Token <密钥>”，或先登录。",
               "Not authenticated: send 'Authorization: Token <key>' or log in first.", "R-7.1.2")
E1008 = define("E1008", 403, "无权访问：{detail}", "Permission denied: {detail}", "R-7.1.2")
E1009 = define("E1009", 400, "查询参数 {param} 无效：{detail}", "Query parameter {param} is invalid: {detail}",
               "interfaces.md §3")
E1010 = define("E1010", 404, "未找到：{detail}", "Not found: {detail}", "interfaces.md §3")
E1011 = define("E1011", 400, "输入无效：{detail}", "Invalid input: {detail}", "interfaces.md §3")
E1012 = define("E1012", 405, "不允许的方法 {method}。", "Method {method} is not allowed.", "interfaces.md §3")
E1013 = define("E1013", 429, "请求过于频繁，请 {wait} 秒后重试。", "Too many requests; retry in {wait} s.",
               "R-7.4.1.3")
E1014 = define("E1014", 400, "Idempotency-Key 无效：应为 1–255 个可见 ASCII 字符。",
               "Invalid Idempotency-Key: use 1–255 printable ASCII characters.", "R-7.4.1.3")
E1015 = define("E1015", 503, "数据库暂时无法访问，请求未处理，数据未保存。请在 {retry_after} 秒后重试同一请求"
               "（带 Idempotency-Key 的重试不会重复存储）。",
               "The database is unreachable for now; the request was not processed and nothing was stored. "
               "Retry the same request in {retry_after} s (a retry with an Idempotency-Key never stores twice).",
               "R-8.4.2.4")
E1016 = define("E1016", 400, "{field} 中的值无法存储：{detail}。"
               "请去掉 NUL 字符和不成对的代理项，数字和日期须在范围内。",
               "A value in {field} cannot be stored: {detail}. Remove NUL characters and unpaired surrogates; "
               "keep numbers and dates in range.", "R-9.2.1")
E1017 = define("E1017", 500, "平台内部错误，请求未完成。错误已记录；请稍后重试，或将请求时间告知平台运维。",
               "Internal error: the request was not completed. It has been logged; retry later, or give the "
               "time of the request to the platform's operator.", "R-9.3.1")
E1018 = define("E1018", 503, "服务暂时不可用（正在重启或维护），请求未处理，数据未保存。"
               "请在 {retry_after} 秒后重试同一请求（带 Idempotency-Key 的重试不会重复存储）。",
               "The service is unavailable for now (restarting or under maintenance); the request was not processed "
               "and nothing was stored. Retry the same request in {retry_after} s (a retry with an Idempotency-Key "
               "never stores twice).", "R-8.4.2.4")
