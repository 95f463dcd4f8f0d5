"""Status words: ISO/IEC 7816-4 §5.1.3 and the PBOC / JT/T 978 purse (JR/T 0025 e-purse, 93xx/94xx).

The 61xx and 6Cxx classes are handled in one place, :mod:`cardlib.channel`.
"""

from __future__ import annotations

import enum

SW_OK = 0x9000
SUCCESS = SW_OK
SW_WARNING_EOF = 0x6282
SW_MEMORY_FAILURE = 0x6581
SW_WRONG_LENGTH = 0x6700
SW_FUNC_NOT_SUPPORTED_CLA = 0x6881
SW_WRONG_FILE_STRUCTURE = 0x6981
SW_SECURITY = 0x6982
SW_AUTH_BLOCKED = 0x6983
SW_REF_DATA_UNUSABLE = 0x6984
SW_CONDITIONS = 0x6985
SW_NO_CURRENT_EF = 0x6986
SW_SM_MISSING = 0x6987
SW_SM_MAC = 0x6988
SW_WRONG_DATA = 0x6A80
SW_FUNC_NOT_SUPPORTED = 0x6A81
SW_FILE_NOT_FOUND = 0x6A82
SW_RECORD_NOT_FOUND = 0x6A83
SW_NOT_ENOUGH_MEMORY = 0x6A84
SW_INCORRECT_P1P2 = 0x6A86
SW_REF_DATA_NOT_FOUND = 0x6A88
SW_WRONG_P1P2 = 0x6B00
SW_INS_NOT_SUPPORTED = 0x6D00
SW_CLA_NOT_SUPPORTED = 0x6E00
SW_UNKNOWN = 0x6F00
SW_MAC_INVALID = 0x9302
SW_APP_LOCKED = 0x9303
SW_INSUFFICIENT_BALANCE = 0x9401
SW_COUNTER_MAX = 0x9402
SW_KEY_INDEX = 0x9403
SW_MAC_UNAVAILABLE = 0x9406
SW_AUTH_FAILED = 0x6300

CATALOGUE: dict[int, str] = {
    0x9000: "success",
    0x6200: "warning: state of non-volatile memory unchanged",
    0x6281: "warning: part of returned data may be corrupted",
    0x6282: "warning: end of file or record reached before Le bytes",
    0x6283: "warning: selected file invalidated",
    0x6284: "warning: FCI not formatted correctly",
    0x6285: "warning: selected file in termination state",
    0x6286: "warning: no input data available from a sensor",
    0x6300: "verification failed",
    0x6381: "warning: file filled up by the last write",
    0x6400: "execution error: state of non-volatile memory unchanged",
    0x6401: "execution error: immediate response required by the card",
    0x6500: "execution error: state of non-volatile memory changed",
    0x6581: "memory failure",
    0x6700: "wrong length",
    0x6800: "functions in CLA not supported",
    0x6881: "logical channel not supported",
    0x6882: "secure messaging not supported",
    0x6883: "last command of the chain expected",
    0x6884: "command chaining not supported",
    0x6900: "command not allowed",
    0x6981: "command incompatible with file structure",
    0x6982: "security status not satisfied",
    0x6983: "authentication method blocked",
    0x6984: "reference data not usable",
    0x6985: "conditions of use not satisfied (e.g. out of sequence)",
    0x6986: "command not allowed (no current EF)",
    0x6987: "expected secure messaging data objects missing",
    0x6988: "secure messaging MAC incorrect",
    0x6A80: "incorrect parameters in the data field",
    0x6A81: "function not supported (or application blocked)",
    0x6A82: "file or application not found",
    0x6A83: "record not found",
    0x6A84: "not enough memory space in the file",
    0x6A85: "Nc inconsistent with TLV structure",
    0x6A86: "incorrect parameters P1-P2",
    0x6A87: "Nc inconsistent with parameters P1-P2",
    0x6A88: "referenced data or reference data not found",
    0x6A89: "file already exists",
    0x6A8A: "DF name already exists",
    0x6B00: "wrong parameters P1-P2",
    0x6D00: "instruction code not supported or invalid",
    0x6E00: "class not supported",
    0x6F00: "no precise diagnosis",
    0x9302: "MAC invalid",
    0x9303: "application permanently locked",
    0x9401: "insufficient balance",
    0x9402: "transaction counter at maximum",
    0x9403: "key index not supported",
    0x9406: "required MAC unavailable",
}


