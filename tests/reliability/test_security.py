"""Security of issue 7: forged and replayed MACs and TACs, wrong keys, PIN brute
force, failed authentication, refused cards — each refused and recorded — and
a scan of everything the flows write (stdout, JSON, traces, logs, exception
text, tracebacks) for keys, PINs and unmasked personal data.

DESIGN.md: secrets (keys, PINs) never appear in logs, traces, JSON or
exceptions; personal data (name, social security number) is masked in logs
and traces, shown only where the user asked for it (``card info``, ``sim
show`` of a card image).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cardlib.apdu import CommandAPDU, ResponseAPDU
from cardlib.channel import Channel
from cardlib.crypto import line_mac
from cardlib.errors import AuthenticationError, MacMismatchError, StatusError, YktError
from cardlib.iso import get_challenge, select_aid
from cardlib.keys import IssuerKeys, KeyEntry, derive_card_keys, test_issuer, verify_tac
from cardlib.pboc import purse as P
from cardlib.readers.pyhost import HostedReader
from cardlib.settlement import verify_records
from cli.main import cli
from simulators.faults import FaultyCard
from simulators.host import SimulatedLoadHost
from simulators.image import load_card, save_image
from simulators.issuer import CardProfile, issue_card
from simulators.ssc import SocialSecurityCard
from terminal import auth
from terminal.decision import Reason
from terminal.denylist import DenyList, build_denylist
from tests.reliability.site import Site, psam_client, purchases_journal

METRO: dict[str, Any] = {"terminal": {"role": "metro_gate", "station": "S01", "name": "metro"},
                         "fares": {"bands": [[6, 300]], "stations": {"S01": 0, "S05": 4}}}
MUSEUM: dict[str, Any] = {"terminal": {"role": "identity_gate", "name": "museum"}, "fares": {"admission": 1000},
                          "windows": {"anti_passback_seconds": 600}}


def stranger(**changes: KeyEntry) -> IssuerKeys:
    """The test issuer with some master keys replaced (another issuer, or a rotated key)."""
    obj = test_issuer().to_json()
    obj["keys"].update({name: entry.to_json() for name, entry in changes.items()})
    return IssuerKeys.from_json(obj)


OTHER_KEY = KeyEntry(bytes(range(16)))


def recording(card: SocialSecurityCard) -> tuple[FaultyCard, list[bytes]]:
    """The card behind a wrapper that only notes every APDU it is sent."""
    seen: list[bytes] = []

    def note(_n: int, apdu: bytes) -> None:
        seen.append(apdu)

    return FaultyCard(card, note), seen


def events(site: Site) -> list[str]:
    return [e["reason"] for e in site.journal.events()]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    s = Site(tmp_path)
    yield s
    s.close()


# --- MAC1, MAC2, TAC: forged and replayed -------------------------------------------------------------------------


def test_forged_mac1_is_refused_by_the_card_and_recorded(tmp_path: Path) -> None:
    """A PSAM whose purchase master is not the card issuer's computes a MAC1 the card refuses
    (9302): no money moves, the write-ahead record fails, the tap's refusal is an event."""
    site = Site(tmp_path, issuer=stranger(mpk=OTHER_KEY))
    card = issue_card(CardProfile(balance=1000), seed=1)
    wallet = site.wallet(card)
    with pytest.raises(MacMismatchError):
        wallet.purchase(100)
    (record,) = site.journal.records()
    assert record.state == "failed" and "9302" in (record.failure_reason or "")
    assert card.balance == 1000 and card.purse.state.offline_seq == 0
    decision = site.tap(card)
    assert not decision.open and decision.reason is Reason.CARD_ERROR and card.balance == 1000
    assert events(site) == ["card_error"]
    assert [r.state for r in site.journal.records()] == ["failed", "failed"]
    site.close()


def replay(card: FaultyCard, captured: bytes, init: CommandAPDU) -> tuple[bytes, bytes]:
    """A captured DEBIT or CREDIT sent again: alone, then inside a new session (new random,
    new counter value). The status words of both."""
    reader = HostedReader([card])
    reader.connect()
    assert reader.transmit(select_aid(P.PURSE_AID).encode())[-2:] == b"\x90\x00"
    alone = reader.transmit(captured)[-2:]
    assert reader.transmit(init.encode())[-2:] == b"\x90\x00"
    return alone, reader.transmit(captured)[-2:]


