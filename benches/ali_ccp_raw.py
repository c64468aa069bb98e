"""Ali-CCP raw files in the real format, generated at a given size (for `funnel prepare
ali-ccp`'s throughput, BENCHMARKS.md): a common-features file of COMMON users (user profile
fields and 14-day behaviour fields of 10 to 50 weighted entries) and a skeleton file of
ROWS impressions sorted by common_feature_index, as the real skeleton is.

usage: ali_ccp_raw.py DIR ROWS COMMON"""

import random
import sys

out, rows, users = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(7)
E1, E2, E3 = "\x01", "\x02", "\x03"


def entry(field, fid, value=1.0):
    return f"{field}{E2}{fid}{E3}{value:g}"


with open(f"{out}/common.csv", "w") as f:
    for c in range(users):
        es = [entry("101", c)] + [entry(k, rng.randrange(20)) for k in ("121", "122", "124", "125", "126", "127", "128", "129")]
        for field, vocab in (("109_14", 10_000), ("110_14", 50_000), ("127_14", 50_000), ("150_14", 200_000)):
            es += [entry(field, rng.randrange(vocab), rng.randrange(1, 20)) for _ in range(rng.randrange(10, 51))]
        f.write(f"c{c},{len(es)},{E1.join(es)}\n")
with open(f"{out}/skeleton.csv", "w") as f:
    per = rows // users
    i = 0
    for c in range(users):
        for _ in range(per):
            es = [entry(k, rng.randrange(v)) for k, v in (("205", 500_000), ("206", 5_000), ("207", 100_000), ("210", 50_000), ("216", 50_000), ("301", 3), ("508", 10_000), ("509", 10_000), ("702", 10_000), ("853", 10_000))]
            click = rng.random() < 0.05
            buy = click and rng.random() < 0.01
            f.write(f"s{i},{int(click)},{int(buy)},c{c},{len(es)},{E1.join(es)}\n")
            i += 1
