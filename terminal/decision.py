"""What a gate or validator shows: open or closed, why, how much, what is left."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


class Reason(enum.StrEnum):
    OK = "ok"
    RECOVERED = "recovered"
    FREE = "free"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    CARD_EXPIRED = "card_expired"
    CARD_NOT_YET_VALID = "card_not_yet_valid"
    NOT_SOCIAL_SECURITY_CARD = "not_social_security_card"
    PURSE_EXPIRED = "purse_expired"
    DENY_LISTED = "deny_listed"
    PURSE_BLOCKED = "purse_blocked"
    PIN_BLOCKED = "pin_blocked"
    AUTH_FAILED = "auth_failed"
    ANTI_PASSBACK = "anti_passback"
    REPEATED_TAP = "repeated_tap"
    MULTIPLE_CARDS = "multiple_cards"
    DAILY_LIMIT = "daily_limit"
    NO_ENTRY = "no_entry"
    TORN_RETRY = "torn_retry"
    CARD_REMOVED = "card_removed"
    CARD_ERROR = "card_error"
    PSAM_UNAVAILABLE = "psam_unavailable"  # a station's PSAM left mid-tap or none was free (docs/station.md)
    NO_PSAM_FOR_CARD = "no_psam_for_card"  # no PSAM kind of this terminal serves the card's issuer


TEXT: dict[Reason, tuple[str, str]] = {
    Reason.OK: ("请通行", "Please pass"),
    Reason.RECOVERED: ("交易已完成，请通行", "Transaction completed, please pass"),
    Reason.FREE: ("免费通行", "Free entry"),
    Reason.INSUFFICIENT_BALANCE: ("余额不足", "Insufficient balance"),
    Reason.CARD_EXPIRED: ("卡已过期", "Card expired"),
    Reason.CARD_NOT_YET_VALID: ("卡未启用", "Card not yet valid"),
    Reason.NOT_SOCIAL_SECURITY_CARD: ("请使用社保卡", "Social security card required"),
    Reason.PURSE_EXPIRED: ("钱包已过期", "Purse expired"),
    Reason.DENY_LISTED: ("黑名单卡，已锁定", "Card deny-listed and blocked"),
    Reason.PURSE_BLOCKED: ("卡已锁定", "Card blocked"),
    Reason.PIN_BLOCKED: ("密码已锁定", "PIN blocked"),
    Reason.AUTH_FAILED: ("非法卡", "Card authentication failed"),
    Reason.ANTI_PASSBACK: ("请勿重复进站", "Already inside (anti-passback)"),
    Reason.REPEATED_TAP: ("已刷卡，请勿重复刷卡", "Already paid"),
    Reason.MULTIPLE_CARDS: ("请单张刷卡", "One card at a time"),
    Reason.DAILY_LIMIT: ("今日入园次数已满", "Daily entry limit reached"),
    Reason.NO_ENTRY: ("无进站记录，按最高票价扣费", "No entry record: maximum fare"),
    Reason.TORN_RETRY: ("请重新刷卡", "Please tap the card again"),
    Reason.CARD_REMOVED: ("读卡失败，请重刷", "Card removed, tap again"),
    Reason.CARD_ERROR: ("读卡错误", "Card error"),
    Reason.PSAM_UNAVAILABLE: ("设备忙，请重刷", "PSAM unavailable, tap again"),
    Reason.NO_PSAM_FOR_CARD: ("此卡不能在本机使用", "Card not accepted at this terminal"),
}


#: a deny-listed card the terminal could not block (its PSAM holds no maintenance key of the card's
#: issuer: a visitor's card): refused all the same
NOT_BLOCKED_TEXT = ("黑名单卡", "Card deny-listed (not blocked)")


@dataclass(frozen=True)
class Decision:
    open: bool
    reason: Reason
    time: datetime
    terminal: str
    card: str = ""  # masked application serial
    amount: int = 0
    balance: int | None = None
    journal_id: int | None = None
    detail: str = ""
    #: a deny-listed card: whether the terminal blocked its purse (None for every other decision)
    blocked: bool | None = None

    @property
    def _texts(self) -> tuple[str, str]:
        return NOT_BLOCKED_TEXT if self.reason is Reason.DENY_LISTED and self.blocked is False else TEXT[self.reason]

    @property
    def text_zh(self) -> str:
        return self._texts[0]

    @property
    def text_en(self) -> str:
        return self._texts[1]

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time.isoformat(), "terminal": self.terminal, "card": self.card,
            "decision": "open" if self.open else "closed", "reason": self.reason.value,
            "amount": self.amount, "balance": self.balance, "text_zh": self.text_zh, "text_en": self.text_en,
            "journal_id": self.journal_id, "detail": self.detail,
            **({} if self.blocked is None else {"blocked": self.blocked}),
        }

    def line(self, paint: Callable[[str, bool], str] | None = None) -> str:
        """One line for a display or a log; ``paint(state, open)`` may colour the state word."""
        yuan = f"¥{self.amount / 100:.2f}"
        bal = f"balance {self.balance} fen (¥{self.balance / 100:.2f})" if self.balance is not None else ""
        state = "OPEN  " if self.open else "CLOSED"
        if paint is not None:
            state = paint(state, self.open)
        return (f"{self.time:%H:%M:%S} {self.terminal:<12} {self.card:<22} {state} {self.amount:>5} fen {yuan:>8}"
                f"  {bal}  {self.reason.value}: {self.text_zh} / {self.text_en}")


def mask_serial(serial: bytes) -> str:
    """Application serial for displays and logs: region kept, middle hidden."""
    text = serial.hex().upper()
    return text[:4] + "*" * (len(text) - 8) + text[-4:]
