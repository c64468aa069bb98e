"""A Taobao user-behaviour log in the real format (`user_id,item_id,category_id,behavior_type,
timestamp`, grouped by user as the official file is), generated at a given size for `funnel
prepare taobao`'s throughput (BENCHMARKS.md): USERS users of 250 events each over 50 items of
their own taste, behaviours pv 90%, cart 5%, fav 3%, buy 2%, nine days of Unix seconds.

usage: taobao_log.py OUT USERS"""

import random
import sys

out, users = sys.argv[1], int(sys.argv[2])
rng = random.Random(7)
kinds = ["pv"] * 90 + ["cart"] * 5 + ["fav"] * 3 + ["buy"] * 2
with open(out, "w") as f:
    for u in range(1, users + 1):
        items = [rng.randrange(5_000_000) for _ in range(50)]
        lines = []
        for _ in range(250):
            item = rng.choice(items)
            lines.append(f"{u},{item},{item % 9000},{rng.choice(kinds)},{1511539200 + rng.randrange(777_600)}\n")
        f.writelines(lines)
