"""The clearing stages as plain functions (no Dask): the generator, the register, batch
checks, per-card chains and the totals, against the generator's manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cardlib.errors import FormatError
from cardlib.keystore import builtin_store
from clearing.chains import chain_partition, state_rows
from clearing.checks import LINE_COLUMNS, BatchSummary, check_batch
from clearing.generate import Faults, generate
from clearing.register import Terminal, TerminalRegister
from clearing.report import batch_holes, clearing_totals
from tests.clearing.conftest import manifest


def cleared_in_one_partition(root: Path) -> pd.DataFrame:
    """Both stages in this process over the whole day: what the engine spreads over workers."""
    register = TerminalRegister.load(root / "register.csv")
    rows: list[tuple[object, ...]] = []
    for path in sorted((root / "batches").glob("*.jsonl")):
        assert check_batch(str(path), register, builtin_store(), rows).status == "ok"
    lines = pd.DataFrame(rows, columns=list(LINE_COLUMNS))
    state = state_rows(pd.read_parquet(root / "previous" / "cards.parquet"))
    return chain_partition(pd.concat([lines, state], ignore_index=True), builtin_store())


def test_the_chains_find_every_injected_fault(day: Path) -> None:
    out = cleared_in_one_partition(day)
    lines = out[out["row_kind"] == "line"]
    faults = manifest(day)["faults"]
    assert faults["gap"] > 0 and faults["forged"] > 0 and faults["replay"] > 0 and faults["break"] > 0
    verdicts = lines["verdict"].value_counts().to_dict()
    assert verdicts.get("forged", 0) == faults["forged"] and verdicts.get("replay", 0) == faults["replay"]
    assert int(lines["gap"].sum()) == faults["gap"] and int(lines["break"].sum()) == faults["break"]
    broken = set(lines[lines["break"]]["card"])
    assert broken == {d["card"] for d in manifest(day)["details"]["break"]}


def test_a_day_without_faults_chains_cleanly(clean_day: Path) -> None:
    out = cleared_in_one_partition(clean_day)
    lines = out[out["row_kind"] == "line"]
    assert set(lines["verdict"]) == {"accepted"} and lines["gap"].sum() == 0 and not lines["break"].any()
    assert manifest(clean_day)["faults"] == dict.fromkeys(manifest(clean_day)["faults"], 0)


def test_the_generator_is_deterministic(tmp_path: Path) -> None:
    a, b, c = (generate(tmp_path / n, seed=s, transactions=500, faults=Faults(missing=2, replays=1, forged=1))
               for n, s in (("a", 3), ("b", 3), ("c", 4)))
    files = sorted(p.name for p in (tmp_path / "a" / "batches").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "b" / "batches").iterdir())
    for name in files:
        assert (tmp_path / "a" / "batches" / name).read_bytes() == (tmp_path / "b" / "batches" / name).read_bytes()
    assert a.__dict__ == b.__dict__ and a.totals != c.totals


def test_a_rejected_line_holds_its_counter_and_a_gap_is_not_a_break() -> None:
    """Counters 5, 6 (forged), 7: no gap. Then 9 after 7: one missing, and the balance
    that does not follow across it is the gap's, not a break."""
    rows = []
    for seq, before, status in ((5, 1000, "ok"), (6, 900, "forged"), (7, 800, "ok"), (9, 600, "ok"),
                                (10, 9999, "ok")):
        rows.append({"row_kind": "line", "card": "C", "kind": "purchase", "card_seq": seq, "balance_before": before,
                     "balance_after": before - 100, "status": status, "time": seq, "key": f"K{seq}",
                     "terminal": "T", "batch_seq": 1, "line_no": seq})
    frame = pd.DataFrame(rows)
    for c in ("file", "operator", "issuer", "day", "terminal_id", "tac", "algorithm"):
        frame[c] = ""
    for c in ("amount", "hour", "terminal_seq", "key_version", "s_online", "s_offline", "s_balance"):
        frame[c] = -1
    frame["message"] = b""
    out = chain_partition(frame)
    lines = out[out["row_kind"] == "line"].set_index("card_seq")
    assert lines["gap"].to_dict() == {5: 0, 6: 0, 7: 0, 9: 1, 10: 0}
    assert lines["break"].to_dict() == {5: False, 6: False, 7: False, 9: False, 10: True}
    state = out[out["row_kind"] == "state"].iloc[0]
    assert (state["s_offline"], state["s_balance"], state["s_online"]) == (11, 9899, -1)


def test_holes_in_a_terminals_batch_numbers() -> None:
    def ok(terminal: str, seq: int) -> BatchSummary:
        return BatchSummary(f"{terminal}-{seq}", "ok", "", "", terminal, seq, 0, 0)

    got = [ok("A", 3), ok("A", 6), ok("B", 1), ok("C", 2)]
    assert batch_holes(got, {"A": 1, "C": 1}) == [
        {"terminal": "A", "batch_seq": 2}, {"terminal": "A", "batch_seq": 4}, {"terminal": "A", "batch_seq": 5}]


