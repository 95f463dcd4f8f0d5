"""`ykt atr` and `ykt tlv`: decode what a technician pastes."""

from __future__ import annotations

import click

from cardlib.atr import parse_atr
from cardlib.tlv import Tlv, parse, to_json
from cli.common import Options, common_options, echo_kv, parse_hex
from cli.explain import tlv_lines


@click.command()
@click.argument("hex_atr", nargs=-1, required=True, metavar="HEX")
@common_options
def atr(hex_atr: tuple[str, ...], opts: Options) -> None:
    """Decode an ATR (ISO 7816-3; PC/SC contactless pseudo-ATRs recognised)."""
    parsed = parse_atr(parse_hex(" ".join(hex_atr), "ATR"))
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
            }
        )
        return
    echo_kv(parsed.describe())


def _tree(obj: Tlv) -> None:
    for line in tlv_lines(obj):
        click.echo(line)


@click.command()
@click.argument("hex_tlv", nargs=-1, required=True, metavar="HEX")
@click.option("--lenient", is_flag=True, help="Skip 00/FF padding between objects.")
@common_options
def tlv(hex_tlv: tuple[str, ...], lenient: bool, opts: Options) -> None:
    """Decode BER-TLV (ISO 7816-4 §5.2) as a tree."""
    objects = parse(parse_hex(" ".join(hex_tlv), "TLV"), strict=not lenient)
    if opts.json:
        opts.emit([to_json(o) for o in objects])
        return
    for obj in objects:
        _tree(obj)
