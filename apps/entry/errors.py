"""Manual-entry codes (E8xxx): form definitions (E82xx) and the values of a filled form (E81xx), R-7.3.1.

A value error names its field by path (``fuels[2].amount``); the page shows it at that field."""

from apps.core.errors import define

# --- definitions (a park administrator's or integrator's form) -----------------------------------------
E8201 = define("E8201", 400, "表单定义不符合格式（{path}）：{detail}。格式见 docs/form-definitions.md。",
               "The form definition does not match the format at {path}: {detail}. "
               "See docs/form-definitions.md.", "R-7.3.1")
E8202 = define("E8202", 400, "字段键 {key} 在表单中出现了不止一次。每个字段和分组的键须唯一。",
               "The key {key} is used more than once in the form. Every field and section key must be unique.",
               "R-7.3.1")
E8203 = define("E8203", 400, "字段 {key} 引用的数据编码 {item} 不在数据目录中（或已停用、不属于本园区）。",
               "Field {key} names the data item {item}, which is not in the catalog (or inactive, or another "
               "park's).", "R-6.3")
E8204 = define("E8204", 400, "{path} 处的表达式无法使用：{detail}。可用的运算符见 docs/form-definitions.md。",
               "The expression at {path} cannot be used: {detail}. The allowed operators are listed in "
               "docs/form-definitions.md.", "R-7.3.1")
E8205 = define("E8205", 400, "计算字段之间存在循环引用：{keys}。",
               "Calculated fields refer to each other in a circle: {keys}.", "R-7.3.1")
E8206 = define("E8206", 400, "字段 {key}：{detail}。",
               "Field {key}: {detail}.", "R-7.3.1")
E8207 = define("E8207", 409, "表单编码 {code} 已被使用。请换一个编码。",
               "The form code {code} is taken already. Choose another code.", "R-7.3.1")

# --- the designer's page and JSON views (E829x kept for them) --------------------------------------------
E8291 = define("E8291", 404, "表单 {id} 不存在。请从“表单”列表打开设计器。",
               "Form {id} does not exist. Open the designer from the list of forms.", "R-7.3.1")
E8292 = define("E8292", 403, "您无权设计表单 {code}：只有该表单所属园区的管理员"
               "（平台默认表单：系统管理员）可以设计和发布。",
               "You may not design the form {code}: only administrators of its park (for the platform's default "
               "forms: system administrators) design and publish it.", "R-7.1.2")

# --- values of a filled form ------------------------------------------------------------------------------
E8101 = define("E8101", 400, "请填写此项。", "This field is required.", "R-7.3.1.2")
E8102 = define("E8102", 400, "应为数字，收到的是{got_zh}。", "A number is expected; got {got}.", "R-7.3.1.2")
E8103 = define("E8103", 400, "数值 {value} 小于下限 {min}。", "The value {value} is below the minimum {min}.",
               "R-7.3.1.2")
E8104 = define("E8104", 400, "数值 {value} 大于上限 {max}。", "The value {value} is above the maximum {max}.",
               "R-7.3.1.2")
E8105 = define("E8105", 400, "数值 {value} 不符合精度 {step}（应为 {step} 的整数倍）。",
               "The value {value} does not match the precision {step} (a multiple of {step} is expected).",
               "R-9.1.3")
E8106 = define("E8106", 400, "{value} 不是可选值之一。", "{value} is not one of the choices.", "R-7.3.1.2")
E8107 = define("E8107", 400, "文字过长：{length} 个字符，上限 {limit}。",
               "The text is too long: {length} characters, limit {limit}.", "R-7.3.1.2")
E8108 = define("E8108", 400, "应为日期 YYYY-MM-DD。", "A date YYYY-MM-DD is expected.", "R-7.3.1.2")
E8109 = define("E8109", 400, "应为带时区的日期时间（ISO 8601，如 2026-01-31T08:00:00+08:00）。",
               "A date and time with its offset is expected (ISO 8601, e.g. 2026-01-31T08:00:00+08:00).",
               "R-7.3.1.2")