def test_net_positions_sum_to_zero() -> None:
    cells = pd.DataFrame([
        {"day": "d", "issuer": "I1", "operator": "BUS", "kind": "purchase", "amount": 500, "count": 3},
        {"day": "d", "issuer": "I1", "operator": "METRO", "kind": "load", "amount": 2000, "count": 1},
        {"day": "d", "issuer": "I2", "operator": "METRO", "kind": "purchase", "amount": 300, "count": 2}])
    totals, positions = clearing_totals(cells)
    assert [t["issuer_pays"] for t in totals] == [500, -2000, 300]
    assert {(p["party"], p["net"]) for p in positions} == {("I1", 1500), ("I2", -300), ("BUS", 500),
                                                           ("METRO", -1700)}
    assert sum(p["net"] for p in positions) == 0


def test_the_register_reads_what_it_writes_and_refuses_bad_lines(tmp_path: Path) -> None:
    reg = TerminalRegister([Terminal("00000010000A", "BUS-A", "城市公交", "S1", "K1")])
    reg.write(tmp_path / "r.csv")
    assert list(TerminalRegister.load(tmp_path / "r.csv")) == list(reg)
    assert TerminalRegister.load(tmp_path / "r.csv").find("00000010000a") == list(reg)[0]
    header = "terminal_id,operator,operator_name,station,line\n"
    for text, message in ((header + "XYZ,BUS,,,\n", "line 2: terminal_id is not 12 hex digits"),
                          (header + "000000000001,,,,\n", "line 2: operator is empty"),
                          ("id,op\n", "line 1: the header must be"),
                          (header + "000000000001,A,,,\n000000000001,B,,,\n", "listed twice")):
        (tmp_path / "bad.csv").write_text(text, "utf-8")
        with pytest.raises(FormatError, match=message):
            TerminalRegister.load(tmp_path / "bad.csv")


def test_a_bad_batch_or_an_unknown_terminal_gives_no_lines(day: Path, tmp_path: Path) -> None:
    register = TerminalRegister.load(day / "register.csv")
    path = sorted((day / "batches").glob("*.jsonl"))[0]
    text = path.read_text("utf-8")
    forged = tmp_path / "forged.jsonl"
    forged.write_text(text.replace('"amount": ', '"amount": 1', 1), "utf-8")
    rows: list[tuple[object, ...]] = []
    summary = check_batch(str(forged), register, builtin_store(), rows)
    assert summary.status == "bad_batch" and "total_amount" in summary.reason and rows == []
    head = json.loads(text.splitlines()[0])
    stranger = tmp_path / "stranger.jsonl"
    stranger.write_text(text.replace(head["terminal"], "EEEEEEEEEEEE", 1), "utf-8")
    summary = check_batch(str(stranger), register, builtin_store(), rows)
    assert summary.status == "unknown_terminal" and rows == []


def test_the_reports_examples_picked_per_part_are_the_days_first(day: Path) -> None:
    """The engine sends only each part's first examples of each kind to the client: picked again,
    they are the examples of the whole day, and a part gives at most ten of each kind."""
    from clearing.engine import EXAMPLE_COLUMNS, EXAMPLES, _examples, _first_examples

    out = cleared_in_one_partition(day)
    lines = out[out["row_kind"] == "line"]
    exc = lines[(lines["verdict"] != "accepted") | (lines["gap"] > 0) | lines["break"]][EXAMPLE_COLUMNS]
    parts = [exc.iloc[i::3] for i in range(3)]
    firsts = [_first_examples(p) for p in parts]
    assert all(len(f) <= 5 * EXAMPLES for f in firsts)
    whole = _examples(exc)
    assert _examples(_first_examples(pd.concat(firsts))) == whole
    assert set(whole) >= {"forged", "replay", "gap", "break"}
    assert all(0 < len(v) <= EXAMPLES for v in whole.values())


def test_every_line_of_a_card_goes_to_one_partition_whichever_process_splits_it(day: Path, tmp_path: Path) -> None:
    """Stage one's tasks split their lines by card without talking to each other: the
    partition of a card must be the same in every worker process (Python's own hash of a
    text is not: it changes with PYTHONHASHSEED), and a partition holds all of its cards' lines."""
    import subprocess
    import sys

    from clearing.parts import partition_of, read_partition, write_lines

    cards = ["3303000005433534984" + str(i) for i in range(10)] + [f"99990002{i:012d}" for i in range(50)]
    code = "import sys; from clearing.parts import partition_of; print(list(partition_of(sys.argv[1:], 7)))"
    seen = {subprocess.run([sys.executable, "-c", code, *cards], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": seed, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
                           ).stdout for seed in ("1", "2")}
    assert seen == {f"{list(partition_of(cards, 7))}\n"}
    register = TerminalRegister.load(day / "register.csv")
    files = sorted((day / "batches").glob("*.jsonl"))
    everything: list[tuple[object, ...]] = []
    for name, half in (("a", files[0::2]), ("b", files[1::2])):  # two tasks, two halves of the day
        rows: list[tuple[object, ...]] = []
        for path in half:
            check_batch(str(path), register, builtin_store(), rows)
        write_lines(rows, 7, str(tmp_path), name)
        everything.extend(rows)
    parts = [read_partition(str(tmp_path), p) for p in range(7)]
    assert sum(len(p) for p in parts) == len(everything)
    owners = [set(p["card"]) for p in parts]
    assert all(not (owners[i] & owners[j]) for i in range(7) for j in range(i + 1, 7))
    assert set().union(*owners) == {r[list(LINE_COLUMNS).index("card")] for r in everything}
