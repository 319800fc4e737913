"""The host's answers (HJ 212-2017 6.5, Appendix C): 9011, 9012, 9013 and 9014."""

from __future__ import annotations

from .constants import (
    CN_DATA_ANSWER,
    CN_EXECUTION_RESULT,
    CN_NOTIFICATION_ANSWER,
    CN_REQUEST_ANSWER,
    E_CN,
    E_CRC,
    EXERTN_SUCCESS,
    INTERACTION_CNS,
    NOTIFICATION_CNS,
    QNRTN_CN,
    QNRTN_CRC,
    QNRTN_READY,
    QNRTN_REJECTED,
    ST_INTERACTION,
    UPLOAD_CNS,
    VERSION_2017,
)
from .segment import Hj212Error, Packet

# --- answers (6.5, Appendix C) --------------------------------------------------------------------

def _answer(request: Packet, cn: str, cp: str) -> Packet:
    version = request.version if request.flag is not None else VERSION_2017
    return Packet(cn=cn, mn=request.mn, cp=cp, st=ST_INTERACTION, pw=request.pw, qn=request.qn,
                  flag=version << 2)


def data_answer(upload: Packet) -> Packet:
    """CN 9014 data answer (6.5.1): same QN, ST=91, the peer's version bits without A, ``CP=&&&&``."""
    return _answer(upload, CN_DATA_ANSWER, "")


def request_answer(request: Packet, qn_rtn: int = QNRTN_READY) -> Packet:
    """CN 9011 request answer with QnRtn (6.5.1, Table 7)."""
    return _answer(request, CN_REQUEST_ANSWER, f"QnRtn={qn_rtn}")


def execution_result(request: Packet, exe_rtn: int = EXERTN_SUCCESS) -> Packet:
    """CN 9012 execution result with ExeRtn (6.5.1, Table 6)."""
    return _answer(request, CN_EXECUTION_RESULT, f"ExeRtn={exe_rtn}")


def notification_answer(notification: Packet) -> Packet:
    """CN 9013 notification answer (6.5.2)."""
    return _answer(notification, CN_NOTIFICATION_ANSWER, "")


def answers_for(packet: Packet | Hj212Error) -> list[Packet]:
    """What the host sends back (6.5): nothing unless Flag.A is set; 9014 for uploads, 9013 for
    notifications, 9011 QnRtn=8 for an unsupported CN, 9011 QnRtn=9 for a request whose CRC failed,
    and for other requests 9011 QnRtn=2 (rejected: the platform is the host and carries out no field
    commands, so no 9012 follows). A data upload whose CRC failed gets no answer, so the station resends."""
    if isinstance(packet, Hj212Error):
        p = packet.packet
        if p is None or not p.ack_requested:
            return []
        if packet.code == E_CN:
            return [request_answer(p, QNRTN_CN)]
        if packet.code == E_CRC and p.cn not in UPLOAD_CNS:
            return [request_answer(p, QNRTN_CRC)]
        return []
    if not packet.ack_requested or packet.cn in INTERACTION_CNS:
        return []
    if packet.cn in UPLOAD_CNS:
        return [data_answer(packet)]
    if packet.cn in NOTIFICATION_CNS:
        return [notification_answer(packet)]
    return [request_answer(packet, QNRTN_REJECTED)]
