"""A job that succeeds: greets, reads its arguments and environment, and exits 0."""

import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("--city", default="Paris")
parser.add_argument("--limit", type=int, default=3)
args = parser.parse_args()
print(f"hello from run {os.environ['JOBLEDGER_RUN_ID']} attempt {os.environ['JOBLEDGER_ATTEMPT']}")
print(f"mode={os.environ.get('MODE')} city={args.city}")
for i in range(args.limit):
    print(f"row {i + 1}: {args.city}")