def test_replayed_debit_is_refused(site: Site) -> None:
    """A DEBIT FOR PURCHASE captured from a good purchase: 6985 without a session, 9302 (MAC1)
    inside a new one."""
    card, seen = recording(issue_card(CardProfile(balance=1000), seed=2))
    site.wallet(card).purchase(100)
    debit = next(a for a in seen if a[:2] == b"\x80\x54")
    init = P.InitializeForPurchase(1, 100, site.psam.terminal_id).to_apdu()
    assert replay(card, debit, init) == (b"\x69\x85", b"\x93\x02")
    assert card.card.balance == 900 and card.card.purse.state.offline_seq == 1


def test_replayed_credit_for_load_is_refused(site: Site) -> None:
    card, seen = recording(issue_card(CardProfile(balance=1000), seed=3))
    site.wallet(card).load(500, SimulatedLoadHost())
    credit = next(a for a in seen if a[:2] == b"\x80\x52")
    init = P.InitializeForLoad(1, 500, site.psam.terminal_id).to_apdu()
    assert replay(card, credit, init) == (b"\x69\x85", b"\x93\x02")
    assert card.card.balance == 1500 and card.card.purse.state.online_seq == 1


def test_card_refusing_the_hosts_mac2_is_a_security_failure(site: Site) -> None:
    """A load host that signs with another load master: the card refuses its MAC2."""
    card = issue_card(CardProfile(balance=1000), seed=4)
    host = SimulatedLoadHost(stranger(mlk=OTHER_KEY))
    with pytest.raises(YktError):  # the host refuses a MAC1 it cannot check, or the card its MAC2
        site.wallet(card).load(500, host)
    assert card.balance == 1000 and card.purse.state.online_seq == 0
    assert all(r.state == "failed" for r in site.journal.records())


def test_mac2_replayed_to_the_psam_after_its_session(site: Site) -> None:
    """The PSAM checks a MAC2 once, for the purchase it opened: the same MAC2 again is refused."""
    card = issue_card(CardProfile(balance=1000), seed=5)
    result = site.wallet(card).purchase(100)
    assert result.mac2 is not None and result.mac2_verified
    with pytest.raises(StatusError) as refused:
        site.psam.verify_mac2(result.mac2)
    assert refused.value.sw == 0x6985


def test_forged_and_replayed_tacs_fail_settlement(tmp_path: Path) -> None:
    journal = purchases_journal(tmp_path / "j.db", 3)
    records = journal.records()
    assert verify_records(records, test_issuer()).ok
    first = records[0]
    journal.close()
    db = sqlite3.connect(tmp_path / "j.db")
    db.execute("UPDATE records SET tac=? WHERE id=?", (bytes(b ^ 0x01 for b in first.tac or b""), first.id))
    db.execute("UPDATE records SET amount=amount+1 WHERE id=?", (records[1].id,))  # the TAC covers the amount
    db.commit()
    db.close()
    result = CliRunner().invoke(cli, ["journal", "verify", "--journal", str(tmp_path / "j.db")])
    assert result.exit_code == 4, result.output
    assert f"record {first.id}: TAC does not verify" in result.output
    assert f"record {records[1].id}: TAC does not verify" in result.output
    assert not verify_tac(test_issuer(), first.app_serial, first.tac_fields(), bytes(4))


