"""Rule-library codes (E3xxx): a record broke a rule configured for its park, source or item."""

from apps.core.errors import define

E3001 = define("E3001", 400, "数值 {value} 超出允许范围 [{min}, {max}]。请检查仪表读数或单位后重发。",
               "Value {value} is outside the allowed range [{min}, {max}]. Check the meter reading or unit, "
               "then resend.", "R-9.2.1")
E3002 = define("E3002", 400, "缺少必填字段 {field}。请补齐后重发。",
               "Required field {field} is missing. Add it and resend.", "R-9.2.1")
E3003 = define("E3003", 400, "值 {value} 不在允许的取值 {allowed} 中。",
               "Value {value} is not one of the allowed values {allowed}.", "R-9.2.1")
E3004 = define("E3004", 400, "数值 {value} 不符合精度 {step}。",
               "Value {value} does not match the precision {step}.", "R-9.1.3")
E3005 = define("E3005", 400, "值 {value} 不符合格式要求 {pattern}。",
               "Value {value} does not match the required format {pattern}.", "R-9.2.1")
E3006 = define("E3006", 400, "采集时间 {timestamp} 晚于当前时间超过 {tolerance} 秒。请校准设备时钟。",
               "Collection time {timestamp} is more than {tolerance} s in the future. Set the device clock.",
               "R-9.2.1")