def retries(sw: int) -> int | None:
    """Tries left for 63Cx (wrong PIN or authentication), else None."""
    if sw & 0xFFF0 == 0x63C0:
        return sw & 0x0F
    return None


def describe(sw: int) -> str:
    """A short English meaning of a status word."""
    if sw in CATALOGUE:
        return CATALOGUE[sw]
    sw1, sw2 = sw >> 8, sw & 0xFF
    if sw1 == 0x61:
        return f"{sw2 or 256} more bytes available (GET RESPONSE)"
    if sw1 == 0x6C:
        return f"wrong Le: resend with Le={sw2 or 256}"
    tries = retries(sw)
    if tries is not None:
        return f"verification failed (wrong PIN or key), {tries} tries left"
    generic = {
        0x62: "warning: memory unchanged",
        0x63: "warning: memory changed",
        0x64: "execution error: memory unchanged",
        0x65: "execution error: memory changed",
        0x66: "security-related issue",
        0x67: "wrong length",
        0x68: "functions in CLA not supported",
        0x69: "command not allowed",
        0x6A: "wrong parameters P1-P2",
        0x93: "purse security error",
        0x94: "purse error",
    }
    return generic.get(sw1, "unknown status")


def is_success(sw: int) -> bool:
    return sw == SW_OK


class SWClass(enum.StrEnum):
    """What a terminal does with a status word, by its SW1 (ISO 7816-4 §5.1.3)."""

    SUCCESS = "success"  # 9000
    MORE_DATA = "more-data"  # 61xx: GET RESPONSE
    WRONG_LE = "wrong-le"  # 6Cxx: resend with Le = xx
    WARNING = "warning"  # 62xx, 63xx: processing completed with a warning
    EXECUTION_ERROR = "execution-error"  # 64xx-66xx
    CHECKING_ERROR = "checking-error"  # 67xx-6Fxx except 61/6C
    PURSE_ERROR = "purse-error"  # 93xx, 94xx: PBOC / JT/T 978 purse refusals
    UNKNOWN = "unknown"


def classify(sw: int) -> SWClass:
    """The class of a status word; anything outside the standard ranges is UNKNOWN."""
    sw1 = (sw >> 8) & 0xFF
    if sw == SW_OK:
        return SWClass.SUCCESS
    if sw1 == 0x61:
        return SWClass.MORE_DATA
    if sw1 == 0x6C:
        return SWClass.WRONG_LE
    if sw1 in (0x62, 0x63):
        return SWClass.WARNING
    if 0x64 <= sw1 <= 0x66:
        return SWClass.EXECUTION_ERROR
    if 0x67 <= sw1 <= 0x6F:
        return SWClass.CHECKING_ERROR
    if sw1 in (0x93, 0x94):
        return SWClass.PURSE_ERROR
    return SWClass.UNKNOWN


def is_error(sw: int) -> bool:
    """An execution, checking or purse error: the command was refused or failed."""
    return classify(sw) in (SWClass.EXECUTION_ERROR, SWClass.CHECKING_ERROR, SWClass.PURSE_ERROR)


def is_more_data(sw: int) -> bool:
    """61xx: the card has more response bytes (T=0, ISO 7816-3 §10.3.1)."""
    return sw >> 8 == 0x61


def is_wrong_le(sw: int) -> bool:
    """6Cxx: resend the command with Le = xx."""
    return sw >> 8 == 0x6C


def is_warning(sw: int) -> bool:
    return sw >> 8 in (0x62, 0x63)
