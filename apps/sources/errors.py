"""Codes of device-state alarms (E6xxx)."""

from apps.core.errors import define

E6001 = define("E6001", 200, "数据源 {source} 离线（遗嘱消息或状态上报）。请检查设备供电与网络。",
               "Data source {source} went offline (Last Will or status report). Check the device's power "
               "and network.", "R-8.1.2.1")
E6002 = define("E6002", 200, "数据源 {source} 已超过 {seconds} 秒未上报数据（预期间隔的 3 倍）。",
               "Data source {source} has sent nothing for {seconds} s (three expected intervals).", "R-9.1.4")
