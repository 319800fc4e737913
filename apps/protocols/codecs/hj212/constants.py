"""Constants of HJ 212-2017: error codes, framing limits, Flag bits, command codes (Table 9), QnRtn
(Table 7), ExeRtn (Table 6) and data flags (Table 8).
"""

from __future__ import annotations

E_FRAMING = "E7001"
E_CRC = "E7002"
E_SYNTAX = "E7003"
E_CN = "E7004"
E_SPLIT = "E7007"

HEADER = b"##"
TAIL = b"\r\n"
MAX_SEGMENT = 9999  # the 4-digit length field; the standard's own cap is 1024 (6.3.1), we are lenient
STANDARD_MAX_SEGMENT = 1024
STANDARD_MAX_CP = 950

# Flag bits (HJ 212-2017 6.3.2 Table 3 note): V5..V0 D A.
FLAG_A = 0x01  # answer requested
FLAG_D = 0x02  # split packet: PNUM and PNO present
VERSION_2005 = 0
VERSION_2017 = 1
VERSION_2025 = 2  # third-party implementations; unverified against the HJ 212-2025 text
VERSION_NAMES = {VERSION_2005: "HJ/T 212-2005", VERSION_2017: "HJ 212-2017", VERSION_2025: "HJ 212-2025"}

ST_INTERACTION = "91"

# Command codes (HJ 212-2017 Table 9, plus the 2025 codes seen in third-party code, protocols.md §1.8.2).
CN_REALTIME = "2011"
CN_RUN_STATUS = "2021"
CN_DAY = "2031"
CN_RUN_TIME_DAY = "2041"
CN_MINUTE = "2051"
CN_HOUR = "2061"
CN_RESTART = "2081"
CN_REQUEST_ANSWER = "9011"
CN_EXECUTION_RESULT = "9012"
CN_NOTIFICATION_ANSWER = "9013"
CN_DATA_ANSWER = "9014"
CN_HEARTBEAT = "9015"  # HJ 212-2025 (third-party)

# Uploads the host answers with 9014 when Flag.A is set (6.5, Appendix C).
UPLOAD_CNS = frozenset({"1011", "1061", "1063", "2011", "2021", "2031", "2041", "2051", "2061", "2081",
                        "3015", "3017", "3018", "3019", "3020", "1001", "2013", "2052", "2062", "2111"})
# Notifications answered with 9013 (6.5.2): time-calibration request, stop uploads, 2025 heartbeat.
NOTIFICATION_CNS = frozenset({"1013", "2012", "2022", CN_HEARTBEAT})
INTERACTION_CNS = frozenset({CN_REQUEST_ANSWER, CN_EXECUTION_RESULT, CN_NOTIFICATION_ANSWER, CN_DATA_ANSWER})
REQUEST_CNS = frozenset({"1000", "1012", "1062", "1064", "1072", "3011", "3012", "3013", "3014", "3016",
                         "3021", "1002", "1014", "3022", "3024"})
KNOWN_CNS = UPLOAD_CNS | NOTIFICATION_CNS | INTERACTION_CNS | REQUEST_CNS

# QnRtn (Table 7) and ExeRtn (Table 6).
QNRTN_READY, QNRTN_REJECTED, QNRTN_PW, QNRTN_MN, QNRTN_ST, QNRTN_FLAG, QNRTN_QN, QNRTN_CN, QNRTN_CRC = \
    1, 2, 3, 4, 5, 6, 7, 8, 9
QNRTN_UNKNOWN = 100
EXERTN_SUCCESS, EXERTN_FAILED, EXERTN_CONDITION, EXERTN_TIMEOUT, EXERTN_BUSY, EXERTN_FAULT = 1, 2, 3, 4, 5, 6
EXERTN_NO_DATA = 100

# Data flags (Table 8). HJ/T 212-2005 also used P (power failure), read here as D (fault).
DATA_FLAGS = {"N": "normal", "F": "instrument stopped", "M": "maintenance", "S": "manually set value",
              "D": "instrument fault", "C": "calibration", "T": "above measuring range",
              "B": "instrument-DAQ communication abnormal"}
_LEGACY_FLAGS = {"P": "D"}
