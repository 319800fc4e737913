"""Record-level codes of ingestion (E2xxx format and reference checks, E4xxx repeats).

Each message says what is wrong and what the sender can do. R-9.2.1, R-9.3.1, interfaces.md §1."""

from apps.core.errors import define

E2001 = define("E2001", 400, "缺少字段 {field}。每条记录须包含 sourceId、timestamp 和 value。",
               "Field {field} is missing. Every record needs sourceId, timestamp and value.", "R-8.2.1.3")
E2002 = define("E2002", 400, "字段 {field} 的类型应为 {expected}，收到的是 {got}。",
               "Field {field} must be {expected}; got {got}.", "R-9.2.1")
E2003 = define("E2003", 400, "数据源 {source} 未在本园区注册。请先在平台登记该数据源，或检查拼写。",
               "Data source {source} is not registered in this park. Register it first, or check the spelling.",
               "R-8.2.1.3")
E2004 = define("E2004", 400, "数据编码 {code} 不在数据目录中（附录A，如 CS010201）。",
               "Data code {code} is not in the catalog (Appendix A codes such as CS010201).", "R-6.3")
E2005 = define("E2005", 400, "数据源 {source} 未绑定数据编码 {code}。请在数据源设置中绑定，或更正编码。",
               "Data source {source} is not bound to data code {code}. Bind it in the source's settings, "
               "or correct the code.", "R-5.2.3.2")
E2006 = define("E2006", 400, "数据源 {source} 绑定了多个数据编码，记录必须给出 dataCode。",
               "Data source {source} is bound to several data codes, so the record must name its dataCode.",
               "interfaces.md §1")
E2007 = define("E2007", 400, "时间格式错误：{value}。应为 YYYY-MM-DD HH:MM:SS[.SSS]（园区时区）或带时区的 ISO 8601。",
               "Bad timestamp {value}: use YYYY-MM-DD HH:MM:SS[.SSS] (park time) or ISO 8601 with an offset.",
               "R-5.2.3.5")
E2008 = define("E2008", 400, "数值 {value} 不是有限数（NaN 或 Infinity）。请发送实际读数，或不发送此记录。",
               "Value {value} is not a finite number (NaN or Infinity). Send the real reading, or leave the "
               "record out.", "R-9.2.1")
E2009 = define("E2009", 400, "单位 {unit} 无法换算为数据项的单位 {expected}。",
               "Unit {unit} cannot be converted to the item's unit {expected}.", "R-9.1.3")
E2010 = define("E2010", 400,
               "状态码 {value} 无效。可用：N 正常、F 停运、M 维护、S 手工、D 故障、C 校准、T 超限、B 通讯异常。",
               "Status {value} is invalid. Use N normal, F stopped, M maintenance, S manual, D fault, "
               "C calibration, T over limit, B communication fault.", "R-8.2.1.3")
E2011 = define("E2011", 400, "sourceId {value} 格式错误：应为 1–64 个字符 A–Z a–z 0–9 . _ : -。",
               "sourceId {value} is malformed: use 1–64 characters A–Z a–z 0–9 . _ : -.", "interfaces.md §1")
E2012 = define("E2012", 400, "数据源 {source} 已停用，数据未接收。请先启用该数据源。",
               "Data source {source} is disabled; nothing was stored. Enable it first.", "R-5.2.3.2")
E2013 = define("E2013", 400, "记录应为 JSON 对象，收到的是 {got}。",
               "A record must be a JSON object; got {got}.", "R-9.2.1")
E2015 = define("E2015", 400, "backfill 应为 true 或 false。", "backfill must be true or false.", "R-6.2.e")
E2016 = define("E2016", 400, "数据项 {code} 已停用，不再接收数据。", "Data item {code} is retired and takes no data.",
               "R-6.3")
E2017 = define("E2017", 400, "日期 {value} 无效，应为 YYYY-MM-DD。", "Date {value} is invalid; use YYYY-MM-DD.",
               "R-9.2.1")
E2018 = define("E2018", 400, "文本值过长（{length} 字符，上限 {limit}）。",
               "Text value too long ({length} characters, limit {limit}).", "R-9.2.1")

E4001 = define("E4001", 200, "与已存储的读数重复（同一数据源、编码与时间），保留首个有效值。",
               "Repeats a stored reading (same source, code and time); the first valid value is kept.",
               "R-8.4.2.4")
E4002 = define("E4002", 200, "与本批次中之前的记录重复，保留首个有效值。",
               "Repeats an earlier record of this batch; the first valid value is kept.", "R-9.3.1")