E8110 = define("E8110", 400, "应为文字，收到的是{got_zh}。", "Text is expected; got {got}.", "R-7.3.1.2")
E8111 = define("E8111", 400, "文字中不能含有 NUL 字符或不成对的代理项。",
               "The text must not contain NUL characters or unpaired surrogates.", "R-9.2.1")
E8112 = define("E8112", 400, "数值必须是有限的数字（不接受 NaN、Infinity 或超出范围的数）。",
               "The number must be finite (NaN, Infinity and numbers out of range are not accepted).", "R-9.2.1")
E8113 = define("E8113", 400, "行数 {count} 少于下限 {min}。", "{count} rows, fewer than the minimum {min}.",
               "R-7.3.1.2")
E8114 = define("E8114", 400, "行数 {count} 超过上限 {max}。", "{count} rows, more than the maximum {max}.",
               "R-7.3.1.2")
E8115 = define("E8115", 400, "表单中没有字段 {key}，该值被忽略。",
               "The form has no field {key}; the value was ignored.", "R-7.3.1.2")
E8116 = define("E8116", 400, "应为一组行（数组），每行是一个对象。", "A list of rows is expected, each row an object.",
               "R-7.3.1.2")
E8117 = define("E8117", 400, "表单的值应为 JSON 对象。", "The form's values must be a JSON object.", "R-7.3.1.2")
E8118 = define("E8118", 400, "附件应为已上传证明文件的编号。", "An attachment must name an uploaded evidence file.",
               "R-6.5")
E8119 = define("E8119", 400, "无法计算此项：{detail}。", "This cannot be computed: {detail}.", "R-7.3.1.3")
E8120 = define("E8120", 400, "应为单个值，收到的是嵌套的结构。", "A single value is expected, not a nested structure.",
               "R-9.2.1")
E8121 = define("E8121", 400, "表单约束未满足。", "A constraint of the form is not met.", "R-7.3.1.3")

# --- Excel templates and exports (R-7.3.4) ------------------------------------------------------------------
E8401 = define("E8401", 400, "文件不是可读取的 Excel 工作簿（.xlsx）：{detail}。请用下载的模板填写后上传。",
               "The file is not a readable Excel workbook (.xlsx): {detail}. Fill in the downloaded template and "
               "upload it.", "R-7.3.4")
E8402 = define("E8402", 413, "文件过大：{size} 字节，上限 {limit} 字节。",
               "The file is too large: {size} bytes, limit {limit} bytes.", "R-7.3.4")
E8403 = define("E8403", 400, "文件解压后过大（{detail}），不予读取。",
               "The file expands to too much when unpacked ({detail}); it was not read.", "R-7.3.4")
E8404 = define("E8404", 400, "此文件不是表单 {expected} 的模板（文件来自 {found}）。请下载该版本的模板重新填写。",
               "This file is not a template of form {expected} (it was made from {found}). Download the "
               "template of that version and fill it in again.", "R-7.3.4")
E8405 = define("E8405", 400, "单元格含有公式（{formula}）。公式不会被计算，请填写数值本身。",
               "The cell holds a formula ({formula}). Formulas are never evaluated: enter the value itself.",
               "R-7.3.4")
E8406 = define("E8406", 400, "缺少工作表 {sheet}。请勿删除或重命名模板中的工作表。",
               "The sheet {sheet} is missing. Do not delete or rename the template's sheets.", "R-7.3.4")
E8407 = define("E8407", 400, "第 {row} 行超出了模板允许的行范围（最多填到第 {last} 行）。",
               "Row {row} is beyond the rows the template allows (up to row {last}).", "R-7.3.4")
E8408 = define("E8408", 400, "表头被修改：应为 {expected}，实为 {found}。请勿修改模板的表头。",
               "The header was changed: {expected} is expected, {found} was found. Do not edit the template's "
               "headers.", "R-7.3.4")
