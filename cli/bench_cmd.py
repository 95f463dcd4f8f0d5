"""`ykt bench --reader URI`: a reader's APDU round trip (median, p99)."""

from __future__ import annotations

import statistics
import sys
import time

import click

from cardlib.apdu import CommandAPDU
from cli.common import Options, common_options, wait_option
from cli.session import open_channel

SELECT_PURSE = "00A4040008A000000632010105"
MAX_COUNT = 10_000_000  # the samples are kept: a count beyond memory is refused, not run


@click.command()
@click.option("--count", default=500, show_default=True, type=click.IntRange(1, MAX_COUNT),
              help="APDUs to time.")
@click.option("--apdu", "apdu_hex", default=SELECT_PURSE, show_default=True, help="The APDU to send.")
@wait_option
@common_options("reader", "json", "trace")
def bench(count: int, apdu_hex: str, opts: Options) -> None:
    """Time APDU round trips through the channel on any reader."""
    channel = open_channel(opts)
    command = CommandAPDU.from_hex(apdu_hex)
    for _ in range(min(20, count)):
        channel.transmit(command)  # warm up
    samples = []
    err = sys.stderr
    with click.progressbar(range(count), label="timing", hidden=not opts.progress(), file=err) as bar:
        for _ in bar:
            t0 = time.perf_counter()
            channel.transmit(command)
            samples.append((time.perf_counter() - t0) * 1e6)
    samples.sort()
    result = {"reader": channel.reader.name, "count": count, "median_us": round(statistics.median(samples), 1),
              "p99_us": round(samples[max(0, int(len(samples) * 0.99) - 1)], 1), "min_us": round(samples[0], 1)}
    if opts.json:
        opts.emit(result)
    else:
        click.echo(f"{result['reader']}: median {result['median_us']} µs, p99 {result['p99_us']} µs "
                   f"over {count} APDUs")
