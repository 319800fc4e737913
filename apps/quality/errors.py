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

# Checks after storage (R-9.2.2, apps/quality/postchecks.py): not refusals (the readings are stored), the codes
# of the alarms a run raises; {count} readings of the source were found suspect by the rule {rule}.
E3010 = define("E3010", 422, "存储后检查：{count} 个读数相对前一读数跳变超出规则“{rule}”的限值，已标记为可疑。"
               "请在读数浏览中核对（标志“存储后检查”）。",
               "Post check: {count} readings jumped from the reading before by more than rule \"{rule}\" allows; "
               "marked suspect. Review them in the readings browser (flag \"post check\").", "R-9.2.2")
E3011 = define("E3011", 422, "存储后检查：{count} 个读数属于连续相同的非零读数（规则“{rule}”），疑似数据冻结，"
               "已标记为可疑。请检查仪表或采集链路。",
               "Post check: {count} readings are part of a run of identical non-zero readings (rule \"{rule}\"): "
               "the value looks frozen; marked suspect. Check the meter or the collection path.", "R-9.2.2")
E3012 = define("E3012", 422, "存储后检查：{count} 个读数偏离滚动均值超出规则“{rule}”的限值（统计离群），"
               "已标记为可疑。",
               "Post check: {count} readings are statistical outliers against the rolling window of rule "
               "\"{rule}\"; marked suspect.", "R-9.2.2")

# Filling gaps (R-9.3.2.1, apps/quality/filling): a person's actions on the list of gaps.
E3030 = define("E3030", 404, "缺口 {id} 不存在或不在您的园区范围内。",
               "Gap {id} does not exist or is not in your parks.", "R-9.1.2")
E3031 = define("E3031", 409, "缺口当前状态为“{state}”，只有未处理的缺口才能补齐或忽略。",
               "The gap is {state}; only an open gap can be filled or ignored.", "R-9.3.2.1")