def test_a_replayed_transaction_in_a_batch_is_refused(tmp_path: Path) -> None:
    """A batch in which one transaction appears twice (its TAC is genuine, so it verifies):
    header count, total and SHA-256 rewritten to match. Settling it would pay twice."""
    journal = purchases_journal(tmp_path / "j.db", 2)
    with open(tmp_path / "b.jsonl", "w", encoding="utf-8") as out:
        journal.export_batch(out)
    journal.close()
    import hashlib

    lines = (tmp_path / "b.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    head, body = json.loads(lines[0]), [*lines[1:], lines[1]]
    head.update(count=len(body), total_amount=sum(json.loads(x)["amount"] for x in body),
                sha256=hashlib.sha256("".join(body).encode()).hexdigest())
    (tmp_path / "replay.jsonl").write_text(json.dumps(head) + "\n" + "".join(body), encoding="utf-8")
    result = CliRunner().invoke(cli, ["journal", "verify", "--batch", str(tmp_path / "replay.jsonl")])
    assert result.exit_code != 0, result.output
    assert "line 4" in result.output and "line 2" in result.output


# --- wrong key version or index ---------------------------------------------------------------------------------


def test_wrong_key_version_refused_and_recorded(tmp_path: Path) -> None:
    """A PSAM holding purchase master version 2 for cards personalised with version 1."""
    rotated = KeyEntry(test_issuer().mpk.key, index=1, version=2)
    site = Site(tmp_path, issuer=stranger(mpk=rotated))
    card = issue_card(CardProfile(balance=1000), seed=6)
    with pytest.raises(StatusError) as refused:
        site.wallet(card).purchase(100)
    assert refused.value.sw == 0x6A88
    assert site.journal.records() == []  # refused before the write-ahead record
    assert not site.tap(card).open and events(site) == ["card_error"]
    assert card.balance == 1000 and card.purse.state.offline_seq == 0


def test_wrong_key_index_refused_and_recorded(site: Site) -> None:
    card = issue_card(CardProfile(balance=1000), seed=7)
    app = site.app({**site.cfg, "psam": {"key_index": 2}})
    decision = site.tap(card, app=app)
    assert not decision.open and decision.reason is Reason.CARD_ERROR and "9403" in decision.detail
    assert events(site) == ["card_error"] and card.balance == 1000


# --- PIN brute force, authentication -----------------------------------------------------------------------------


def test_pin_brute_force_blocks_and_the_right_pin_no_longer_opens(site: Site) -> None:
    card = issue_card(CardProfile(pin="739154"), seed=8)
    site.reader.insert(card)
    site.reader.connect()
    channel = Channel(site.reader)
    tries = []
    for guess in ("000000", "111111", "222222"):
        with pytest.raises(auth.PinError) as wrong:
            auth.verify_pin(channel, guess)
        assert guess not in str(wrong.value) and "739154" not in str(wrong.value)
        assert wrong.value.exit_code == 4
        tries.append(wrong.value.tries_left)
    assert tries == [2, 1, 0]
    with pytest.raises(auth.PinError, match="blocked"):
        auth.verify_pin(channel, "739154")
    assert auth.pin_tries_left(channel) == 0
    for guess in range(10):  # the PUK next: ten wrong ones block it for good
        with pytest.raises(auth.PinError):
            auth.unblock_pin(channel, f"{guess:06d}" if f"{guess:06d}" != card.ssse.state.puk else "999999", "123123")
    with pytest.raises(auth.PinError, match="blocked"):
        auth.unblock_pin(channel, card.ssse.state.puk, "123123")
    gate = site.app({**MUSEUM, "gate": {"require_pin": True}})
    assert site.tap(card, app=gate).reason is Reason.PIN_BLOCKED
    assert events(site) == ["pin_blocked"]


def test_failed_external_authentication_blocks_after_five(site: Site) -> None:
    card = issue_card(seed=9)
    site.reader.insert(card)
    site.reader.connect()
    channel = Channel(site.reader)
    info = auth.read_card(channel)
    impostor = psam_client(issuer=stranger(ssse_eak=OTHER_KEY))
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            auth.external_authenticate(channel, impostor, info)
    with pytest.raises(AuthenticationError, match="6983"):
        auth.external_authenticate(channel, site.psam, info)  # the genuine terminal, too late
    assert card.ssse.state.ext_tries == 0


def test_external_authentication_answer_replayed(site: Site) -> None:
    """The cryptogram of a genuine authentication, sent again after a new GET CHALLENGE."""
    card, seen = recording(issue_card(seed=10))
    site.reader.insert(card)
    site.reader.connect()
    channel = Channel(site.reader)
    auth.external_authenticate(channel, site.psam, auth.read_card(channel))
    answer = next(a for a in seen if a[:2] == b"\x00\x82")
    channel.send(get_challenge(8))
    assert channel.transmit(CommandAPDU.decode(answer)).sw == 0x6300
    assert card.card.ssse.state.ext_tries == 4


def test_block_needs_the_line_mac(site: Site) -> None:
    """APPLICATION BLOCK with a MAC over another challenge is refused (6988); the purse stays usable."""
    card = issue_card(seed=11)
    reader = HostedReader([card])
    reader.connect()
    reader.transmit(select_aid(P.PURSE_AID).encode())
    old = ResponseAPDU.decode(reader.transmit(get_challenge(4).encode())).data
    reader.transmit(get_challenge(4).encode())  # a new challenge: the old MAC no longer fits
    mac = line_mac(card.keys.damk.key, P.ApplicationBlock(False).mac_input(), old + bytes(4))
    assert reader.transmit(P.ApplicationBlock(False, mac).to_apdu().encode())[-2:] == b"\x69\x88"
    assert card.purse.state.blocked is None


# --- refused cards: each refused and recorded, no money moved ------------------------------------------------------


def test_refusals_are_recorded(tmp_path: Path) -> None:
    """At a bus the card's validity is the purse's (0x15) and the purchase authenticates the
    card; at an identity gate the validity is EF05's and the SSSE authenticates it."""
    site = Site(tmp_path)
    purse_ended = issue_card(seed=24)
    purse_ended._purse_ef(0x15).data[24:28] = bytes.fromhex("20251231")  # the purse ended before the card
    cases: list[tuple[SocialSecurityCard, Reason]] = [
        (issue_card(CardProfile(valid_until=date(2026, 11, 27)), seed=20), Reason.CARD_EXPIRED),
        (issue_card(CardProfile(valid_from=date(2026, 11, 29)), seed=21), Reason.CARD_NOT_YET_VALID),
        (issue_card(CardProfile(balance=10), seed=23), Reason.INSUFFICIENT_BALANCE),
        (purse_ended, Reason.CARD_EXPIRED),
    ]
    blocked = issue_card(seed=25)
    blocked.purse.state.blocked = "permanent"  # 9303 to SELECT
    cases.append((blocked, Reason.PURSE_BLOCKED))
    for card, reason in cases:
        before = card.balance
        decision = site.tap(card)
        assert not decision.open and decision.reason is reason
        assert card.balance == before
    assert events(site) == [reason.value for _, reason in cases]
    assert site.journal.records() == []
    site.close()
    (tmp_path / "museum").mkdir()
    museum = Site(tmp_path / "museum", {"terminal": {"role": "identity_gate", "name": "museum"},
                                        "fares": {"admission": 4000}, "gate": {"free_entry_age": 65}})
    purse_ended = issue_card(seed=26)
    purse_ended._purse_ef(0x15).data[24:28] = bytes.fromhex("20251231")
    cases = [
        (issue_card(CardProfile(valid_until=date(2026, 11, 27)), seed=27), Reason.CARD_EXPIRED),
        (issue_card(CardProfile(), stranger(ssse_iak=OTHER_KEY), seed=22), Reason.AUTH_FAILED),
        (purse_ended, Reason.PURSE_EXPIRED),
        (issue_card(CardProfile(kind="tunion"), seed=28), Reason.NOT_SOCIAL_SECURITY_CARD),
    ]
    for card, reason in cases:
        before = card.balance
        decision = museum.tap(card)
        assert not decision.open and decision.reason is reason
        assert card.balance == before
    assert events(museum) == [reason.value for _, reason in cases]
    museum.close()


def test_deny_listed_card_blocked_and_refused_twice(tmp_path: Path) -> None:
    site = Site(tmp_path)
    card = issue_card(CardProfile(balance=1000), seed=30)
    build_denylist([card.app_serial], tmp_path / "deny.bin", 1)
    site.deny = DenyList(tmp_path / "deny.bin")
    assert site.tap(card).reason is Reason.DENY_LISTED
    assert card.purse.state.blocked == "temporary"
    site.deny = None  # even a terminal without the list refuses it now
    assert site.tap(card).reason is Reason.PURSE_BLOCKED
    assert card.balance == 1000
    assert [(e["reason"], e["app_serial"]) for e in site.journal.events()] == [
        ("deny_listed", card.app_serial), ("purse_blocked", None)]
    site.close()


def test_anti_passback_refused_and_recorded(tmp_path: Path) -> None:
    site = Site(tmp_path, METRO)
    card = issue_card(CardProfile(balance=2000), seed=31)
    assert site.tap(card).open
    assert site.tap(card).reason is Reason.ANTI_PASSBACK
    museum = site.app(MUSEUM)
    assert site.tap(card, app=museum).open
    site.clock.advance(60)
    assert site.tap(card, app=museum).reason is Reason.ANTI_PASSBACK
    assert card.balance == 1000
    assert events(site) == ["ok", "anti_passback", "ok", "anti_passback"]
    assert [e["decision"] for e in site.journal.events()] == ["open", "closed", "open", "closed"]
    site.clock.advance(int(timedelta(minutes=10).total_seconds()))
    assert site.tap(card, app=museum).open
    site.close()


# --- secrets scan -----------------------------------------------------------------------------------------------

PIN, NEW_PIN, WRONG_PIN = "739154", "246813", "951357"
HOLDER = "沈明"


class Secrets:
    """The forms a secret takes in text (hex either case, JSON escapes) and in files (raw bytes)."""

    def __init__(self) -> None:
        self.text: dict[str, str] = {}
        self.raw: dict[bytes, str] = {}

    def keys(self, what: str, entries: dict[str, KeyEntry]) -> None:
        for name, entry in entries.items():
            self.text[entry.key.hex().upper()] = self.text[entry.key.hex()] = f"{what} {name}"
            self.raw[entry.key] = f"{what} {name} (raw)"

    def card(self, card: SocialSecurityCard, pins: tuple[str, ...] = ()) -> None:
        self.keys("card key", {n: getattr(card.keys, n) for n in ("dlk", "dpk", "dtk", "damk", "cak", "eak")})
        for pin in (*pins, card.ssse.state.pin, card.ssse.state.puk):
            self.text[pin] = "PIN/PUK"

    def personal(self, card: SocialSecurityCard) -> dict[str, str]:
        holder = card.holder_records()
        out = {holder.ssn: "SSN", holder.ssn.encode().hex().upper(): "SSN (hex)",
               holder.name: "name", json.dumps(holder.name)[1:-1]: "name (JSON escape)",
               holder.name.encode("gbk").hex().upper(): "name (GBK hex)"}
        return out

    def find(self, text: str, extra: dict[str, str] | None = None) -> list[str]:
        forms = {**self.text, **(extra or {})}
        return [f"{what}: {form}" for form, what in forms.items() if form in text]

    def find_raw(self, data: bytes) -> list[str]:
        return [what for form, what in self.raw.items() if form in data]


def issuer_secrets() -> Secrets:
    s = Secrets()
    issuer = test_issuer()
    s.keys("issuer master", {n: getattr(issuer, n) for n in ("mlk", "mpk", "mtk", "mamk", "ssse_iak", "ssse_eak")})
    return s


def run(args: list[str], exit_code: int | None = 0) -> Result:
    result = CliRunner().invoke(cli, args)
    if exit_code is not None:
        assert result.exit_code == exit_code, (args, result.output)
    assert "internal error" not in result.output and "Traceback" not in result.output or "--debug" in args
    return result


def test_cli_flows_leak_no_key_pin_or_personal_data(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    image, journal = str(tmp_path / "card.json"), str(tmp_path / "j.db")
    issued = run(["sim", "new", "--out", image, "--seed", "41", "--pin", PIN, "--name", HOLDER, "--balance", "3000"])
    card = load_card(image, persist=False)
    assert isinstance(card, SocialSecurityCard)
    secrets = issuer_secrets()
    secrets.card(card, (PIN, NEW_PIN, WRONG_PIN))
    personal = secrets.personal(card)
    assert derive_card_keys(test_issuer(), card.app_serial, card.issuer_records().card_id).dpk == card.keys.dpk
    sim = ["--reader", f"sim:{image}"]
    outputs: dict[str, str] = {"sim new": issued.output,
                               "sim psam": run(["sim", "psam", "--out", str(tmp_path / "psam.json")]).output}

    def flow(name: str, args: list[str], exit_code: int = 0, shows_personal: bool = False) -> None:
        trace = tmp_path / f"{name}.jsonl"
        result = run([*args, *sim, "--trace", str(trace)], exit_code)
        outputs[f"{name} output"] = "" if shows_personal else result.output
        outputs[f"{name} trace"] = trace.read_text(encoding="utf-8")

    flow("info", ["card", "info", "--json"], shows_personal=True)  # the user asked to see the holder
    flow("info-text", ["card", "info"], shows_personal=True)
    flow("history", ["card", "history", "--json"])
    flow("balance", ["purse", "balance", "--json"])
    flow("purchase", ["purse", "purchase", "--amount", "120", "--journal", journal, "--json"])
    flow("load", ["purse", "load", "--amount", "500", "--journal", journal, "--json"])
    flow("refused", ["purse", "purchase", "--amount", "999999", "--journal", journal, "--debug"], exit_code=1)
    flow("wrong-pin", ["card", "pin", "verify", "--pin", WRONG_PIN, "--debug"], exit_code=4)
    flow("pin", ["card", "pin", "verify", "--pin", PIN, "--json"])
    flow("change", ["card", "pin", "change", "--old", PIN, "--new", NEW_PIN])
    flow("unblock", ["card", "pin", "unblock", "--puk", card.ssse.state.puk, "--new", PIN])
    flow("apdu", ["apdu", "0020000003" + PIN, "--json"])
    outputs["apdu output"] = ""  # it echoes the command the user typed
    for args in (["journal", "show", "--journal", journal, "--json"], ["journal", "verify", "--journal", journal],
                 ["journal", "export", "--journal", journal, "--out", str(tmp_path / "batch.jsonl")],
                 ["sim", "show", image, "--json"], ["sim", "show", image]):
        outputs[" ".join(args[:2])] = run(args).output
    outputs["batch"] = (tmp_path / "batch.jsonl").read_text(encoding="utf-8")
    outputs["logs"] = caplog.text
    leaks = {where: found for where, text in outputs.items()
             if (found := secrets.find(text, None if where.startswith("sim show") else personal))}
    assert not leaks
    assert "0020000003******" in outputs["wrong-pin trace"] and "0024000006************" in outputs["change trace"]
    assert "************9000" in outputs["info trace"]  # the holder records went masked
    assert not secrets.find_raw((tmp_path / "j.db").read_bytes())


def test_demo_output_and_files_leak_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    result = run(["demo", "--json", "--seed", "3", "--out", str(tmp_path / "demo")])
    secrets, personal = issuer_secrets(), {}
    for path in sorted((tmp_path / "demo" / "cards").glob("*.json")):
        card = load_card(path, persist=False)
        assert isinstance(card, SocialSecurityCard)
        secrets.card(card)
        personal.update(secrets.personal(card))
    assert personal
    assert not secrets.find(result.output + caplog.text, personal)
    for path in (tmp_path / "demo").rglob("*"):
        if path.is_file() and path.parent.name != "cards":  # a card image is the card: it holds its keys
            data = path.read_bytes()
            assert not secrets.find_raw(data), path
            assert not secrets.find(data.decode("latin-1"), personal), path


def test_failing_flows_name_no_secret_in_their_exceptions(tmp_path: Path) -> None:
    """The text of every error a failing flow raises (and what the CLI prints of it)."""
    card = issue_card(CardProfile(pin=PIN, name=HOLDER, balance=100), seed=42)
    secrets = issuer_secrets()
    secrets.card(card, (PIN, WRONG_PIN))
    personal = secrets.personal(card)
    errors: list[BaseException] = []

    def collect(action: Any) -> None:
        try:
            action()
        except YktError as exc:
            errors.append(exc)
        else:
            raise AssertionError(f"{action} did not fail")

    (tmp_path / "a").mkdir()
    forger = Site(tmp_path / "a", issuer=stranger(mpk=OTHER_KEY, ssse_eak=OTHER_KEY))
    collect(lambda: forger.wallet(card).purchase(50))
    channel = Channel(forger.reader)
    collect(lambda: auth.verify_pin(channel, WRONG_PIN))
    collect(lambda: auth.external_authenticate(channel, forger.psam, auth.read_card(channel)))
    collect(lambda: forger.wallet(card).purchase(5000))
    collect(lambda: forger.wallet(card).load(100, SimulatedLoadHost(stranger(mlk=OTHER_KEY))))
    keyfile = test_issuer().to_json()
    keyfile["keys"]["mpk"]["key"] = keyfile["keys"]["mpk"]["key"][:-2]  # one byte short
    (tmp_path / "keys.json").write_text(json.dumps(keyfile))
    from cardlib.keys import load_issuer_keys

    collect(lambda: load_issuer_keys(tmp_path / "keys.json"))
    save_image(card, tmp_path / "card.json")
    image = json.loads((tmp_path / "card.json").read_text(encoding="utf-8"))
    image["ssse"]["pin"] = PIN[:5]
    (tmp_path / "bad.json").write_text(json.dumps(image), encoding="utf-8")
    collect(lambda: load_card(tmp_path / "bad.json"))
    texts = [f"{e}\n{e!r}" for e in errors]
    assert not [(t, secrets.find(t, personal)) for t in texts if secrets.find(t, personal)]
    cli_text = run(["journal", "verify", "--batch", str(tmp_path / "nothing"), "--issuer-keys",
                    str(tmp_path / "keys.json")], exit_code=None).output
    cli_text += run(["card", "info", "--reader", f"sim:{tmp_path / 'bad.json'}", "--debug"], exit_code=2).output
    assert not secrets.find(cli_text, personal)
    forger.close()


def test_reprs_of_what_holds_keys_or_pins_are_masked() -> None:
    """A repr lands in logs and assertion messages: the key and PIN holders mask theirs."""
    card = issue_card(CardProfile(pin=PIN), seed=43)
    secrets = issuer_secrets()
    secrets.card(card, (PIN,))
    shown = "\n".join(repr(x) for x in (test_issuer(), card.keys, card.purse.state, card.ssse.state))
    assert not secrets.find(shown)
