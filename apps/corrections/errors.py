"""Codes of corrections (E80xx): requests, evidence, decisions (R-9.3.2.2, R-9.3.2.3)."""

from apps.core.errors import define

E8001 = define("E8001", 400, "数据源 {source} 不存在或无权访问。请检查 sourceId。",
               "Data source {source} does not exist or is not yours to see. Check sourceId.", "R-9.3.2.2")
E8002 = define("E8002", 400, "数据编码 {code} 未绑定到数据源 {source}。",
               "Data code {code} is not bound to data source {source}.", "R-9.3.2.2")
E8003 = define("E8003", 400, "数据项 {code} 不是数值型，只有数值读数可以更正。",
               "Data item {code} is not numeric; only numeric readings can be corrected.", "R-9.3.2.2")
E8004 = define("E8004", 400, "时间 {field} 无效：{detail}",
               "Time {field} is invalid: {detail}", "R-9.3.2.2")
E8005 = define("E8005", 400, "开始时间晚于结束时间。范围是闭区间；更正一条读数时两者相同。",
               "start is after end. The range is inclusive; for one reading give the same time twice.",
               "R-9.3.2.2")
E8006 = define("E8006", 400, "该范围内没有可更正的数值读数。", "There is no numeric reading to correct in this range.",
               "R-9.3.2.2")
E8007 = define("E8007", 400, "该范围内有 {count} 条读数，一次更正最多 {limit} 条。请缩小范围。",
               "The range holds {count} readings; one correction may revise at most {limit}. Narrow the range.",
               "R-9.3.2.2")
E8008 = define("E8008", 400, "须且只能给出 newValue 或 factor 之一。",
               "Give exactly one of newValue and factor.", "R-9.3.2.2")
E8009 = define("E8009", 400, "{field} 的值 {value} 无效：须为有限数，绝对值不超过 {limit}。",
               "{field} {value} is invalid: it must be a finite number of magnitude at most {limit}.", "R-9.3.2.2")
E8010 = define("E8010", 400, "乘以系数后有读数超出可存储范围。请检查系数。",
               "Multiplied by the factor, a reading would leave the storable range. Check the factor.", "R-9.3.2.2")
E8011 = define("E8011", 400, "{field} 为必填项，且不能含 NUL 等控制字符（上限 {limit} 字符）。",
               "{field} is required and must not hold NUL or other control characters (at most {limit} characters).",
               "R-9.3.2.2")
E8012 = define("E8012", 400, "证明文件 {name} 不是 PDF、PNG 或 JPEG（按文件内容判断，不看文件名）。",
               "Evidence {name} is not a PDF, PNG or JPEG file (judged by its content, not its name).", "R-6.4")
E8013 = define("E8013", 400, "证明文件 {name} 过大（{size} 字节，上限 {limit} 字节）。",
               "Evidence {name} is too large ({size} bytes, limit {limit} bytes).", "R-6.4")
E8014 = define("E8014", 409, "该更正申请当前状态为 {state}，不能再{verb}。",
               "This correction is {state}; it can no longer be {verb}.", "R-9.3.2.3")
E8015 = define("E8015", 403, "不能审批自己提出的更正申请，须由园区的其他审批人处理。",
               "You cannot decide on a correction you requested; another approver of the park must.", "R-9.3.2.3")
E8016 = define("E8016", 404, "更正申请 {id} 不存在。", "Correction {id} does not exist.", "R-9.3.2.3")
E8017 = define("E8017", 400, "证明文件过多（上限 {limit} 个）。", "Too many evidence files (at most {limit}).",
               "R-6.4")