E8409 = define("E8409", 400, "文件中有 {count} 处错误，未保存任何数据。请逐条改正后重新导入。",
               "The file has {count} errors; nothing was stored. Correct each of them and import it again.",
               "R-7.3.4")
E8410 = define("E8410", 400, "上传的请求中没有文件：请以 multipart 字段 file 上传 .xlsx，或以请求体直接发送。",
               "The request holds no file: upload the .xlsx as the multipart field 'file', or send it as the body.",
               "R-7.3.4")
E8411 = define("E8411", 400, "导入方式 {value} 无效：应为 check（只检查）、draft（存为草稿）或 submit（提交）。",
               "The import mode {value} is not valid: check (a dry run), draft or submit is expected.", "R-7.3.4")
# --- submissions, review and versions (E83xx) -------------------------------------------------------------
E8301 = define("E8301", 404, "找不到填报 {id}。", "Submission {id} was not found.", "R-7.3.2")
E8302 = define("E8302", 409, "填报当前为“{state}”状态，不能{verb_zh}。",
               "The submission is {state}; it cannot be {verb} now.", "R-7.3.2")
E8303 = define("E8303", 409, "编号 {number} 已被使用：园区 {park} 的填报 {first}（{form}，{period}）。"
               "凭证、证书和备案编号在平台上只能使用一次。",
               "The number {number} is taken already: submission {first} of park {park} ({form}, {period}). "
               "Voucher, certificate and filing numbers may be used once on the platform.", "R-6.5")
E8304 = define("E8304", 400, "填报有 {count} 处错误，未提交。请按字段旁的提示修改。",
               "The submission has {count} error(s) and was not submitted. Correct the fields marked.",
               "R-7.3.1.2")
E8305 = define("E8305", 400,
               "周期 {value} 不符合表单的周期（按{period_zh}）：请填写 {form}，或该周期第一天的日期 YYYY-MM-DD。",
               "The period {value} does not fit the form's period ({period}): give {form}, or the date YYYY-MM-DD of "
               "the period's first day.", "R-7.3.1.2")
E8306 = define("E8306", 403, "不能审核自己提交的填报。", "Nobody reviews their own submission.", "R-7.3.2")
E8307 = define("E8307", 400, "缺少证明文件，或证明文件不属于本填报。", "Evidence is missing, or the file named is not "
               "one of this submission's.", "R-6.5")
E8308 = define("E8308", 409, "已入库的 {path} 不能在此修改或清除（只有数值可以通过更正修改）。",
               "{path} is stored already and cannot be changed or cleared here (only numbers can be changed, "
               "through a correction).", "R-7.3.2")
E8309 = define("E8309", 409, "本园区此表单 {period} 的填报已存在（填报 {first}）。",
               "This park's submission of this form for {period} exists already (submission {first}).",
               "R-7.3.1.2")
E8310 = define("E8310", 400, "请填写意见（不超过 {limit} 个字符，不含控制字符）。",
               "Enter a comment (at most {limit} characters, no control characters).", "R-7.3.2")
E8311 = define("E8311", 404, "找不到可填写的表单 {code}。", "No form {code} you may fill was found.", "R-7.3.1.2")
E8312 = define("E8312", 400, "{path} 的值入库时被拒绝：{detail}", "The value of {path} was refused at storage: "
               "{detail}", "R-9.2.1")
E8313 = define("E8313", 404, "找不到填报的第 {version} 版。", "Version {version} of the submission was not found.",
               "R-7.3.2")
E8314 = define("E8314", 400, "请求体过大或结构过深。", "The request body is too large or too deeply nested.",
               "R-9.2.1")
E8315 = define("E8315", 400, "{item} 的数值须附证明文件（检测报告、证书或备案文件）：请在此栏或整份填报上传。",
               "A value of {item} needs its supporting document (a test report, certificate or filing): attach one "
               "to this field or to the whole submission.", "R-6.3/6.4/6.5")
