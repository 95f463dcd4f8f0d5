"""`ykt atr` and `ykt tlv`: decode what a technician pastes."""

from __future__ import annotations

import click

from cardlib.atr import parse_atr
from cardlib.smartcard_list import atr_text, name_card
from cardlib.tlv import Tlv, parse, to_json
from cli.common import Options, common_options, echo_kv, parse_hex
from cli.explain import tlv_lines


@click.command()
@click.argument("hex_atr", nargs=-1, required=True, metavar="HEX")
@common_options("json")
def atr(hex_atr: tuple[str, ...], opts: Options) -> None:
    """Decode an ATR (ISO 7816-3, historical bytes per ISO 7816-4, PC/SC part 3) and name the card from
    pcsc-tools' smartcard_list.txt, as ATR_analysis does, when it is installed."""
    parsed = parse_atr(parse_hex(" ".join(hex_atr), "ATR"))
    named = name_card(parsed.raw)
    if opts.json:
        opts.emit(
            {
                "atr": parsed.raw.hex().upper(),
                "convention": parsed.convention,
                "t0": parsed.t0,
                "protocols": list(parsed.protocols),
                "historical_bytes": parsed.historical_bytes.hex().upper(),
                "tck_present": parsed.tck_present,
                "tck": None if parsed.tck is None else f"{parsed.tck:02X}",
                "tck_valid": parsed.tck_valid,
                "contactless": parsed.contactless,
                "fi": parsed.fi,
                "di": parsed.di,
                "f_max_mhz": parsed.f_max_mhz,
                "guard_time": parsed.guard_time,
                "interface_bytes": [
                    {k: getattr(g, k) for k in ("index", "ta", "tb", "tc", "td")} for g in parsed.groups
                ],
                "historical": parsed.history.to_json(),
                "names": None if named is None else {
                    "list": str(named[0]), "matches": [m.to_json() for m in named[1]]},
            }
        )
        return
    rows = parsed.describe()
    if named is None:
        rows.append(("card names", "pcsc-tools' smartcard_list.txt is not installed"))
    else:
        path, matches = named
        rows.append(("card names", f"{len(matches) or 'none'} in {path}"))
        for match in matches:
            if match.pattern.upper() != atr_text(parsed.raw):
                rows.append(("", match.pattern))
            rows += [("", f"  {line}") for line in match.descriptions]
    echo_kv(rows)


def _tree(obj: Tlv) -> None:
    for line in tlv_lines(obj):
        click.echo(line)


@click.command()
@click.argument("hex_tlv", nargs=-1, required=True, metavar="HEX")
@click.option("--lenient", is_flag=True, help="Skip 00/FF padding between objects.")
@common_options("json")
def tlv(hex_tlv: tuple[str, ...], lenient: bool, opts: Options) -> None:
    """Decode BER-TLV (ISO 7816-4 §5.2) as a tree."""
    objects = parse(parse_hex(" ".join(hex_tlv), "TLV"), strict=not lenient)
    if opts.json:
        opts.emit([to_json(o) for o in objects])
        return
    for obj in objects:
        _tree(obj)
