"""Record-level codes of ingestion (E2xxx format and reference checks, E4xxx repeats, E5xxx channel:
TLV, the CPE1 envelope, MQTT payloads and topics).

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
E2019 = define("E2019", 400, "该记录不是有效的 JSON（{detail}），未接收；同批其他记录已单独读取。"
               "记录应为一层 JSON 对象，数字不超过 4 000 位。",
               "This record is not valid JSON ({detail}); it was not stored, the other records of the batch "
               "were read on their own. A record is a flat JSON object with numbers of at most 4 000 digits.",
               "R-9.2.1")
E2020 = define("E2020", 400, "数值 {value}（{unit}）超出可存储范围：换算为 {expected} 后不是有限的双精度数"
               "（绝对值上限约 1.8e308）。请检查读数和单位。",
               "Value {value} ({unit}) is out of range: converted to {expected} it is not a finite double "
               "(magnitude at most about 1.8e308). Check the reading and its unit.", "R-9.2.1")
E2021 = define("E2021", 400, "采集时间 {value} 超出可接受范围（UTC {earliest} 至 {latest}）。请校准设备时钟。",
               "Timestamp {value} is outside the accepted range (UTC {earliest} to {latest}). Check the "
               "device's clock.", "R-5.2.3.5")
E2022 = define("E2022", 400, "平台处理该记录时出错（{detail}），记录已作为拒收保存，同批其他记录不受影响。"
               "请将批次编号告知平台运维。",
               "The platform failed while processing this record ({detail}); it is kept as a rejection and the "
               "other records of the batch are unaffected. Report the batch to the platform's operator.",
               "R-9.3.1")
E2023 = define("E2023", 400, "文本值含有无法存储的字符（NUL 或不成对的代理项 {detail}）。请去掉这些字符后重发。",
               "The text value holds a character that cannot be stored (NUL or an unpaired surrogate, "
               "{detail}). Remove it and resend.", "R-9.2.1")

E4001 = define("E4001", 200, "与已存储的读数重复（同一数据源、编码与时间），保留首个有效值。",
               "Repeats a stored reading (same source, code and time); the first valid value is kept.",
               "R-8.4.2.4")
E4002 = define("E4002", 200, "与本批次中之前的记录重复，保留首个有效值。",
               "Repeats an earlier record of this batch; the first valid value is kept.", "R-9.3.1")

# TLV frames (interfaces.md §4). {index}: the record's position in the frame, from 0; {detail}: what was found.
E5001 = define("E5001", 400, "TLV 帧中第 {index} 条记录（从 0 计）的 CRC-32 校验和不符，该记录未接收，"
               "同一帧的其他记录照常处理。请检查链路与编码后重发该记录。",
               "Record {index} of the TLV frame (counting from 0) failed its CRC-32 checksum and was not accepted; "
               "the frame's other records were processed. Check the link and the encoder, then resend that "
               "record.", "R-5.2.2.5")
E5002 = define("E5002", 400, "TLV 帧在第 {index} 条记录中途结束（缺少数据或校验项 0x0F），"
               "该记录未接收。请重发完整的帧。",
               "The TLV frame ends in the middle of record {index} (data or its 0x0F checksum item is missing); "
               "that record was not accepted. Resend the complete frame.", "interfaces.md §4")
E5003 = define("E5003", 400, "TLV 第 {index} 条记录中有长度或编码错误的数据项：{detail}。"
               "定长项：dataCode 8 字节 ASCII，timestamp 与数值各 8 字节，flags 1 字节；"
               "文本为 UTF-8，status 为 ASCII。",
               "An item of TLV record {index} has a wrong length or encoding: {detail}. Fixed sizes: dataCode 8 "
               "ASCII bytes, timestamp and numeric value 8 bytes each, flags 1 byte; text is UTF-8, status ASCII.",
               "interfaces.md §4")
E5004 = define("E5004", 400, "TLV 第 {index} 条记录不完整：{detail}。每条记录须包含 sourceId（0x01）、timestamp（0x03）"
               "和一个值（0x04 数值或 0x05 文本）。",
               "TLV record {index} is incomplete: {detail}. Every record needs sourceId (0x01), timestamp (0x03) "
               "and one value (0x04 number or 0x05 text).", "interfaces.md §4")

# Encryption envelope CPE1 (interfaces.md §5).
E5101 = define("E5101", 400, "加密信封格式错误：{detail}。格式为 “CPE1” · 内容类型（1 字节）· 密钥编号长度（1 字节）· "
               "密钥编号（ASCII）· 随机数（12 字节）· 密文及 16 字节 GCM 标签。",
               "The encryption envelope is malformed: {detail}. The layout is 'CPE1' · content type (1 byte) · "
               "key-id length (1 byte) · key id (ASCII) · nonce (12 bytes) · ciphertext with its 16-byte GCM tag.",
               "interfaces.md §5")
E5102 = define("E5102", 400, "密钥编号 {key_id} 不是该数据源可用的密钥（未知或已停用）。请向平台获取当前密钥"
               "（rotate_key 命令或重新配置）后，用它加密重发。",
               "Key id {key_id} is not a key of this source (unknown or retired). Ask the platform for the "
               "current key (rotate_key command or re-provisioning), then encrypt with it and resend.", "R-5.2.2.6")
E5103 = define("E5103", 400, "解密失败：密钥不对、数据在传输中被改动，或该密文是以另一个数据源的 sourceId 加密的。"
               "请用本数据源的当前密钥、以本数据源的 sourceId 作关联数据重新加密后重发。",
               "Decryption failed: wrong key, bytes altered in transit, or sealed under another source's id. "
               "Encrypt again with this source's current key and its own sourceId as associated data, then resend.",
               "R-8.2.2.2")
E5104 = define("E5104", 400, "数据源 {source} 要求应用层加密，明文数据未接收。"
               "请用 CPE1 加密信封（AES-256-GCM）封装后重发。",
               "Data source {source} requires application-layer encryption; the plaintext was refused. Wrap the "
               "payload in a CPE1 envelope (AES-256-GCM) and resend.", "R-8.2.2.2")
E5105 = define("E5105", 400, "加密信封的内容类型不受支持。可用：0x01 JSON、0x02 TLV、0x03 文件。",
               "The envelope's content type is not supported. Use 0x01 JSON, 0x02 TLV or 0x03 file.",
               "interfaces.md §5")

# MQTT channel (interfaces.md §2).
E5201 = define("E5201", 400, "MQTT 消息过大（{size} 字节，上限 {limit} 字节），未接收。请拆成多条消息发送。",
               "The MQTT payload is too large ({size} bytes, limit {limit}) and was not accepted. Split it into "
               "several messages.", "interfaces.md §2")
E5202 = define("E5202", 400, "记录的 sourceId {source} 与主题中的数据源 {topic_source} 不一致，未接收："
               "设备只能发布自己的数据。请在该记录数据源自己的主题下发布，或更正 sourceId。",
               "The record's sourceId {source} differs from the topic's {topic_source} and was not accepted: a "
               "device may publish only its own data. Publish under that source's own topic, or correct the "
               "sourceId.", "interfaces.md §2")
E5203 = define("E5203", 400, "无法识别的主题 {topic}。"
               "应为 carbonpark/<园区编码>/<sourceId>/data、/tlv、/status 或 /cmd/ack。",
               "Topic {topic} is not understood. Use carbonpark/<parkCode>/<sourceId>/data, /tlv, /status or "
               "/cmd/ack.", "interfaces.md §2")
E5204 = define("E5204", 400, "消息无法处理（{detail}），已作为拒收记录原样保存（含原始字节）并确认，后续消息照常处理。"
               "请按接口规范检查该消息；如确认消息无误，请将此编码与时间告知平台运维人员。",
               "The message could not be processed ({detail}); it was kept as a rejection with its exact bytes and "
               "acknowledged, and the messages after it were processed. Check it against the interface contract; "
               "if it is valid, report this code and its time to the platform's operators.", "R-9.3.1")
E5205 = define("E5205", 400, "JSON 嵌套过深（超过 {limit} 层），未接收。记录应为扁平的 JSON 对象（或对象数组）。",
               "The JSON is nested too deeply (more than {limit} levels) and was not accepted. A record is a flat "
               "JSON object, or an array of them.", "interfaces.md §1")

# HJ 212 listener (HJ 212-2017). {detail}: what was found.
E7001 = define("E7001", 400, "HJ 212 通讯包的帧格式或长度错误：{detail}。"
               "通讯包应为 “##” · 4 位十进制数据段长度（字节）· 数据段 · 4 位十六进制 CRC · 回车换行；"
               "请核对长度字段后重发。",
               "The HJ 212 packet's framing or length is wrong: {detail}. A packet is '##' · 4 decimal digits "
               "(data segment bytes) · data segment · 4 hex digits of CRC · CR LF; check the length field and "
               "resend.", "HJ 212-2017 6.3.1")
E7002 = define("E7002", 400, "HJ 212 通讯包的 CRC 校验不符（{detail}），数据未接收。请按标准附录 A 的算法"
               "计算数据段的 CRC（高字节在前）后重发。",
               "The HJ 212 packet failed its CRC check ({detail}); nothing was stored. Compute the CRC of the data "
               "segment with the algorithm of Appendix A (high byte first) and resend.", "HJ 212-2017 Appendix A")
E7003 = define("E7003", 400, "HJ 212 数据段或数据区格式错误：{detail}。数据段为 QN=…;ST=…;CN=…;PW=…;MN=…;Flag=…;"
               "CP=&&…&&，数据区中不同监测项以 “;” 分隔、同一项的字段以 “,” 分隔，均为 key=value。",
               "The HJ 212 data segment or data area is malformed: {detail}. The segment is QN=…;ST=…;CN=…;PW=…;"
               "MN=…;Flag=…;CP=&&…&&, and in the data area items are separated by ';' and fields of one item by "
               "',', each key=value.", "HJ 212-2017 6.3.2")
E7004 = define("E7004", 400, "HJ 212 命令编码 CN={cn} 不受支持。平台接收 2011 实时数据、2051 分钟数据、2061 小时数据、"
               "2031 日数据等上传命令；请检查 CN。",
               "HJ 212 command code CN={cn} is not supported. The platform takes uploads such as 2011 real-time, "
               "2051 minute, 2061 hour and 2031 day data; check the CN.", "HJ 212-2017 Table 9")
E7005 = define("E7005", 400, "设备唯一标识 MN={mn} 未登记到任何数据源，数据未接收。请在平台的数据源设置中填写该 MN"
               "（settings.hj212.mn），或更正设备的 MN。",
               "Device id MN={mn} is not registered to any data source; nothing was stored. Enter this MN in the "
               "source's settings (settings.hj212.mn) on the platform, or correct the device's MN.",
               "HJ 212-2017 6.3.2")
E7006 = define("E7006", 400, "监测因子编码 {code} 未映射到数据目录中的数据编码，该因子的数据未接收。请在平台为该园区"
               "登记此因子的映射，或检查设备的因子编码。",
               "Pollutant code {code} is not mapped to a catalog data code, so its values were not stored. "
               "Register a mapping for it for this park, or check the device's factor codes.",
               "HJ 212-2017 Appendix B")
E7007 = define("E7007", 400, "HJ 212 分包数据未收齐，已丢弃已收到的部分：{detail}。请重发全部分包（PNUM/PNO）。",
               "A split HJ 212 packet was never completed and the parts received were dropped: {detail}. Resend "
               "every part (PNUM/PNO).", "HJ 212-2017 6.3.2")

E7101 = define("E7101", 400, "DL/T 645 帧校验和错误（{detail}），该帧被丢弃。请检查 RS-485 接线、波特率与干扰。",
               "DL/T 645 frame checksum failed ({detail}); the frame was dropped. Check the RS-485 wiring, baud rate "
               "and interference.", "DL/T 645-2007 7.1")
E7102 = define("E7102", 400, "DL/T 645 帧不完整、长度错误或数值非 BCD（{detail}）。",
               "DL/T 645 frame truncated, of a wrong length, or with a non-BCD value ({detail}).", "DL/T 645-2007 7.1")
E7103 = define("E7103", 400, "电能表 {address} 返回异常应答：{detail}。请确认该表支持所读数据标识。",
               "Meter {address} answered with an error: {detail}. Check that the meter supports the identifier read.",
               "DL/T 645-2007 7.3")
E7104 = define("E7104", 400, "DL/T 645 数据标识 {detail} 未知，平台无法换算。请在数据源设置中改用已支持的标识。",
               "DL/T 645 data identifier {detail} is unknown to the platform. Use a supported identifier in the "
               "source's settings.", "DL/T 645-2007 附录 A")
E7201 = define("E7201", 400, "Modbus 设备 {unit} 无应答或应答异常（{detail}），已按退避策略暂停轮询。",
               "Modbus device {unit} did not answer or answered with an exception ({detail}); it is backed off.",
               "R-5.2.1.3")
E7202 = define("E7202", 400, "轮询设备 {source} 时发生意外错误（{detail}），本设备已按退避策略暂停，同一轮询周期的"
               "其他设备照常读取。请检查该设备的设置与应答。",
               "Polling device {source} failed unexpectedly ({detail}); it is backed off and the other devices of "
               "the cycle were read. Check the device's settings and answers.", "R-5.2.1.3")
