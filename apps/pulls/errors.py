"""Codes of pull connectors (E75xx, R-7.1.1.2, R-7.4.1.2): a refused configuration, and why a run stopped.
Records a connector read but could not store get the pipeline's own codes (E2xxx …)."""

from apps.core.errors import define

E7501 = define("E7501", 400, "连接器配置无效：{detail}。", "The connector's configuration is invalid: {detail}.",
               "R-7.1.1.2")
E7502 = define("E7502", 400, "“{name}”不是合法的表名或列名：只允许字母、数字和下划线（可带一个模式前缀 schema.table），"
               "不得包含空格、引号、分号或注释。",
               "\"{name}\" is not a plain table or column name: use letters, digits and underscores only (optionally "
               "one schema prefix, schema.table), no spaces, quotes, semicolons or comments.", "R-7.4.1.2")
E7503 = define("E7503", 200, "无法连接 {target}：{detail}。游标未前移，下次运行将重试。",
               "Could not connect to {target}: {detail}. The cursor did not move; the next run tries again.",
               "R-8.1.2.2")
E7504 = define("E7504", 200, "{target} 返回 HTTP {status}（已重试 {attempts} 次）。游标未前移。",
               "{target} answered HTTP {status} (after {attempts} attempts). The cursor did not move.", "R-7.1.1.2")
E7505 = define("E7505", 200, "{target} 响应超时（连接 ≤ {connect} 秒，读取 ≤ {read} 秒）。游标未前移。",
               "{target} timed out (connect ≤ {connect} s, read ≤ {read} s). The cursor did not move.", "R-8.1.2.2")
E7506 = define("E7506", 200, "{target} 的响应无法解析：{detail}。游标未前移，本页数据未保存。",
               "The answer of {target} could not be read: {detail}. The cursor did not move; nothing of the page "
               "was stored.", "R-7.1.1.2")
E7507 = define("E7507", 200, "读取遗留数据库失败：{detail}。水位未前移。",
               "Reading the legacy database failed: {detail}. The watermark did not move.", "R-7.4.1.2")
E7508 = define("E7508", 200, "无法解开连接器的密钥（主密钥已更换？）。请重新填写令牌或密码。",
               "The connector's secret could not be opened (was the master key changed?). Enter the token or "
               "password again.", "R-7.4.4.1")
E7509 = define("E7509", 200, "TLS 握手失败（须 TLS 1.2 及以上且证书可验证）：{detail}。",
               "The TLS handshake failed (TLS 1.2 or later with a verifiable certificate is required): {detail}.",
               "R-8.1.2.2")
E7510 = define("E7510", 200, "该连接器正在运行，本次未启动。",
               "The connector is already running; this run was not started.", "R-7.1.1.2")
E7511 = define("E7511", 200, "缺少 {engine} 数据库驱动（{module}）。请在平台上安装后重试。",
               "The driver for {engine} ({module}) is not installed on the platform. Install it, then retry.",
               "R-7.4.1.2")
