"""Codes of third-party platform integration (E74xx, interfaces.md §6, R-7.4)."""

from apps.core.errors import define

E7401 = define("E7401", 401, "签名无效：应为以平台密钥对 app_id + timestamp + nonce 计算的 HMAC-SHA256（十六进制）。",
               "Invalid signature: send the HMAC-SHA256 (hex) of app_id + timestamp + nonce keyed with the "
               "platform's secret.", "R-7.4.3.1")
E7402 = define("E7402", 401, "nonce 已使用过，请每次认证使用新的随机 nonce。",
               "This nonce was already used; send a fresh random nonce with every authentication.", "R-7.4.3.1")
E7403 = define("E7403", 401, "时间戳超出允许范围（±{window} 秒）。请校准时钟后重试。",
               "The timestamp is outside the allowed window (±{window} s). Synchronise your clock and retry.",
               "R-7.4.3.1")
E7404 = define("E7404", 403, "调用地址 {ip} 不在该平台登记的 IP 白名单内。",
               "The calling address {ip} is not in the platform's registered IP whitelist.", "R-7.4.2.1")
E7405 = define("E7405", 401, "访问令牌无效或已过期，请重新调用 /api/v1/open/auth 获取。",
               "The access token is invalid or has expired; call /api/v1/open/auth for a new one.", "R-7.4.2.2")
E7406 = define("E7406", 403, "该 app_id 已被暂停（{reason}），请联系园区管理员恢复。",
               "This app_id is suspended ({reason}); ask the park administrator to resume it.", "R-7.4.3.2")
E7407 = define("E7407", 404, "未知的 topic_code：{topic}。请先调用 /api/v1/open/subscribe 订阅。",
               "Unknown topic_code {topic}. Subscribe first through /api/v1/open/subscribe.", "R-7.4.2.3")
E7408 = define("E7408", 400, "数据编码 {code} 不在该订阅的编码范围内（{codes}）。",
               "Data code {code} is not one of the subscription's codes ({codes}).", "R-7.4.2.3")
E7409 = define("E7409", 400, "字段 {name} 无效：{detail}", "Field {name} is invalid: {detail}", "interfaces.md §6")
E7410 = define("E7410", 400, "数据编码 {code} 未知或不可用。", "Data code {code} is unknown or not available.",
               "R-7.4.2.3")
E7411 = define("E7411", 403, "数据项 {code} 须来自官方认证的平台，本平台未登记为已认证。",
               "Data item {code} must come from an officially certified platform; this platform is not registered "
               "as certified.", "R-6.3/6.4/6.5")
E7412 = define("E7412", 400, "记录的 sourceId {source} 不属于该订阅（应省略或为 {topic}）。",
               "The record's sourceId {source} is not the subscription's (omit it or send {topic}).", "R-7.4.2.3")
E7413 = define("E7413", 429, "超过频率限制（每分钟 {limit} 次），请 {wait} 秒后重试。",
               "Rate limit exceeded ({limit} requests per minute); retry in {wait} s.", "R-7.4.1.3")
E7414 = define("E7414", 401, "app_id 未知或认证失败。", "Unknown app_id or authentication failed.", "R-7.4.2.2")
E7415 = define("E7415", 400, "统一社会信用代码 {value} 无效（GB 32100-2015：18 位，校验位须匹配）。",
               "Unified social credit code {value} is invalid (GB 32100-2015: 18 characters, check character must "
               "match).", "R-7.4.2.1")
E7416 = define("E7416", 400, "IP 白名单条目 {value} 无效：应为 IPv4/IPv6 地址或 CIDR 网段。",
               "IP whitelist entry {value} is invalid: give an IPv4/IPv6 address or a CIDR network.", "R-7.4.2.1")
E7417 = define("E7417", 404, "平台 {id} 不存在。", "Platform {id} does not exist.", "R-7.4.2.1")
E7418 = define("E7418", 500, "平台处理失败，数据未保存，请稍后用同一 Idempotency-Key 重发。",
               "The platform failed to process the push; nothing was stored. Retry later with the same "
               "Idempotency-Key.", "R-7.4.2.4")
E7419 = define("E7419", 400, "回调地址 {value} 无效：须为 https:// 地址（测试环境允许 http://）。",
               "Callback URL {value} is invalid: use an https:// address (http:// only where allowed for testing).",
               "R-7.4.1.1")
E7420 = define("E7420", 503, "第三方平台接口中断或响应超过 {threshold} 秒。",
               "A third-party platform's endpoint is down or slower than {threshold} s.", "R-7.4.4.2")
E7421 = define("E7421", 400, "补传记录须在平台恢复后 {hours} 小时内送达（最近一次恢复：{recovered}）。",
               "A backfill record must arrive within {hours} h after the platform's recovery (last recovery: "
               "{recovered}).", "R-7.4.3.3")
E7422 = define("E7422", 400, "更正须在首次推送后 {minutes} 分钟内重推（首次推送：{first}），请联系园区提交更正申请。",
               "A correction must be re-pushed within {minutes} min of the first push (first push: {first}); ask "
               "the park for a correction request.", "R-7.4.3.1")
