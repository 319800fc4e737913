"""Codes of device-state alarms (E6xxx)."""

from apps.core.errors import define

E6001 = define("E6001", 200, "数据源 {source} 离线（遗嘱消息或状态上报）。请检查设备供电与网络。",
               "Data source {source} went offline (Last Will or status report). Check the device's power "
               "and network.", "R-8.1.2.1")
E6002 = define("E6002", 200, "数据源 {source} 已超过 {seconds} 秒未上报数据（预期间隔的 3 倍）。",
               "Data source {source} has sent nothing for {seconds} s (three expected intervals).", "R-9.1.4")
E6003 = define("E6003", 200, "设备 {source} 连续 {failures} 次采集失败（网关 {gateway}），最近错误 {code}：{detail}。"
               "请检查该设备的供电、接线、通信地址与参数。",
               "Device {source} failed {failures} polls in a row (gateway {gateway}); last error {code}: {detail}. "
               "Check the device's power, wiring, address and settings.", "R-8.1.2.1")
E6004 = define("E6004", 200, "数据源 {source} 自 {registered} 注册以来从未上报数据"
               "（已超过预期间隔的 3 倍，{seconds} 秒）。请检查设备或网关是否已接入、配置是否正确。",
               "Data source {source} has never reported since it was registered at {registered} (more than three "
               "expected intervals, {seconds} s). Check that the device or its gateway is connected and configured.",
               "R-9.1.4")
E6005 = define("E6005", 200, "MQTT 代理拒绝了网关 {gateway} 为 {source} 发布的数据"
               "（原因码 {reason_code} {reason}），数据保留在网关缓存中。请确认该数据源已登记在此网关下，"
               "用 manage.py mosquitto_acl 重新生成 ACL 并重载 Mosquitto。",
               "The MQTT broker refused the data gateway {gateway} published for {source} (reason code "
               "{reason_code} {reason}); the readings stay in the gateway's buffer. Register the source behind this "
               "gateway, regenerate the ACL with manage.py mosquitto_acl and reload Mosquitto.", "R-8.4.2.4")
E6006 = define("E6006", 200, "网关 {gateway} 缓存已满，丢弃了 {count} 条未发送的数据（最早的先丢弃）。"
               "请尽快恢复网络连接或扩大缓存。",
               "Gateway {gateway}'s buffer was full and dropped {count} unsent readings (oldest first). Restore "
               "its connection or enlarge its buffer.", "R-5.2.1.5")
E6201 = define("E6201", 200, "边缘网关读取设备 {source} 失败：{detail}。",
               "The edge gateway could not read device {source}: {detail}.", "R-5.2.1.3")
